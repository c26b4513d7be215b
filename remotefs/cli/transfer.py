"""Copying files between any two filesystems, several at a time.

How one file travels (:meth:`Copier.copy`):

- both ends on one filesystem instance: that filesystem's own copy (server-side on agave://
  and S3; ``shutil`` locally);
- local to remote: the destination's ``put_file``;
- remote to local: the source's ``get_file`` into a temporary name beside the target, renamed
  once complete, so a failed download never leaves a partial file under the real name;
- remote to remote across filesystems: through a local temporary file, so memory stays
  bounded and each side uses its own optimised transfer (and a failed upload writes nothing).

Local copies get the source's modification time; S3 destinations get it in rclone's ``mtime``
metadata (epoch seconds with a fraction), so ``remotefs sync`` and rclone agree on what is
unchanged. A file that fails is recorded, not raised, so the rest of a transfer goes on.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from fsspec.callbacks import Callback

from remotefs.cli import one_line
from remotefs.cli.locations import Info, Location, local_parent
from remotefs.cli.progress import Progress, format_size
from remotefs.localfiles import create_partial


@dataclass(frozen=True)
class Job:
    """One file to copy: source and destination paths, and the source's info."""

    src: str
    dst: str
    info: Info

    @property
    def size(self) -> int:
        """The source's size in bytes."""
        return int(self.info.get("size") or 0)


@dataclass
class Summary:
    """What a transfer did, for people and for ``--json``."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: list[tuple[str, BaseException]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(time.monotonic() - self.started, 3),
            "skipped": self.skipped,
            "deleted": self.deleted,
            "failed": [{"path": path, "error": one_line(exc)} for path, exc in self.failed],
        }

    def text(self, verb: str) -> str:
        """One line: ``copied 3 files (1.2 MiB) in 0.4 s, 2 unchanged``."""
        seconds = time.monotonic() - self.started
        plural = "" if self.files == 1 else "s"
        parts = [f"{verb} {self.files} file{plural} ({format_size(self.bytes)}) in {seconds:.1f} s"]
        if self.skipped:
            parts.append(f"{self.skipped} unchanged")
        if self.deleted:
            parts.append(f"{self.deleted} deleted")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


class _Meter(Callback):  # type: ignore[misc]
    """An fsspec callback that forwards byte counts to the progress line."""

    def __init__(self, progress: Progress, scale: float = 1.0) -> None:
        super().__init__()
        self.progress = progress
        self.scale = scale
        self.counted = 0.0

    def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
        delta = (self.value or 0) * self.scale - self.counted
        if delta:
            self.counted += delta
            self.progress.advance(delta)


class Copier:
    """Copies jobs from one location to another with ``transfers`` threads.

    ``after(job)`` runs once a file has arrived (``mv`` removes the source there).
    """

    def __init__(
        self,
        src: Location,
        dst: Location,
        progress: Progress,
        *,
        transfers: int = 4,
        after: Callable[[Job], None] | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.progress = progress
        self.transfers = transfers
        self.after = after
        self._spool = tempfile.TemporaryDirectory(prefix="remotefs-")

    def run(self, jobs: Sequence[Job], summary: Summary) -> Summary:
        """Copy every job, recording successes and failures in ``summary``."""
        self.progress.plan(len(jobs), sum(job.size for job in jobs))
        pool = ThreadPoolExecutor(max_workers=self.transfers, thread_name_prefix="remotefs")
        try:
            pending: dict[Future[None], Job] = {pool.submit(self.copy, j): j for j in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    error = future.exception()
                    if error is None:
                        summary.files += 1
                        summary.bytes += job.size
                    else:
                        summary.failed.append((self.src.show(job.src), error))
                    self.progress.file_done()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._spool.cleanup()
        return summary

    def copy(self, job: Job) -> None:
        """Copy one file by the fastest route between the two filesystems."""
        meter = _Meter(self.progress)
        if self.src.fs is self.dst.fs:
            if self.dst.local:
                local_parent(job.dst)
            self.src.fs.cp_file(job.src, job.dst)
            self._keep_mtime(job)
        elif self.src.local:
            self.dst.fs.put_file(job.src, job.dst, callback=meter, **self._metadata(job))
        elif self.dst.local:
            self._download(job, meter)
        else:
            self._through_disk(job, meter)
        self.progress.advance(job.size - meter.counted)
        if self.after is not None:
            self.after(job)

    def _download(self, job: Job, meter: _Meter) -> None:
        local_parent(job.dst)
        placeholder, tmp = create_partial(job.dst)
        placeholder.close()
        try:
            self.src.fs.get_file(job.src, tmp, callback=meter)
            os.replace(tmp, job.dst)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._keep_mtime(job)

    def _through_disk(self, job: Job, meter: _Meter) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._spool.name, suffix=".part")
        os.close(fd)
        download, upload = _Meter(self.progress, 0.5), _Meter(self.progress, 0.5)
        try:
            self.src.fs.get_file(job.src, tmp, callback=download)
            self.dst.fs.put_file(tmp, job.dst, callback=upload, **self._metadata(job))
        finally:
            meter.counted += download.counted + upload.counted
            os.unlink(tmp)

    def _keep_mtime(self, job: Job) -> None:
        """Give a local copy the source's modification time."""
        if self.dst.local:
            mtime = self.src.mtime(job.src, job.info)
            if mtime is not None:
                os.utime(job.dst, (mtime, mtime))

    def _metadata(self, job: Job) -> dict[str, Any]:
        """rclone's ``mtime`` metadata for an S3 destination."""
        if not self.dst.s3:
            return {}
        mtime = self.src.mtime(job.src, job.info)
        return {} if mtime is None else {"Metadata": {"mtime": f"{mtime:.9f}"}}
