"""AgaveFileSystem against the Agave emulator over loopback: every operation, checked on disk."""

from __future__ import annotations

import logging
import os
import pickle
import stat
import time

import fsspec
import pytest
from conftest import CAROL_PASSWORD, make_agave_fs
from fsspec.asyn import sync
from fsspec.callbacks import Callback

from remotefs.agave.client import BULK_MIN
from remotefs.agave.paths import AgavePath
from remotefs.errors import TransferError
from remotefs.testing.agave import AgaveEmulator
from remotefs.testing.server import ServerThread

LARGE = BULK_MIN + 4321  # large enough for the bulk lane


def test_ls_info_exists(agave_fs, agave_dir):
    path, disk = agave_dir
    (disk / "a.txt").write_bytes(b"hello")
    (disk / "sub").mkdir()
    names = agave_fs.ls(path, detail=False)
    assert sorted(names) == [f"{path}/a.txt", f"{path}/sub"]
    detail = {e["name"]: e for e in agave_fs.ls(path)}
    assert detail[f"{path}/a.txt"]["type"] == "file"
    assert detail[f"{path}/a.txt"]["size"] == 5
    assert detail[f"{path}/sub"]["type"] == "directory"
    assert agave_fs.info(f"{path}/a.txt")["size"] == 5
    assert agave_fs.isdir(f"{path}/sub") and agave_fs.isfile(f"{path}/a.txt")
    assert agave_fs.exists(f"agave://{path}/a.txt")
    assert not agave_fs.exists(f"{path}/nope")
    # listing a file gives the file itself, as fsspec expects
    assert agave_fs.ls(f"{path}/a.txt", detail=False) == [f"{path}/a.txt"]


def test_home_and_absolute_paths(agave_fs, agave_dir):
    path, disk = agave_dir
    (disk / "f.txt").write_bytes(b"abs")
    name = disk.name
    assert "cic.storage/demo" in agave_fs.ls("agave://cic.storage", detail=False)
    assert agave_fs.cat(f"cic.storage//home/demo/{name}/f.txt") == b"abs"


def test_missing_paths_raise_file_not_found(agave_fs, agave_dir):
    path, _ = agave_dir
    for call in (agave_fs.ls, agave_fs.info, agave_fs.cat_file):
        with pytest.raises(FileNotFoundError):
            call(f"{path}/missing.txt")
    with pytest.raises(FileNotFoundError):
        agave_fs.get_file(f"{path}/missing.txt", os.devnull + ".x")


def test_permission_denied(agave_fs, agave_dir):
    with pytest.raises(PermissionError):
        agave_fs.ls("cic.storage/other")
    with pytest.raises(PermissionError):
        agave_fs.pipe_file("cic.storage//public/mine.txt", b"x")
    with pytest.raises(PermissionError):
        agave_fs.rm("cic.storage//public/README.txt")


def test_listing_pages_through_every_page(agave_emulator, agave_dir):
    emu, url = agave_emulator
    path, disk = agave_dir
    for i in range(23):
        (disk / f"f{i:02d}").write_bytes(b"x" * i)
    fs = make_agave_fs(url, page_size=5)
    before = len(emu.requests)
    names = fs.ls(path, detail=False)
    assert sorted(names) == [f"{path}/f{i:02d}" for i in range(23)]
    listing_calls = [r for r in emu.requests[before:] if "/listings/" in r[1]]
    assert len(listing_calls) >= 5


def test_cat_ranges(agave_fs, agave_dir):
    path, disk = agave_dir
    data = bytes(range(256)) * 40
    (disk / "r.bin").write_bytes(data)
    f = f"{path}/r.bin"
    assert agave_fs.cat_file(f) == data
    assert agave_fs.cat_file(f, start=10, end=20) == data[10:20]
    assert agave_fs.cat_file(f, start=-16) == data[-16:]
    assert agave_fs.cat_file(f, start=5, end=10**9) == data[5:]
    assert agave_fs.cat_file(f, start=len(data) + 5, end=len(data) + 10) == b""
    assert agave_fs.cat_file(f, start=100) == data[100:]


