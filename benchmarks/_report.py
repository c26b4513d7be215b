"""docs/performance.md is shared by every benchmark: each one owns a marked section of it."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of the section ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def write_section(path: Path, name: str, section: str) -> None:
    """Put ``section`` (which starts and ends with its markers) in place of the old one.

    A file without the markers gets the section appended; nothing else in it changes.
    """
    begin, end = markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + section.rstrip("\n") + text[stop + len(end) :]
    else:
        text += ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "")
        text += section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
