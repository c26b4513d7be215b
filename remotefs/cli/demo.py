"""``remotefs demo``: the main job end to end on an emulated Agave service on loopback.

It starts the Agave emulator in this process on a free port, then does what a scientist does:
log in, make a folder, upload a table, list it, read it with pandas straight from
``agave://``, download it again and check the copy is identical, saying what each step does.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any


def _step(say: Callable[[str], None], number: int, text: str) -> None:
    say(f"\n[{number}] {text}")


def _write_table(path: str, rows: int) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["station", "hour", "temperature_c", "salinity_psu"])
        for i in range(rows):
            writer.writerow(
                [
                    f"S{i % 7}",
                    i % 24,
                    round(12 + 4 * math.sin(i / 9), 3),
                    round(35 + (i % 5) / 10, 2),
                ]
            )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_demo(rows: int = 1000, say: Callable[[str], None] = print) -> None:
    """Run the demo, reporting each step through ``say``; raises if any step goes wrong."""
    import pandas as pd

    from remotefs.agave import AgaveFileSystem
    from remotefs.testing.agave import AgaveEmulator
    from remotefs.testing.server import ServerThread

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="remotefs-demo-") as work:
        emulator = AgaveEmulator(data_dir=os.path.join(work, "server"), staging_delay=0.2)
        with ServerThread(emulator.make_app()) as server:
            say(f"remotefs demo: an Agave v2 service emulated at {server.url} (user demo)")
            options: dict[str, Any] = {
                "base_url": server.url,
                "username": "demo",
                "password": "demo",
                "credential_store": os.path.join(work, "credentials.json"),
            }

            _step(say, 1, "Log in: create an OAuth client, get a token, read the profile")
            fs = AgaveFileSystem(skip_instance_cache=True, **options)
            token = fs.tokens.current()
            profile = fs.account.whoami(token.access_token)
            say(
                f"    logged in as {profile['username']} <{profile['email']}>, "
                f"token valid for {token.remaining() / 3600:.1f} h"
            )

            folder = "cic.storage/demo/remotefs-demo"
            _step(say, 2, f"Make a folder: agave://{folder}")
            fs.makedirs(folder, exist_ok=True)

            local = os.path.join(work, "measurements.csv")
            _write_table(local, rows)
            remote = f"{folder}/measurements.csv"
            _step(say, 3, f"Upload a {os.path.getsize(local):,}-byte table to agave://{remote}")
            say("    (the service queues uploads; remotefs waits until staging completes)")
            fs.put_file(local, remote)

            _step(say, 4, f"List agave://{folder}")
            for entry in fs.ls(folder):
                say(f"    {entry['type']:<9} {entry['size']:>10,}  {entry['name']}")

            _step(say, 5, "Read it with pandas, straight from agave://")
            frame = pd.read_csv(f"agave://{remote}", storage_options=options)
            means = frame.groupby("station")["temperature_c"].mean().round(2)
            say(f"    {len(frame)} rows; mean temperature by station: {means.to_dict()}")

            back = os.path.join(work, "downloaded.csv")
            _step(say, 6, f"Download it again to {back} and compare")
            fs.get_file(remote, back)
            if _sha256(back) != _sha256(local):
                raise RuntimeError("the downloaded copy differs from the uploaded file")
            if len(frame) != rows:
                raise RuntimeError(f"pandas read {len(frame)} rows, expected {rows}")
            say(f"    identical: sha256 {_sha256(back)[:16]}...")
    say(
        f"\nDone in {time.monotonic() - started:.1f} s: login, mkdir, upload, list, "
        "pandas, download, compare."
    )