def test_open_random_access(agave_fs, agave_dir):
    path, disk = agave_dir
    data = os.urandom(300_000)
    (disk / "big.bin").write_bytes(data)
    with agave_fs.open(f"{path}/big.bin", "rb", block_size=4096) as fh:
        fh.seek(123_456)
        assert fh.read(1000) == data[123_456:124_456]
        fh.seek(-10, 2)
        assert fh.read() == data[-10:]
        fh.seek(0)
        assert fh.read(5) == data[:5]


class Recorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def set_size(self, size: int) -> None:
        self.sizes.append(size)
        super().set_size(size)


def test_get_file_streams_to_temp_name_and_renames(agave_fs, agave_dir, tmp_path):
    path, disk = agave_dir
    data = os.urandom(3 * 1024 * 1024 + 17)
    (disk / "d.bin").write_bytes(data)
    target = tmp_path / "out" / "d.bin"
    progress = Recorder()
    agave_fs.get_file(f"{path}/d.bin", str(target), callback=progress)
    assert target.read_bytes() == data
    assert progress.sizes == [len(data)] and progress.value == len(data)
    assert os.listdir(target.parent) == ["d.bin"]


@pytest.mark.parametrize("size", [10, LARGE], ids=["small", "bulk"])
def test_downloads_get_the_default_permissions(agave_fs, agave_dir, tmp_path, size):
    path, disk = agave_dir
    (disk / "m.bin").write_bytes(os.urandom(size))
    old = os.umask(0o022)
    try:
        agave_fs.get_file(f"{path}/m.bin", str(tmp_path / "m.bin"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.bin").st_mode) == 0o644  # not mkstemp's 0o600


@pytest.fixture
def large_remote(agave_emulator, agave_dir):
    """A fresh logged-in filesystem, the emulator, and a random LARGE file with its bytes."""
    emu, url = agave_emulator
    path, disk = agave_dir
    data = os.urandom(LARGE)
    (disk / "big.bin").write_bytes(data)
    fs = make_agave_fs(url)
    fs.ls(path)
    return fs, emu, f"{path}/big.bin", data


def test_large_get_file_is_one_plain_get(large_remote, tmp_path):
    fs, emu, remote, data = large_remote
    before = len(emu.requests)
    progress = Recorder()
    fs.get_file(remote, str(tmp_path / "big.bin"), callback=progress)
    media = [method for method, where in emu.requests[before:] if "/media/" in where]
    assert media == ["GET"]
    assert (tmp_path / "big.bin").read_bytes() == data
    assert progress.sizes == [LARGE] and progress.value == LARGE


def test_large_downloads_resume_after_cuts_and_503s(tmp_path):
    emu = AgaveEmulator(fail_rate=1.0, seed=11)
    first_gets: set[str] = set()
    ranges: list[str] = []

    def exempt(request) -> bool:
        """Fail (503 or a cut body) the first GET of each file, which the bulk lane sends."""
        if "/media/" not in request.path:
            return True
        ranges.append(request.headers.get("Range", ""))
        if request.path in first_gets:
            return True
        first_gets.add(request.path)
        return False

    emu.fault_injector.exempt = exempt
    folder = emu.root / "home" / "demo" / "big"
    folder.mkdir(parents=True)
    originals = {f"b{i}.bin": os.urandom(LARGE - i) for i in range(6)}
    for name, data in originals.items():
        (folder / name).write_bytes(data)
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url)
        fs.get("cic.storage/demo/big/", str(tmp_path / "back") + "/", recursive=True)
    assert emu.fault_injector.injected == len(originals)
    resumed = [r for r in ranges if r and not r.startswith("bytes=0-")]
    assert resumed, "a cut body must be resumed from where it broke, not fetched again"
    assert ranges.count("") > len(originals), "a 503 must be retried"
    for name, data in originals.items():
        assert (tmp_path / "back" / name).read_bytes() == data


def test_large_download_with_an_expired_token(large_remote, tmp_path):
    fs, emu, remote, data = large_remote
    old = fs.tokens.token.access_token
    emu.expire_tokens()
    fs.get_file(remote, str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == data
    assert fs.tokens.token.access_token != old


def test_get_recursive(agave_fs, agave_dir, tmp_path):
    path, disk = agave_dir
    (disk / "x" / "y").mkdir(parents=True)
    (disk / "x" / "1.txt").write_bytes(b"1")
    (disk / "x" / "y" / "2.txt").write_bytes(b"2")
    agave_fs.get(f"{path}/x", str(tmp_path / "copy"), recursive=True)
    assert (tmp_path / "copy" / "1.txt").read_bytes() == b"1"
    assert (tmp_path / "copy" / "y" / "2.txt").read_bytes() == b"2"


def test_put_file_waits_for_staging(tmp_path):
    emu = AgaveEmulator(staging_delay=0.4)
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url)
        local = tmp_path / "up.bin"
        data = os.urandom(2 * 1024 * 1024 + 3)
        local.write_bytes(data)
        progress = Recorder()
        fs.put_file(str(local), "cic.storage/demo/new/up.bin", callback=progress)
        # put returns only once the file is really there, complete
        assert (emu.root / "home/demo/new/up.bin").read_bytes() == data
        assert fs.info("cic.storage/demo/new/up.bin")["size"] == len(data)
        assert progress.value == len(data)


def test_large_put_file_is_one_post_into_a_folder_made_first(agave_emulator, agave_dir, tmp_path):
    emu, url = agave_emulator
    path, disk = agave_dir
    local = tmp_path / "big upload ü.bin"
    data = os.urandom(LARGE)
    local.write_bytes(data)
    fs = make_agave_fs(url)
    fs.ls(path)
    before = len(emu.requests)
    progress = Recorder()
    fs.put_file(str(local), f"{path}/new/big upload ü.bin", callback=progress)
    assert (disk / "new" / "big upload ü.bin").read_bytes() == data
    posts = [where for method, where in emu.requests[before:] if method == "POST"]
    assert len(posts) == 1 and progress.value == LARGE


def test_large_uploads_survive_503s_and_an_expired_token(tmp_path):
    emu = AgaveEmulator(fail_rate=1.0, seed=5)
    first_posts: set[str] = set()

    def exempt(request) -> bool:
        """Answer 503 to the first upload of each file (the bulk lane's)."""
        if request.method != "POST" or "/media/" not in request.path:
            return True
        key = request.path + request.headers.get("Content-Length", "")
        if key in first_posts:
            return True
        first_posts.add(key)
        return False

    emu.fault_injector.exempt = exempt
    local = tmp_path / "big.bin"
    data = os.urandom(LARGE)
    local.write_bytes(data)
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url)
        fs.put_file(str(local), "cic.storage/demo/one.bin")
        assert emu.fault_injector.injected == 1
        emu.fault_injector.fail_rate = 0.0
        old = fs.tokens.token.access_token
        emu.expire_tokens()  # the lane meets the gateway's 401 and renews the token
        home, two = AgavePath.parse("cic.storage/demo"), AgavePath.parse("cic.storage/demo/two.bin")
        before = len(emu.requests)
        sync(fs.loop, fs.client.upload, home, "two.bin", lambda: open(local, "rb"), LARGE)
        sync(fs.loop, lambda: fs.client.wait_staged(two, LARGE, timeout=30))
        assert fs.tokens.token.access_token != old
        posts = [m for m, where in emu.requests[before:] if m == "POST" and "/media/" in where]
        assert len(posts) == 2, "the body goes once with the stale token, once with the new"
        # a refusal that no token cures is raised at once, without sending the body again
        carol = AgavePath.parse("cic.storage//home/carol")
        before = len(emu.requests)
        with pytest.raises(PermissionError):
            sync(fs.loop, fs.client.upload, carol, "x.bin", lambda: open(local, "rb"), LARGE)
        assert [m for m, _ in emu.requests[before:]] == ["POST"]
    for name in ("one.bin", "two.bin"):
        assert (emu.root / "home/demo" / name).read_bytes() == data


