"""``ls``, ``cat``, ``du``, ``mkdir`` and ``rm`` on any filesystem fsspec knows."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from remotefs.cli import EXIT_OK
from remotefs.cli.locations import (
    Info,
    Location,
    Resolver,
    basename,
    find_options,
    is_dir,
    list_files,
    mtime_of,
)
from remotefs.cli.progress import format_size

BLOCK = 1 << 20


def ls(args: argparse.Namespace) -> int:
    """List directories (or name files): names; sizes and times with -l; all levels with -R."""
    resolve = Resolver(args.profile)
    listings = [(loc, _entries(loc, args.recursive)) for loc in map(resolve, args.urls)]
    if args.json:
        rows = [_json_entry(loc, name, info) for loc, entries in listings for name, info in entries]
        print(json.dumps(rows))
        return EXIT_OK
    for number, (loc, entries) in enumerate(listings):
        if len(listings) > 1:
            print(("\n" if number else "") + f"{loc.url}:")
        for name, info in entries:
            shown = name + "/" if is_dir(info) else name
            print(_long(shown, info) if args.long else shown)
    return EXIT_OK


def _entries(loc: Location, recursive: bool) -> list[tuple[str, Info]]:
    """(name relative to the listed directory, info), sorted by name."""
    info = loc.info()
    if not is_dir(info):
        return [(basename(loc.path), info)]
    if recursive:
        prefix = loc.path.rstrip("/") + "/"
        found = loc.fs.find(loc.path, withdirs=True, detail=True, **find_options(loc))
        entries = [(n[len(prefix) :], i) for n, i in found.items() if n.startswith(prefix)]
    else:
        entries = [(basename(i["name"]), i) for i in loc.fs.ls(loc.path, detail=True)]
    return sorted((name, info) for name, info in entries if name)


def _long(name: str, info: Info) -> str:
    mtime = mtime_of(info)
    when = dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M:%S") if mtime else "-"
    size = "-" if is_dir(info) else str(int(info.get("size") or 0))
    return f"{size:>12}  {when:<19}  {name}"


def _json_entry(loc: Location, name: str, info: Info) -> dict[str, Any]:
    return {
        "name": name,
        "url": loc.show(info.get("name") or loc.path),
        "type": "directory" if is_dir(info) else "file",
        "size": 0 if is_dir(info) else int(info.get("size") or 0),
        "mtime": mtime_of(info),
    }


def cat(args: argparse.Namespace) -> int:
    """Write files to standard output, streamed in blocks."""
    resolve = Resolver(args.profile)
    out = sys.stdout.buffer
    sys.stdout.flush()
    for loc in map(resolve, args.urls):
        with loc.fs.open(loc.path, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                out.write(block)
    out.flush()
    return EXIT_OK


def du(args: argparse.Namespace) -> int:
    """Total size and number of files below each URL."""
    resolve = Resolver(args.profile)
    totals = []
    for loc in map(resolve, args.urls):
        info = loc.info()
        found = list_files(loc).values() if is_dir(info) else [info]
        sizes = [int(i.get("size") or 0) for i in found]
        totals.append((loc.url, sum(sizes), len(sizes)))
    if args.json:
        print(json.dumps([{"url": u, "bytes": b, "files": n} for u, b, n in totals]))
        return EXIT_OK
    for url, size, count in totals:
        shown = format_size(size) if args.human else str(size)
        print(f"{shown}\t{count} files\t{url}")
    return EXIT_OK


def mkdir(args: argparse.Namespace) -> int:
    """Make directories; with -p also their parents, and no error if they exist."""
    resolve = Resolver(args.profile)
    for loc in map(resolve, args.urls):
        if args.parents:
            loc.fs.makedirs(loc.path, exist_ok=True)
            continue
        if loc.fs.exists(loc.path):
            raise FileExistsError(f"{loc.url} exists already")
        parent = loc.fs._parent(loc.path)
        if parent.strip("/") and not loc.fs.isdir(parent):
            raise FileNotFoundError(f"the parent of {loc.url} does not exist: use mkdir -p")
        loc.fs.mkdir(loc.path, create_parents=False)
    return EXIT_OK


def rm(args: argparse.Namespace) -> int:
    """Remove files; with -r directories and everything below them."""
    resolve = Resolver(args.profile)
    for loc in map(resolve, args.urls):
        info = loc.info()
        if is_dir(info) and not args.recursive:
            raise IsADirectoryError(f"{loc.url} is a directory: use rm -r")
        if is_dir(info):
            loc.fs.rm(loc.path, recursive=True)
        else:
            loc.fs.rm_file(loc.path)
    return EXIT_OK
