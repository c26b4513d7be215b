"""Streaming file transfers for edito://, in place of s3fs's ``_get_file`` and ``_put_file``.

Policy, and what it changes from s3fs's defaults:

* Download: one GET per file, whatever its size (s3fs splits files above 50 MiB into ranged
  GETs held whole in memory; each GET costs MinIO, and moto, a pass over the object). The body
  is written as it arrives to a temporary name beside the target, ``<target>.<random>.part``,
  which replaces the target only once its size is the announced ``Content-Length``. A stream
  that breaks is resumed from where it stopped (a ranged GET with ``If-Match`` on the ETag, so
  a changed object fails rather than mixing versions), ``fs.retries`` times at most. On any
  error the partial file is removed and an existing target is left as it was.
* Upload: files up to ``IN_MEMORY`` go in one PUT from memory; larger ones are streamed from
  the file, in one PUT below ``2 * part size`` (s3fs's cut-off), else as a multipart upload of
  ``PART_SIZE`` parts (more if the 10,000-part limit needs it), ``max_concurrency`` at a time.
  Each part is read from disk while it is signed and sent, so memory holds a few network
  buffers, not the parts (s3fs reads ``max_concurrency`` parts of 50 MiB into memory).
  A failed multipart upload is aborted. ``mode="create"``, ``ContentType`` and extra
  ``put_object`` keywords behave as in s3fs.
"""

from __future__ import annotations

import asyncio
import errno
import io
import mimetypes
import os
import secrets
from collections.abc import Awaitable
from typing import Any

from botocore.exceptions import IncompleteReadError
from fsspec.callbacks import Callback
from s3fs.core import MAX_UPLOAD_PARTS, S3_RETRYABLE_ERRORS, version_id_kw

READ_SIZE = 1 << 20
IN_MEMORY = 1 << 20
PART_SIZE = 16 << 20
STREAM_ERRORS = (*S3_RETRYABLE_ERRORS, IncompleteReadError)
REWIND_HOOK = "remotefs-edito-rewind-file-range"


class FileRange(io.RawIOBase):
    """``length`` bytes of an open file from ``offset``, readable and seekable on their own.

    A request body that botocore can hash and rewind and aiohttp can stream: reads go to the
    shared descriptor with ``os.pread``, so several ranges of one file can be sent at once.
    The descriptor belongs to the caller.
    """

    def __init__(self, fd: int, offset: int, length: int) -> None:
        super().__init__()
        self._fd, self._offset, self._length, self._pos = fd, offset, length, 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = min(max(base + pos, 0), self._length)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self._length - self._pos
        count = left if size is None or size < 0 else min(size, left)
        data = os.pread(self._fd, count, self._offset + self._pos) if count > 0 else b""
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def restarted(self) -> FileRange:
        """A new reader of the same bytes, at their start."""
        return FileRange(self._fd, self._offset, self._length)


def _rewind(params: dict[str, Any], **_: Any) -> None:
    """Send a :class:`FileRange` body from its start on every call, retries included.

    botocore rewinds bodies between its own attempts, but s3fs's retries and edito://'s
    renewal on ``ExpiredToken`` make a new call with the body where the last one left it
    (and a read of the failed attempt may still be running in aiohttp's thread): each call
    gets a reader of its own.
    """
    body = params.get("Body")
    if isinstance(body, FileRange):
        params["Body"] = body.restarted()


async def _rewinding(fs: Any, bucket: str) -> None:
    """Hook :func:`_rewind` into the S3 client (once per client: the hook's id is unique)."""
    await fs.set_session()
    client = await fs.get_s3(bucket)
    client.meta.events.register("before-parameter-build.s3", _rewind, unique_id=REWIND_HOOK)


async def download(
    fs: Any, rpath: str, lpath: str, callback: Callback, version_id: str | None = None
) -> None:
    """Copy one object to ``lpath`` through a temporary name (see the module's policy)."""
    if os.path.isdir(lpath):
        return
    bucket, key, path_version = fs.split_path(rpath)
    request = {"Bucket": bucket, "Key": key, **version_id_kw(version_id or path_version)}
    partial = f"{lpath}.{secrets.token_hex(4)}.part"
    try:
        with open(partial, "xb") as out:
            response = await fs._call_s3("get_object", **request, **fs.req_kw)
            size = response.get("ContentLength")
            callback.set_size(size)
            done = await _write_body(fs, response, request, size, out, callback)
        if size is not None and done != size:
            raise OSError(errno.EIO, f"{rpath}: got {done} bytes of {size}")
        os.replace(partial, lpath)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise


async def _write_body(
    fs: Any,
    response: dict[str, Any],
    request: dict[str, Any],
    size: int | None,
    out: io.BufferedWriter,
    callback: Callback,
) -> int:
    """Write a GET's body to ``out``, resuming a broken stream; the number of bytes written."""
    etag = response.get("ETag")
    body = response["Body"]
    done = failures = 0
    try:
        while True:
            try:
                chunk = await body.read(READ_SIZE)
            except STREAM_ERRORS:
                failures += 1
                if failures >= fs.retries or (size is not None and done >= size):
                    raise
                body.close()
                await asyncio.sleep(min(1.7**failures * 0.1, 15))
                match = {"IfMatch": etag} if etag else {}
                again = {**request, **match, "Range": f"bytes={done}-"}
                body = (await fs._call_s3("get_object", **again, **fs.req_kw))["Body"]
                continue
            if not chunk:
                return done
            out.write(chunk)
            done += len(chunk)
            callback.relative_update(len(chunk))
    finally:
        body.close()


async def upload(
    fs: Any,
    lpath: str,
    rpath: str,
    callback: Callback,
    chunksize: int | None = None,
    max_concurrency: int | None = None,
    mode: str = "overwrite",
    **kwargs: Any,
) -> None:
    """Copy one local file to ``rpath`` (see the module's policy)."""
    bucket, key, _ = fs.split_path(rpath)
    size = os.path.getsize(lpath)
    callback.set_size(size)
    match = {"IfNoneMatch": "*"} if mode == "create" else {}
    if "ContentType" not in kwargs:
        content_type, _ = mimetypes.guess_type(lpath)
        if content_type is not None:
            kwargs["ContentType"] = content_type
    part = max(chunksize or PART_SIZE, -(-size // MAX_UPLOAD_PARTS))
    target = {"Bucket": bucket, "Key": key}
    with open(lpath, "rb") as src:
        if size <= IN_MEMORY:
            await fs._call_s3("put_object", **target, Body=src.read(), **kwargs, **match)
            callback.relative_update(size)
        elif size < 2 * part:
            await _rewinding(fs, bucket)
            body = FileRange(src.fileno(), 0, size)
            await fs._call_s3("put_object", **target, Body=body, **kwargs, **match)
            callback.relative_update(size)
        else:
            concurrency = max_concurrency or fs.max_concurrency
            await _multipart(
                fs, src.fileno(), size, part, concurrency, target, callback, match, kwargs
            )
    while rpath:
        fs.invalidate_cache(rpath)
        rpath = fs._parent(rpath)


async def _multipart(
    fs: Any,
    fd: int,
    size: int,
    part: int,
    concurrency: int,
    target: dict[str, str],
    callback: Callback,
    match: dict[str, str],
    kwargs: dict[str, Any],
) -> None:
    """A multipart upload of ``fd`` with ``concurrency`` parts in flight; aborted on failure."""
    await _rewinding(fs, target["Bucket"])
    upload_id = (await fs._call_s3("create_multipart_upload", **target, **kwargs))["UploadId"]
    pending = iter(enumerate(range(0, size, part), start=1))
    parts: list[dict[str, Any]] = []

    async def sender() -> None:
        for number, offset in pending:  # the iterator is shared: each part is sent once
            length = min(part, size - offset)
            body = FileRange(fd, offset, length)
            sent = await fs._call_s3(
                "upload_part", **target, UploadId=upload_id, PartNumber=number, Body=body
            )
            parts.append({"PartNumber": number, "ETag": sent["ETag"]})
            callback.relative_update(length)

    try:
        await _all_or_none([sender() for _ in range(min(concurrency, -(-size // part)))])
        parts.sort(key=lambda p: p["PartNumber"])
        await fs._call_s3(
            "complete_multipart_upload",
            **target,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **match,
        )
    except Exception:
        await fs._abort_mpu(target["Bucket"], target["Key"], upload_id)
        raise


async def _all_or_none(coroutines: list[Awaitable[None]]) -> None:
    """Run ``coroutines`` together; if one fails, cancel the others before raising."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