def test_staging_failure_is_an_error(tmp_path):
    emu = AgaveEmulator()
    emu.fail_staging(lambda p: p.endswith("doomed.txt"))
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url)
        with pytest.raises(TransferError, match="STAGING_FAILED"):
            fs.pipe_file("cic.storage/demo/doomed.txt", b"data")


def test_staging_timeout(tmp_path):
    emu = AgaveEmulator(staging_delay=5)
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url, staging_timeout=0.3)
        with pytest.raises(TimeoutError) as info:
            fs.pipe_file("cic.storage/demo/slow.txt", b"data")
    # fsspec's sync layer re-raises timeouts as its own FSTimeoutError, caused by ours
    assert "not staged after 0.3s" in str(info.value.__cause__ or info.value)


def test_pipe_and_write_modes(agave_fs, agave_dir):
    path, disk = agave_dir
    agave_fs.pipe_file(f"{path}/p.txt", b"piped")
    assert (disk / "p.txt").read_bytes() == b"piped"
    with agave_fs.open(f"{path}/w.txt", "wb") as fh:
        fh.write(b"a" * 100)
        fh.write(b"b" * 100)
    assert (disk / "w.txt").read_bytes() == b"a" * 100 + b"b" * 100
    with pytest.raises(FileExistsError):
        agave_fs.open(f"{path}/w.txt", "xb")
    with pytest.raises(FileExistsError):
        agave_fs.pipe_file(f"{path}/p.txt", b"again", mode="create")
    with agave_fs.open(f"{path}/empty", "wb"):
        pass
    assert (disk / "empty").read_bytes() == b""
    with agave_fs.open(f"{path}/t.txt", "w") as fh:
        fh.write("text ✓")
    assert agave_fs.read_text(f"{path}/t.txt") == "text ✓"


