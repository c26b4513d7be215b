"""Moving a job's files through fsspec: inputs staged before submission, outputs pulled after.

Policy:

* Staging copies each source (a file, or a directory's files) to its target URL unless the
  target already holds it: same size and not older than the source (with one second of slack,
  as object stores keep whole seconds). A target ending in ``/`` receives the source's name.
* Downloads check every destination name first and refuse the whole download when one is
  empty, absolute or climbs out with ``..``; nothing is written then. Each file is written to a
  temporary name beside its destination, its size compared with the source's, then renamed.
* URLs are turned into filesystems by the caller's ``resolve`` (the job backend), so
  service URLs get the service's credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remotefs.errors import TransferError
from remotefs.jobs.errors import UnsafeOutputError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from remotefs.jobs.model import Output

Resolve = Callable[[str], "tuple[AbstractFileSystem, str]"]
CHUNK = 1 << 20
MTIME_SLACK = dt.timedelta(seconds=1)
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class CopiedFile:
    """One file moved (or found already in place) by staging or a download."""

    source: str
    target: str
    size: int
    skipped: bool = False


def safe_name(name: str, job_id: str | None = None) -> str:
    """``name`` if it is a relative path that stays inside its destination, else refuse it."""
    parts = name.split("/")
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or WINDOWS_DRIVE.match(name)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UnsafeOutputError(
            f"refusing the output name {name!r}: it is empty, absolute or leaves the destination",
            path=job_id,
        )
    return name


def stage_inputs(copies: Mapping[str, str], resolve: Resolve) -> list[CopiedFile]:
    """Copy each ``source: target`` pair, skipping files already in place; returns what happened."""
    done: list[CopiedFile] = []
    for source, target in copies.items():
        src_fs, src = resolve(source)
        dst_fs, dst = resolve(target)
        if src_fs.isdir(src):
            root = src.rstrip("/")
            for path, info in sorted(src_fs.find(root, detail=True).items()):
                relative = safe_name(posixpath.relpath(path, root))
                done.append(_stage_one(src_fs, path, info, dst_fs, f"{dst.rstrip('/')}/{relative}"))
            continue
        if target.endswith("/"):
            dst = f"{dst.rstrip('/')}/{posixpath.basename(src.rstrip('/'))}"
        done.append(_stage_one(src_fs, src, src_fs.info(src), dst_fs, dst))
    return done


def _stage_one(
    src_fs: AbstractFileSystem,
    src: str,
    info: Mapping[str, Any],
    dst_fs: AbstractFileSystem,
    dst: str,
) -> CopiedFile:
    size = info.get("size")
    if _in_place(src_fs, src, size, dst_fs, dst):
        return CopiedFile(
            src_fs.unstrip_protocol(src), dst_fs.unstrip_protocol(dst), size or 0, True
        )
    written = copy_file(src_fs, src, dst_fs, dst, size=size, atomic=False)
    return CopiedFile(src_fs.unstrip_protocol(src), dst_fs.unstrip_protocol(dst), written)


def _in_place(
    src_fs: AbstractFileSystem, src: str, size: int | None, dst_fs: AbstractFileSystem, dst: str
) -> bool:
    """True when ``dst`` has the source's size and is not older than the source."""
    try:
        target = dst_fs.info(dst)
    except FileNotFoundError:
        return False
    if size is None or target.get("size") != size or target.get("type") == "directory":
        return False
    src_time, dst_time = _modified(src_fs, src), _modified(dst_fs, dst)
    return src_time is not None and dst_time is not None and dst_time + MTIME_SLACK >= src_time


