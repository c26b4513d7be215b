"""Files opened on agave://: ranged reads, and writes spooled to disk then uploaded once.

Agave has no chunked upload, so written bytes go to a local temporary file and the whole file
is uploaded (and its staging awaited) when the file is closed or the transaction commits.
Append mode starts the spool with the file's current content.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile

if TYPE_CHECKING:
    from remotefs.agave.filesystem import AgaveFileSystem


class AgaveFile(AbstractBufferedFile):
    """A buffered file on an Agave storage system."""

    fs: AgaveFileSystem

    def _fetch_range(self, start: int, end: int) -> bytes:
        return sync(self.fs.loop, self.fs._cat_file, self.path, start, end)

    def _initiate_upload(self) -> None:
        fd, self._spool_path = tempfile.mkstemp(prefix="remotefs-upload-")
        os.close(fd)
        if self.mode == "ab" and self.fs.exists(self.path):
            # Agave cannot append: start from the current content, upload the whole file.
            sync(self.fs.loop, self.fs._get_file, self.path, self._spool_path)
        self._spool = open(self._spool_path, "ab")

    def _upload_chunk(self, final: bool = False) -> bool:
        self._spool.write(self.buffer.getvalue())
        if final:
            self._spool.close()
            if self.autocommit:
                self.commit()
        return True

    def commit(self) -> None:
        """Upload the spooled bytes and wait until the service has staged them."""
        try:
            sync(self.fs.loop, self.fs._put_file, self._spool_path, self.path)
        finally:
            self.discard()

    def discard(self) -> None:
        """Forget the written bytes without uploading them."""
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()
            if os.path.exists(self._spool_path):
                os.unlink(self._spool_path)