def test_mkdir_makedirs(agave_fs, agave_dir):
    path, disk = agave_dir
    agave_fs.mkdir(f"{path}/one")
    assert (disk / "one").is_dir()
    with pytest.raises(FileExistsError):
        agave_fs.mkdir(f"{path}/one")
    agave_fs.makedirs(f"{path}/a/b/c")
    assert (disk / "a/b/c").is_dir()
    agave_fs.makedirs(f"{path}/a/b/c", exist_ok=True)
    with pytest.raises(FileExistsError):
        agave_fs.makedirs(f"{path}/a/b/c", exist_ok=False)
    with pytest.raises(FileNotFoundError):
        agave_fs.mkdir(f"{path}/no/such/parent", create_parents=False)


def test_rm(agave_fs, agave_dir):
    path, disk = agave_dir
    (disk / "d" / "e").mkdir(parents=True)
    (disk / "d" / "e" / "f.txt").write_bytes(b"f")
    (disk / "g.txt").write_bytes(b"g")
    agave_fs.rm_file(f"{path}/g.txt")
    assert not (disk / "g.txt").exists()
    with pytest.raises(IsADirectoryError):
        agave_fs.rm(f"{path}/d")
    agave_fs.rm(f"{path}/d", recursive=True)
    assert not (disk / "d").exists()
    (disk / "empty").mkdir()
    agave_fs.rmdir(f"{path}/empty")
    assert not (disk / "empty").exists()
    with pytest.raises(FileNotFoundError):
        agave_fs.rm_file(f"{path}/g.txt")


