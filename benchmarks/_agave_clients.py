"""The Python clients measured by ``agave_transfer.py``, one per process (for its own peak RSS).

``python _agave_clients.py MODE BASE_URL TOKEN_FILE ...`` runs one operation and prints one
JSON line: ``seconds`` (the operation alone, after imports and set-up), ``bytes``, ``requests``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = tuple[float, int, Counter[str]]  # seconds, bytes moved, requests sent by kind


def _read_token(token_file: str) -> str:
    """The bearer token, from a private file (never from the command line)."""
    return Path(token_file).read_text(encoding="ascii").strip()


def _timed(operation: Callable[[], Any]) -> float:
    """Seconds ``operation()`` takes."""
    start = time.perf_counter()
    operation()
    return time.perf_counter() - start


def _tree_size(folder: str) -> int:
    """Total bytes of the files below ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _count_requests() -> Counter[str]:
    """Count every request remotefs sends, by method and Files endpoint (``GET listings``):
    through aiohttp and through the bulk lane (http.client).

    This imports aiohttp before the clock starts, as ``requests_loop`` imports requests."""
    import http.client

    import aiohttp

    counts: Counter[str] = Counter()

    def count(method: str, url: object) -> None:
        parts = str(url).split("/files/v2/", 1)
        endpoint = parts[1].split("/", 1)[0] if len(parts) == 2 else "other"
        counts[f"{method} {endpoint}"] += 1

    session_request = aiohttp.ClientSession._request
    put_request = http.client.HTTPConnection.putrequest

    async def counted(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        count(method, url)
        return await session_request(self, method, url, **kwargs)

    def counted_put(
        self: http.client.HTTPConnection, method: str, url: str, *args: Any, **kw: Any
    ) -> None:
        count(method, url)
        put_request(self, method, url, *args, **kw)

    aiohttp.ClientSession._request = counted  # type: ignore[method-assign,assignment]
    http.client.HTTPConnection.putrequest = counted_put  # type: ignore[method-assign]
    return counts


def _filesystem(args: argparse.Namespace) -> Any:
    """A fresh AgaveFileSystem holding the given token (no login requests)."""
    from remotefs.agave import AgaveFileSystem

    return AgaveFileSystem(
        args.base_url,
        token=_read_token(args.token_file),
        token_expires_at=time.time() + 3600,
        skip_instance_cache=True,
    )


def remotefs_stream(args: argparse.Namespace) -> Result:
    """remotefs download into a sink that drops the bytes (the /dev/null case)."""
    from fsspec.asyn import sync

    from remotefs.agave.paths import AgavePath

    counts = _count_requests()
    fs = _filesystem(args)
    where = AgavePath.parse(args.remote)
    sizes: list[int] = []
    seconds = _timed(
        lambda: sizes.append(sync(fs.loop, fs.client.download, where, lambda chunk: None))
    )
    return seconds, sizes[0], counts


def remotefs_get_file(args: argparse.Namespace) -> Result:
    """remotefs ``get_file`` of one file to a local file."""
    counts = _count_requests()
    fs = _filesystem(args)
    seconds = _timed(lambda: fs.get_file(args.remote, args.local))
    return seconds, os.path.getsize(args.local), counts


def remotefs_put_file(args: argparse.Namespace) -> Result:
    """remotefs ``put_file`` (returns once the service has staged the file)."""
    counts = _count_requests()
    fs = _filesystem(args)
    seconds = _timed(lambda: fs.put_file(args.local, args.remote))
    return seconds, os.path.getsize(args.local), counts


def remotefs_get_tree(args: argparse.Namespace) -> Result:
    """remotefs recursive ``get`` of a directory into a local directory."""
    counts = _count_requests()
    fs = _filesystem(args)
    source, target = args.remote.rstrip("/") + "/", args.local.rstrip("/") + "/"
    seconds = _timed(lambda: fs.get(source, target, recursive=True))
    return seconds, _tree_size(args.local), counts


def requests_loop(args: argparse.Namespace) -> Result:
    """The seed's way: one ``requests.get`` per file in turn, written 1 KiB at a time."""
    import requests

    headers = {"Authorization": f"Bearer {_read_token(args.token_file)}"}
    names = Path(args.names).read_text(encoding="utf-8").split()
    base = f"{args.base_url}/files/v2/media/system/{args.remote.rstrip('/')}"
    os.makedirs(args.local, exist_ok=True)
    counts: Counter[str] = Counter()

    def loop() -> None:
        for name in names:
            resp = requests.get(f"{base}/{name}", headers=headers, stream=True, timeout=60)
            resp.raise_for_status()
            counts["GET media"] += 1
            with open(os.path.join(args.local, name), "wb") as out:
                for chunk in resp.iter_content(1024):
                    out.write(chunk)

    seconds = _timed(loop)
    return seconds, _tree_size(args.local), counts


MODES: dict[str, Callable[[argparse.Namespace], Result]] = {
    "remotefs-stream": remotefs_stream,
    "remotefs-get-file": remotefs_get_file,
    "remotefs-put-file": remotefs_put_file,
    "remotefs-get-tree": remotefs_get_tree,
    "requests-loop": requests_loop,
}


def main() -> None:
    """Run one mode and print its JSON result line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("base_url")
    parser.add_argument("token_file")
    parser.add_argument("--remote", required=True, help="fsspec path (cic.storage/demo/x)")
    parser.add_argument("--local", default=os.devnull, help="local file or directory")
    parser.add_argument("--names", help="file listing the names to fetch (requests-loop)")
    args = parser.parse_args()
    seconds, size, counts = MODES[args.mode](args)
    print(json.dumps({"seconds": seconds, "bytes": size, "requests": dict(counts)}))


if __name__ == "__main__":
    main()
