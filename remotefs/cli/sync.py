"""``remotefs sync``: make a destination directory hold what the source holds.

The skip rule: a file is unchanged, and not copied, when the destination has a file at the
same relative path with the same size and a modification time no older than the source's
(1 s tolerance). On S3 the modification time is rclone's ``mtime`` metadata when present
(remotefs writes it too), else the object's LastModified; local copies get the source's time,
so a second sync copies nothing. ``--checksum`` compares MD5s instead where both sides have
one (S3 ETags of single-part uploads; local and memory files are hashed), and falls back to
size and time, with a note, where they do not (agave:// has no checksums).

``--include``/``--exclude`` are glob rules matched in command-line order against the path
relative to SRC; the first rule that matches decides, and files no rule matches are
included. ``*`` and ``?`` stop at ``/``, ``**`` does not; a rule starting with ``/`` is
anchored at SRC, any other may match the end of the path (``*.csv`` matches at every depth).
``--delete`` then removes destination files that SRC does not have, except excluded ones,
and only if every copy succeeded. ``--dry-run`` prints what would happen and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from remotefs.cli import EXIT_OK
from remotefs.cli.copy import refuse_nesting, report
from remotefs.cli.locations import Info, Location, Resolver, basename, is_dir, list_files
from remotefs.cli.progress import Progress
from remotefs.cli.transfer import Copier, Job, Summary

MTIME_TOLERANCE = 1.0


class Rules:
    """Ordered include/exclude glob rules; the first match wins, the default is include."""

    def __init__(self, rules: list[tuple[str, str]]) -> None:
        self.rules = [(action == "include", _compile(glob)) for action, glob in rules]

    def included(self, relative: str) -> bool:
        """Whether the file at ``relative`` takes part in the sync."""
        for include, pattern in self.rules:
            if pattern.fullmatch(relative):
                return include
        return True


def _compile(glob: str) -> re.Pattern[str]:
    out, i = [], 0
    body = glob.lstrip("/")
    while i < len(body):
        if body.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        char = body[i]
        close = body.find("]", i + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif close != -1:
            inner = body[i + 1 : close]
            negate = inner.startswith("!")
            content = inner[negate:].replace("\\", "\\\\")
            if content.startswith("^"):
                content = "\\" + content
            out.append("[" + ("^" if negate else "") + content + "]")
            i = close + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    anchor = "" if glob.startswith("/") else "(?:.*/)?"
    return re.compile(anchor + "".join(out), re.DOTALL)


def sync(args: argparse.Namespace) -> int:
    """Copy new and changed files from SRC to DST; optionally delete extras."""
    resolve = Resolver(args.profile)
    src, dst = resolve(args.src), resolve(args.dst)
    rules = Rules(args.rules)
    info = src.info()
    if is_dir(info):
        refuse_nesting(src, dst, "sync")
        files = list_files(src)
    else:
        files = {basename(src.path): info}
    wanted = {rel: i for rel, i in files.items() if rules.included(rel)}
    existing = _existing(dst)
    notes: set[str] = set()

    def changed(rel: str) -> bool:
        return rel not in existing or not unchanged(
            src, dst, wanted[rel], existing[rel], checksum=args.checksum, notes=notes
        )

    with ThreadPoolExecutor(max_workers=args.transfers) as pool:
        names = sorted(wanted)
        flags = dict(zip(names, pool.map(changed, names), strict=True))
    jobs = [Job(wanted[rel]["name"], dst.child(rel), wanted[rel]) for rel, c in flags.items() if c]
    extra = sorted(rel for rel in existing if rel not in files and rules.included(rel))
    for note in sorted(notes):
        print(f"remotefs: note: {note}", file=sys.stderr)
    summary = Summary(skipped=len(wanted) - len(jobs))
    if args.dry_run:
        deletes = [dst.child(rel) for rel in extra] if args.delete else []
        return _dry_run(args, summary, src, dst, jobs, deletes)
    dst.fs.makedirs(dst.path, exist_ok=True)
    progress = Progress.on_terminal(not args.json)
    Copier(src, dst, progress, transfers=args.transfers).run(jobs, summary)
    if args.delete and extra:
        if summary.failed:
            print("remotefs: note: nothing deleted, because some copies failed", file=sys.stderr)
        else:
            for rel in extra:
                dst.fs.rm_file(dst.child(rel))
                summary.deleted += 1
    return report(summary, args, progress, many=True, verb="copied")


def unchanged(
    src: Location, dst: Location, src_info: Info, dst_info: Info, *, checksum: bool, notes: set[str]
) -> bool:
    """The skip rule (see the module's docstring)."""
    if int(src_info.get("size") or 0) != int(dst_info.get("size") or 0):
        return False
    if checksum:
        mine = src.md5(src_info["name"], src_info)
        theirs = dst.md5(dst_info["name"], dst_info) if mine else None
        if mine and theirs:
            return mine == theirs
        lacking = dst.url if mine else src.url
        notes.add(f"--checksum: no MD5 for {lacking}; compared size and modification time")
    src_time = src.mtime(src_info["name"], src_info)
    dst_time = dst.mtime(dst_info["name"], dst_info)
    if src_time is None or dst_time is None:
        return False
    return dst_time >= src_time - MTIME_TOLERANCE


def _existing(dst: Location) -> dict[str, Info]:
    """The destination's files by relative path (none if it does not exist yet)."""
    try:
        info = dst.fs.info(dst.path)
    except FileNotFoundError:
        return {}
    if not is_dir(info):
        raise NotADirectoryError(f"{dst.url} is a file; sync needs a directory")
    return list_files(dst)


def _dry_run(
    args: argparse.Namespace,
    summary: Summary,
    src: Location,
    dst: Location,
    jobs: list[Job],
    deletes: list[str],
) -> int:
    """Say what a sync would do, changing nothing."""
    copies = [dst.show(job.dst) for job in jobs]
    removals = [dst.show(path) for path in deletes]
    if args.json:
        planned = summary.as_dict()
        planned.update(dry_run=True, would_copy=copies, would_delete=removals)
        print(json.dumps(planned))
        return EXIT_OK
    for job, shown in zip(jobs, copies, strict=True):
        print(f"copy {src.show(job.src)} -> {shown}")
    for shown in removals:
        print(f"delete {shown}")
    print(f"{len(copies)} to copy, {summary.skipped} unchanged, {len(removals)} to delete")
    return EXIT_OK