def test_server_side_copy_and_move(agave_emulator, agave_fs, agave_dir):
    emu, _ = agave_emulator
    path, disk = agave_dir
    (disk / "src.txt").write_bytes(b"payload")
    before = len(emu.requests)
    agave_fs.cp_file(f"{path}/src.txt", f"{path}/copy.txt")
    assert (disk / "copy.txt").read_bytes() == b"payload"
    agave_fs.mv(f"{path}/copy.txt", f"{path}/moved.txt")
    assert (disk / "moved.txt").read_bytes() == b"payload"
    assert not (disk / "copy.txt").exists()
    methods = [m for m, _ in emu.requests[before:]]
    assert "GET" in methods and methods.count("PUT") == 2
    assert not any(m == "POST" for m in methods), "copy and move must not go through the client"
    (disk / "folder").mkdir()
    agave_fs.mv(f"{path}/moved.txt", f"{path}/folder")
    assert (disk / "folder" / "moved.txt").read_bytes() == b"payload"
    agave_fs.mv(f"{path}/folder", f"{path}/renamed", recursive=True)
    assert (disk / "renamed" / "moved.txt").exists() and not (disk / "folder").exists()


def test_modified_and_ukey(agave_fs, agave_dir):
    path, disk = agave_dir
    agave_fs.pipe_file(f"{path}/m.txt", b"1")
    first = agave_fs.ukey(f"{path}/m.txt")
    assert agave_fs.modified(f"{path}/m.txt").tzinfo is not None
    agave_fs.pipe_file(f"{path}/m.txt", b"22")
    assert agave_fs.ukey(f"{path}/m.txt") != first


def test_listing_cache_invalidated_by_writes(agave_fs, agave_dir):
    path, _ = agave_dir
    assert agave_fs.ls(path, detail=False) == []
    agave_fs.pipe_file(f"{path}/new.txt", b"n")
    assert agave_fs.ls(path, detail=False) == [f"{path}/new.txt"]
    agave_fs.mkdir(f"{path}/dir")
    assert len(agave_fs.ls(path)) == 2
    agave_fs.rm(f"{path}/new.txt")
    assert agave_fs.ls(path, detail=False) == [f"{path}/dir"]


def test_expired_token_is_refreshed_transparently(agave_emulator, agave_dir):
    emu, url = agave_emulator
    path, disk = agave_dir
    (disk / "t.txt").write_bytes(b"token")
    fs = make_agave_fs(url)
    assert fs.cat(f"{path}/t.txt") == b"token"
    old = fs.tokens.token
    emu.expire_tokens()
    assert fs.cat(f"{path}/t.txt") == b"token"
    assert fs.tokens.token.access_token != old.access_token
    assert fs.tokens.token.refresh_token != old.refresh_token


def test_short_lived_tokens_refresh_before_expiry(tmp_path):
    emu = AgaveEmulator(token_lifetime=2)
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url)
        fs.pipe_file("cic.storage/demo/a.txt", b"a")
        first = fs.tokens.token.access_token
        import time

        time.sleep(1.2)
        assert fs.cat("cic.storage/demo/a.txt") == b"a"
        assert fs.tokens.token.access_token != first


def test_failed_refresh_is_a_clear_error(agave_emulator, agave_dir):
    emu, url = agave_emulator
    path, _ = agave_dir
    fs = make_agave_fs(url)
    fs.ls(path)
    token = fs.tokens.token
    fs2 = make_agave_fs(
        url,
        username=None,
        password=None,
        client_key=fs.credentials.client_key,
        client_secret=fs.credentials.client_secret,
        token=token.access_token,
        refresh_token="not-a-valid-refresh-token",
    )
    emu.expire_tokens()
    with pytest.raises(PermissionError, match="log in again") as info:
        fs2.ls(path)
    assert "not-a-valid-refresh-token" not in str(info.value)


def test_bad_password_is_a_permission_error(agave_emulator):
    _, url = agave_emulator
    fs = make_agave_fs(url, password="wrong-password-123")
    with pytest.raises(PermissionError) as info:
        fs.ls("cic.storage/demo")
    assert "wrong-password-123" not in str(info.value)


