"""The emulators' streaming multipart/form-data reader, fed in every possible way of chunking."""

from __future__ import annotations

import asyncio

import pytest
import requests

from remotefs.testing.agave import AgaveEmulator
from remotefs.testing.multipart import MultipartError, MultipartStream, boundary_of
from remotefs.testing.server import ServerThread

BOUNDARY = b"xYzZY"
FILE = b"data with --xYzZY inside, and \r\n--xYzZ nearly a delimiter\r\n"
BODY = (
    b"preamble to ignore\r\n"
    b"--xYzZY\r\n"
    b'Content-Disposition: form-data; name="fileName"\r\n\r\n'
    b"renamed.txt\r\n"
    b"--xYzZY  \r\n"
    b"Content-Disposition: form-data; name=\"fileToUpload\"; filename*=utf-8''n%C3%A4me.bin\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n" + FILE + b"\r\n--xYzZY--"
)


class Chunks:
    """Just what MultipartStream reads: ``readany()`` handing out chunks, then b''."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


def parse(chunks: list[bytes]) -> list[tuple[str | None, str | None, bytes]]:
    async def run() -> list[tuple[str | None, str | None, bytes]]:
        form = MultipartStream(Chunks(chunks), BOUNDARY)  # type: ignore[arg-type]
        parts = []
        while (part := await form.next_part()) is not None:
            body = bytearray()
            await form.read_into(body.extend)
            parts.append((part.name, part.filename, bytes(body)))
        return parts

    return asyncio.run(run())


EXPECTED = [("fileName", None, b"renamed.txt"), ("fileToUpload", "näme.bin", FILE)]


def test_one_chunk():
    assert parse([BODY]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(BODY)))
def test_every_split_into_two_chunks(cut):
    assert parse([BODY[:cut], BODY[cut:]]) == EXPECTED


def test_byte_by_byte():
    assert parse([BODY[i : i + 1] for i in range(len(BODY))]) == EXPECTED


def test_a_closing_line_and_epilogue_are_ignored():
    assert parse([BODY + b"\r\nepilogue\r\n"]) == EXPECTED


def test_an_unread_part_is_skipped():
    async def run() -> list[str | None]:
        form = MultipartStream(Chunks([BODY]), BOUNDARY)  # type: ignore[arg-type]
        names = []
        while (part := await form.next_part()) is not None:
            names.append(part.name)
        return names

    assert asyncio.run(run()) == ["fileName", "fileToUpload"]


@pytest.mark.parametrize(
    "body",
    [
        BODY[:-30],  # cut inside the file
        BODY.replace(b"--xYzZY  \r\n", b"--xYzZY junk\r\n"),
        BODY.replace(b'Content-Disposition: form-data; name="fileName"', b"no colon here"),
        BODY.replace(b'form-data; name="fileName"', b'attachment; name="fileName"'),
    ],
    ids=["truncated", "garbage-after-delimiter", "bad-header", "not-form-data"],
)
def test_malformed_bodies_raise(body):
    with pytest.raises(MultipartError):
        parse([body])


def test_boundary_of_content_types():
    assert boundary_of('multipart/form-data; boundary="a b:c"') == b"a b:c"
    assert boundary_of("multipart/form-data; charset=utf-8; boundary=xYz") == b"xYz"
    with pytest.raises(MultipartError):
        boundary_of("multipart/form-data")


def test_the_agave_emulator_answers_400_to_a_malformed_upload():
    emu = AgaveEmulator()
    with ServerThread(emu.make_app()) as server:
        from remotefs.agave import AgaveAccount

        account = AgaveAccount(server.url)
        client = account.create_client("demo", "demo", "multipart-test")
        token = account.get_token(client["consumerKey"], client["consumerSecret"], "demo", "demo")
        resp = requests.post(
            f"{server.url}/files/v2/media/system/cic.storage/demo",
            data=BODY[:-30],
            headers={
                "Authorization": f"Bearer {token.access_token}",
                "Content-Type": "multipart/form-data; boundary=xYzZY",
            },
            timeout=10,
        )
        # the seed's own upload (requests, files=...) is covered by the notebook test
    assert resp.status_code == 400
    assert "multipart" in resp.json()["message"].lower()
