"""``remotefs cp`` and ``remotefs mv``: files and directories between any two filesystems.

Semantics, as rclone's: a file goes to DST, or into DST when DST is a directory or ends with
``/``; with ``-r`` (``mv`` needs none) a directory's *contents* go into DST, at the same
relative paths, whether or not DST exists (``cp -r data/ agave://sys/run1`` gives
``run1/a.csv``, never ``run1/data/a.csv``). Empty directories below SRC are not copied.
``mv`` renames on the server when both ends are one filesystem and DST does not exist yet;
otherwise it copies, removing each source file once its copy has arrived, and the source
directory at the end if nothing failed and no file has appeared in it meanwhile.
"""

from __future__ import annotations

import argparse
import json
import sys

from remotefs.cli import EXIT_OK, EXIT_PARTIAL, one_line
from remotefs.cli.locations import Location, Resolver, basename, is_dir, list_files, local_parent
from remotefs.cli.progress import Progress
from remotefs.cli.transfer import Copier, Job, Summary


def cp(args: argparse.Namespace) -> int:
    """Copy a file, or with -r the contents of a directory."""
    resolve = Resolver(args.profile)
    src, dst = resolve(args.src), resolve(args.dst)
    jobs, whole_tree = plan(src, dst, recursive=args.recursive, verb="cp")
    if whole_tree:
        dst.fs.makedirs(dst.path, exist_ok=True)
    progress = Progress.on_terminal(not args.json)
    summary = Copier(src, dst, progress, transfers=args.transfers).run(jobs, Summary())
    return report(summary, args, progress, many=whole_tree, verb="copied")


def mv(args: argparse.Namespace) -> int:
    """Move a file, or the contents of a directory."""
    resolve = Resolver(args.profile)
    src, dst = resolve(args.src), resolve(args.dst)
    jobs, whole_tree = plan(src, dst, recursive=True, verb="mv")
    progress = Progress.on_terminal(not args.json)
    summary = Summary()
    if src.fs is dst.fs and not (whole_tree and dst.fs.exists(dst.path)):
        target = jobs[0].dst if not whole_tree else dst.path
        if dst.local:
            local_parent(target)
        src.fs.mv(src.path, target, recursive=whole_tree)
        summary.files, summary.bytes = len(jobs), sum(job.size for job in jobs)
    else:
        if whole_tree:
            dst.fs.makedirs(dst.path, exist_ok=True)
        remove = src.fs.rm_file
        Copier(src, dst, progress, transfers=args.transfers, after=lambda j: remove(j.src)).run(
            jobs, summary
        )
        if whole_tree and not summary.failed and not list_files(src):
            src.fs.rm(src.path, recursive=True)  # only emptied directories are left
    return report(summary, args, progress, many=whole_tree, verb="moved")


def plan(src: Location, dst: Location, *, recursive: bool, verb: str) -> tuple[list[Job], bool]:
    """The files to copy from SRC to DST, and whether SRC is a directory."""
    info = src.info()
    if not is_dir(info):
        return [Job(src.path, file_target(src, dst), info)], False
    if not recursive:
        raise IsADirectoryError(f"{src.url} is a directory: use {verb} -r")
    refuse_nesting(src, dst, verb)
    if dst.fs.isfile(dst.path):
        raise NotADirectoryError(f"{dst.url} is a file, not a directory")
    files = list_files(src)
    return [Job(info["name"], dst.child(rel), info) for rel, info in sorted(files.items())], True


def refuse_nesting(src: Location, dst: Location, verb: str) -> None:
    """A directory cannot be copied into itself or below itself."""
    if src.fs is dst.fs and (dst.path + "/").startswith(src.path.rstrip("/") + "/"):
        raise ValueError(f"cannot {verb} {src.url} into itself ({dst.url})")


def file_target(src: Location, dst: Location) -> str:
    """Where a single file goes: into DST if it is a directory, else DST itself."""
    if dst.as_directory or dst.fs.isdir(dst.path):
        return dst.child(basename(src.path))
    if src.fs is dst.fs and src.path == dst.path:
        raise ValueError(f"{src.url} and {dst.url} are the same file")
    return dst.path


def report(
    summary: Summary, args: argparse.Namespace, progress: Progress, *, many: bool, verb: str
) -> int:
    """Print the summary (``--json`` or the terminal's last line); the exit code.

    A single file that failed raises its own error (one line, its own exit code); failures
    in a directory's transfer are listed and make the exit code :data:`EXIT_PARTIAL`.
    """
    if args.json:
        print(json.dumps(summary.as_dict()))
    progress.finish(summary.text(verb))
    if not summary.failed:
        return EXIT_OK
    if not many:
        raise summary.failed[0][1]
    for path, exc in summary.failed:
        print(f"remotefs: failed: {path}: {one_line(exc)}", file=sys.stderr)
    total = summary.files + len(summary.failed)
    print(f"remotefs: error: {len(summary.failed)} of {total} files failed", file=sys.stderr)
    return EXIT_PARTIAL