def _modified(fs: AbstractFileSystem, path: str) -> dt.datetime | None:
    try:
        when = fs.modified(path)
    except (NotImplementedError, OSError, KeyError, ValueError):
        return None
    if not isinstance(when, dt.datetime):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def copy_file(
    src_fs: AbstractFileSystem,
    src: str,
    dst_fs: AbstractFileSystem,
    dst: str,
    *,
    size: int | None = None,
    atomic: bool = True,
) -> int:
    """Copy one file between filesystems and check its size; returns the bytes written.

    With ``atomic`` the bytes go to a temporary name beside ``dst`` first and are renamed
    once complete and checked, so ``dst`` never holds a partial file.
    """
    from fsspec.implementations.local import LocalFileSystem

    parent = posixpath.dirname(dst)
    if parent:
        dst_fs.makedirs(parent, exist_ok=True)
    tmp = _temporary_name(dst) if atomic else dst
    try:
        if isinstance(src_fs, LocalFileSystem):
            dst_fs.put_file(src, tmp)
        elif isinstance(dst_fs, LocalFileSystem):
            src_fs.get_file(src, tmp)
        else:
            with src_fs.open(src, "rb") as reader, dst_fs.open(tmp, "wb") as writer:
                shutil.copyfileobj(reader, writer, CHUNK)
        written = int(dst_fs.size(tmp))
        if size is not None and written != size:
            raise TransferError(
                f"copied {written} bytes of {size} from {src_fs.unstrip_protocol(src)}",
                path=dst_fs.unstrip_protocol(dst),
            )
        if atomic:
            dst_fs.mv(tmp, dst)
    except BaseException:
        if atomic:
            _remove_quietly(dst_fs, tmp)
        raise
    return written


def write_bytes(dst_fs: AbstractFileSystem, dst: str, data: bytes) -> int:
    """Write a small file atomically (temporary name, then rename)."""
    parent = posixpath.dirname(dst)
    if parent:
        dst_fs.makedirs(parent, exist_ok=True)
    tmp = _temporary_name(dst)
    try:
        dst_fs.pipe_file(tmp, data)
        dst_fs.mv(tmp, dst)
    except BaseException:
        _remove_quietly(dst_fs, tmp)
        raise
    return len(data)


def _temporary_name(dst: str) -> str:
    parent, name = posixpath.split(dst)
    hidden = f".{name}.remotefs-{secrets.token_hex(4)}.part"
    return posixpath.join(parent, hidden) if parent else hidden


def _remove_quietly(fs: AbstractFileSystem, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm_file(path)
    except OSError:
        pass


def download_outputs(
    outputs: Sequence[Output], dest: str, resolve: Resolve, *, job_id: str | None = None
) -> list[CopiedFile]:
    """Pull every output below ``dest``; all names are checked before anything is written."""
    dst_fs, root = resolve(dest)
    root = root.rstrip("/")
    plan: list[tuple[str, Any, str | None, Any, int | None]] = []
    for output in outputs:
        name = safe_name(output.name, job_id)
        if output.url is None:
            plan.append((name, None, None, output.value, None))
            continue
        src_fs, src = resolve(output.url)
        if output.url.endswith("/") or src_fs.isdir(src):
            base = src.rstrip("/")
            for path, info in sorted(src_fs.find(base, detail=True).items()):
                relative = path[len(base) + 1 :] if path.startswith(base + "/") else path
                member = safe_name(f"{name}/{relative}", job_id)
                plan.append((member, src_fs, path, None, info.get("size")))
        else:
            plan.append((name, src_fs, src, None, None))
    names = [item[0] for item in plan]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise UnsafeOutputError(f"several outputs would be written to {twice}", path=job_id)
    copied = []
    for name, source_fs, source, value, size in plan:
        target = f"{root}/{name}" if root else name
        if source_fs is None:
            written = write_bytes(dst_fs, target, _inline_bytes(value))
            copied.append(CopiedFile("(inline)", dst_fs.unstrip_protocol(target), written))
            continue
        assert source is not None
        if size is None:
            size = source_fs.info(source).get("size")
        written = copy_file(source_fs, source, dst_fs, target, size=size, atomic=True)
        copied.append(
            CopiedFile(source_fs.unstrip_protocol(source), dst_fs.unstrip_protocol(target), written)
        )
    return copied


def _inline_bytes(value: Any) -> bytes:
    """An inline result as file content: bytes as they are, anything else as JSON."""
    if isinstance(value, bytes):
        return value
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
