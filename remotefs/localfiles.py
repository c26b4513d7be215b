"""Local files that downloads write: a hidden name beside the target, renamed over it on success.

The partial file is created exclusively (never reusing or following an existing name) and with
the user's default permissions (``0o666`` less the umask), as ``open()`` would make the target
itself; ``tempfile.mkstemp`` would leave every download readable by its owner only.
"""

from __future__ import annotations

import os
import secrets
from typing import BinaryIO


def create_partial(target: str) -> tuple[BinaryIO, str]:
    """A new, empty ``.NAME.<8 hex digits>.part`` beside ``target``, open for writing; its path."""
    folder, name = os.path.split(os.path.abspath(target))
    while True:
        path = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
        try:
            return open(path, "xb"), path
        except FileExistsError:
            continue