def test_existing_client_is_reused(agave_emulator):
    emu, url = agave_emulator
    make_agave_fs(url, client_name="reuse-me").ls("cic.storage/demo")
    before = [r for r in emu.requests if r[0] == "POST" and r[1].startswith("/clients/v2")]
    fs = make_agave_fs(url, client_name="reuse-me")
    fs.ls("cic.storage/demo")
    after = [r for r in emu.requests if r[0] == "POST" and r[1].startswith("/clients/v2")]
    assert len(after) == len(before)


def test_secrets_stay_out_of_reprs_options_and_pickles(agave_emulator, agave_dir):
    _, url = agave_emulator
    fs = make_agave_fs(url, username="carol", password=CAROL_PASSWORD)
    fs.ls("cic.storage/carol")
    token = fs.tokens.token
    secrets = [
        CAROL_PASSWORD,
        token.access_token,
        token.refresh_token,
        fs.credentials.client_secret,
    ]
    texts = [
        repr(fs),
        repr(fs.tokens),
        repr(token),
        repr(fs.credentials),
        repr(fs.client),
        fs.to_json(),
        str(fs.storage_options),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    blob = pickle.dumps(fs)
    assert CAROL_PASSWORD.encode() not in blob


def test_pickle_round_trip(agave_fs, agave_dir):
    path, disk = agave_dir
    (disk / "p.txt").write_bytes(b"pickled")
    clone = pickle.loads(pickle.dumps(agave_fs))
    assert clone is not agave_fs
    assert clone.cat(f"{path}/p.txt") == b"pickled"
    assert clone.credentials.password is None


def test_fsspec_open_through_entry_point(agave_emulator, agave_dir):
    _, url = agave_emulator
    path, disk = agave_dir
    options = {"base_url": url, "username": "demo", "password": "demo"}
    with fsspec.open(f"agave://{path}/via-fsspec.txt", "wt", **options) as fh:
        fh.write("through the entry point")
    assert (disk / "via-fsspec.txt").read_text() == "through the entry point"
    with fsspec.open(f"agave://{path}/via-fsspec.txt", "rt", **options) as fh:
        assert fh.read() == "through the entry point"


def test_environment_variables(agave_emulator, agave_dir, monkeypatch):
    _, url = agave_emulator
    path, disk = agave_dir
    (disk / "env.txt").write_bytes(b"env")
    monkeypatch.setenv("AGAVE_BASE_URL", url)
    monkeypatch.setenv("AGAVE_USERNAME", "demo")
    monkeypatch.setenv("AGAVE_PASSWORD", "demo")
    fs = fsspec.filesystem("agave", skip_instance_cache=True)
    assert fs.cat(f"{path}/env.txt") == b"env"


def test_two_hundred_files_survive_faults(tmp_path):
    emu = AgaveEmulator(fail_rate=0.05, seed=7)
    source = tmp_path / "src"
    source.mkdir()
    for i in range(200):
        (source / f"f{i:03d}.bin").write_bytes(os.urandom(1000 + i * 97))
    with ServerThread(emu.make_app()) as server:
        fs = make_agave_fs(server.url)
        fs.put(str(source) + "/", "cic.storage/demo/many/", recursive=True)
        fs.get("cic.storage/demo/many/", str(tmp_path / "back") + "/", recursive=True)
        failures = emu.fault_injector.injected
    for i in range(200):
        name = f"f{i:03d}.bin"
        original = (source / name).read_bytes()
        assert (emu.root / "home/demo/many" / name).read_bytes() == original
        assert (tmp_path / "back" / name).read_bytes() == original
    assert failures > 10, "the fault injector must really have failed requests"


def test_text_io_with_pandas(agave_emulator, agave_dir):
    pd = pytest.importorskip("pandas")
    _, url = agave_emulator
    path, disk = agave_dir
    options = {"base_url": url, "username": "demo", "password": "demo"}
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    frame.to_csv(f"agave://{path}/frame.csv", index=False, storage_options=options)
    assert (disk / "frame.csv").read_text().splitlines()[0] == "x,y"
    back = pd.read_csv(f"agave://{path}/frame.csv", storage_options=options)
    assert back.equals(frame)


def test_pipe_many(agave_fs, agave_dir):
    path, disk = agave_dir
    agave_fs.pipe({f"{path}/m1": b"1", f"{path}/m2": b"2"})
    assert (disk / "m1").read_bytes() == b"1" and (disk / "m2").read_bytes() == b"2"


def test_debug_logs_hold_no_secrets(agave_emulator, agave_dir, caplog):
    _, url = agave_emulator
    caplog.set_level(logging.DEBUG)
    fs = make_agave_fs(url, username="carol", password=CAROL_PASSWORD)
    fs.pipe_file("cic.storage/carol/logged.txt", b"x")
    fs.cat("cic.storage/carol/logged.txt")
    token = fs.tokens.token
    assert "files/v2/media" in caplog.text, "requests must be logged at DEBUG"
    for secret in (
        CAROL_PASSWORD,
        token.access_token,
        token.refresh_token,
        fs.credentials.client_secret,
    ):
        assert secret not in caplog.text


def test_append_mode_keeps_existing_content(agave_fs, agave_dir):
    path, disk = agave_dir
    agave_fs.pipe_file(f"{path}/log.txt", b"first\n")
    with agave_fs.open(f"{path}/log.txt", "ab") as fh:
        fh.write(b"second\n")
    assert (disk / "log.txt").read_bytes() == b"first\nsecond\n"
    with agave_fs.open(f"{path}/new-log.txt", "ab") as fh:
        fh.write(b"only\n")
    assert (disk / "new-log.txt").read_bytes() == b"only\n"


def test_unsafe_names_from_a_hostile_listing_are_refused(tmp_path):
    from aiohttp import web

    async def listing(request):
        entries = [
            {"name": ".", "type": "dir", "length": 0},
            {"name": "../../escape.txt", "type": "file", "length": 3},
        ]
        return web.json_response({"status": "success", "result": entries})

    app = web.Application()
    app.router.add_get("/files/v2/listings/system/{tail:.*}", listing)
    with ServerThread(app) as server:
        fs = make_agave_fs(
            server.url, username=None, password=None, token="t", token_expires_at=time.time() + 3600
        )
        with pytest.raises(OSError, match="unsafe file name"):
            fs.ls("cic.storage/demo/dir")
        # fsspec's walk leaves out directories it cannot list: nothing lands anywhere
        fs.get("cic.storage/demo/dir/", str(tmp_path / "dest") + "/", recursive=True)
    assert list(tmp_path.rglob("*escape*")) == []


def test_client_download_accepts_a_plain_write_sink(agave_fs, agave_dir, tmp_path):
    from fsspec.asyn import sync

    from remotefs.agave.paths import AgavePath

    path, disk = agave_dir
    (disk / "s.bin").write_bytes(b"sink" * 1000)
    with open(tmp_path / "s.bin", "wb") as out:
        count = sync(
            agave_fs.loop, agave_fs.client.download, AgavePath.parse(f"{path}/s.bin"), out.write
        )
    assert count == 4000 and (tmp_path / "s.bin").read_bytes() == b"sink" * 1000


def test_recursive_get_lists_each_folder_once(agave_emulator, agave_dir, tmp_path):
    emu, url = agave_emulator
    path, disk = agave_dir
    for i in range(5):
        (disk / f"{i}.txt").write_bytes(b"x")
    fs = make_agave_fs(url)
    fs.ls(path)  # log in and warm up outside the count
    fs.invalidate_cache()
    before = len(emu.requests)
    fs.get(f"{path}/", str(tmp_path / "out") + "/", recursive=True)
    listings = [r for r in emu.requests[before:] if "/listings/" in r[1]]
    assert len(listings) <= 2
    assert sorted(os.listdir(tmp_path / "out")) == [f"{i}.txt" for i in range(5)]
