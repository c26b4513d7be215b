"""remotefs ls, cat, du, mkdir, rm, cp and mv across local paths, memory://, agave:// and edito://.

Each command runs in a subprocess and in-process, and the tests check what it did: the
emulators' trees, the bytes, the printed output and the exit code.
"""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
import time

import fsspec
import pytest
from conftest import run_cli

from remotefs.cli import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_PARTIAL,
    EXIT_USAGE,
    main,
)
from remotefs.testing.server import ServerThread

MTIME = 1_700_000_000.25


@pytest.fixture
def tree(tmp_path):
    """A local folder: a.txt (5 bytes), sub/b.bin (1000 bytes), sub/deeper/c.txt (empty)."""
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"hello")
    (root / "sub" / "b.bin").write_bytes(bytes(range(250)) * 4)
    (root / "sub" / "deeper" / "c.txt").write_bytes(b"")
    for path in root.rglob("*"):
        os.utime(path, (MTIME, MTIME))
    return root


@pytest.fixture
def memory():
    """A clean memory:// filesystem (its store is shared by every instance in the process)."""
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def files_under(root) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def s3_objects(emu, prefix: str) -> dict[str, bytes]:
    client = emu.s3_client()
    listing = client.list_objects_v2(Bucket="oidc-demo", Prefix=prefix + "/")
    return {
        item["Key"][len(prefix) + 1 :]: client.get_object(Bucket="oidc-demo", Key=item["Key"])[
            "Body"
        ].read()
        for item in listing.get("Contents", [])
    }


EXPECTED = {"a.txt": b"hello", "sub/b.bin": bytes(range(250)) * 4, "sub/deeper/c.txt": b""}


# -- ls ------------------------------------------------------------------------------------------


def test_ls_of_a_local_folder_in_a_subprocess(tree):
    result = run_cli("ls", str(tree))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == ["a.txt", "sub/"]
    result = run_cli("ls", "-l", "-R", str(tree))
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == [
        "a.txt", "sub/", "sub/b.bin", "sub/deeper/", "sub/deeper/c.txt",
    ]  # fmt: skip
    assert lines[0].split()[0] == "5" and lines[2].split()[0] == "1000"
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(MTIME)) in lines[0]
    rows = json.loads(run_cli("ls", "--json", str(tree / "sub")).stdout)
    assert [(r["name"], r["type"], r["size"]) for r in rows] == [
        ("b.bin", "file", 1000), ("deeper", "directory", 0),
    ]  # fmt: skip
    assert rows[0]["mtime"] == MTIME and rows[0]["url"] == str(tree / "sub" / "b.bin")


def test_ls_of_agave_memory_and_a_file_in_process(agave_login, agave_dir, memory, capsys):
    path, disk = agave_dir
    (disk / "x.csv").write_text("1,2\n")
    (disk / "folder").mkdir()
    memory.pipe("/m/one", b"1")
    assert main(["ls", f"agave://{path}", "memory://m", f"agave://{path}/x.csv"]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"agave://{path}:\nfolder/\nx.csv\n\nmemory://m:\none\n\nagave://{path}/x.csv:\nx.csv\n"
    )


def test_ls_of_edito_in_a_subprocess(edito_login, edito_prefix, edito_fs):
    edito_fs.pipe(f"{edito_prefix}/k/v.txt", b"abc")
    result = run_cli("ls", "-R", f"edito://{edito_prefix}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["k/", "k/v.txt"]


# -- cat, du, mkdir, rm --------------------------------------------------------------------------


def test_cat_streams_bytes(agave_login, agave_dir, tree, capsysbinary):
    path, disk = agave_dir
    (disk / "b.bin").write_bytes((tree / "sub" / "b.bin").read_bytes())
    assert main(["cat", f"agave://{path}/b.bin", str(tree / "a.txt")]) == 0
    assert capsysbinary.readouterr().out == EXPECTED["sub/b.bin"] + b"hello"
    result = subprocess.run(
        [sys.executable, "-m", "remotefs", "cat", f"agave://{path}/b.bin"], capture_output=True
    )
    assert result.returncode == 0 and result.stdout == EXPECTED["sub/b.bin"]


def test_du_counts_bytes_and_files(agave_login, agave_dir, tree, capsys):
    path, disk = agave_dir
    assert main(["cp", "-r", str(tree), f"agave://{path}"]) == 0
    capsys.readouterr()
    assert main(["du", f"agave://{path}", str(tree / "a.txt")]) == 0
    assert capsys.readouterr().out == f"1005\t3 files\tagave://{path}\n5\t1 files\t{tree}/a.txt\n"
    result = run_cli("du", "-H", "--json", str(tree))
    assert json.loads(result.stdout) == [{"url": str(tree), "bytes": 1005, "files": 3}]
    assert run_cli("du", "-H", str(tree)).stdout.startswith("1005 B\t3 files")


def test_mkdir_with_and_without_parents(agave_login, agave_dir, tmp_path, capsys):
    path, disk = agave_dir
    assert main(["mkdir", "-p", f"agave://{path}/a/b/c"]) == 0
    assert (disk / "a" / "b" / "c").is_dir()
    assert main(["mkdir", f"agave://{path}/a/new"]) == 0
    assert (disk / "a" / "new").is_dir()
    assert main(["mkdir", f"agave://{path}/a/new"]) == EXIT_ERROR
    assert main(["mkdir", f"agave://{path}/no/such/parent"]) == EXIT_NOT_FOUND
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"remotefs: error: agave://{path}/a/new exists already",
        f"remotefs: error: the parent of agave://{path}/no/such/parent does not exist: use "
        "mkdir -p",
    ]
    result = run_cli("mkdir", "-p", str(tmp_path / "x" / "y"))
    assert result.returncode == 0 and (tmp_path / "x" / "y").is_dir()


def test_rm_files_and_trees(agave_login, agave_dir, edito_login, edito_prefix, edito_fs, capsys):
    path, disk = agave_dir
    (disk / "d").mkdir()
    (disk / "d" / "f.txt").write_text("x")
    (disk / "g.txt").write_text("y")
    assert main(["rm", f"agave://{path}/g.txt"]) == 0
    assert not (disk / "g.txt").exists()
    assert main(["rm", f"agave://{path}/d"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == f"remotefs: error: agave://{path}/d is a directory: use rm -r\n"
    assert (disk / "d" / "f.txt").exists()
    assert main(["rm", "-r", f"agave://{path}/d"]) == 0
    assert not (disk / "d").exists()
    assert main(["rm", f"agave://{path}/d"]) == EXIT_NOT_FOUND
    edito_fs.pipe(f"{edito_prefix}/t/1", b"1")
    edito_fs.pipe(f"{edito_prefix}/t/2", b"2")
    result = run_cli("rm", "-r", f"edito://{edito_prefix}/t")
    assert result.returncode == 0, result.stderr
    assert s3_objects(edito_login, edito_prefix.split("/", 1)[1]) == {}


# -- cp ------------------------------------------------------------------------------------------


def test_cp_local_tree_to_agave_in_a_subprocess_is_silent_when_piped(agave_login, agave_dir, tree):
    path, disk = agave_dir
    result = run_cli("cp", "-r", str(tree), f"agave://{path}/copy")
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""  # no progress bar in a pipe
    assert files_under(disk / "copy") == EXPECTED


def test_cp_agave_to_local_in_process_keeps_mtime_and_prints_json(
    agave_login, agave_dir, tree, tmp_path, capsys
):
    path, disk = agave_dir
    assert main(["cp", "-r", str(tree), f"agave://{path}"]) == 0
    capsys.readouterr()
    out = tmp_path / "back"
    assert main(["cp", "-r", "--json", "--transfers", "1", f"agave://{path}", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 3 and summary["bytes"] == 1005 and summary["failed"] == []
    assert files_under(out) == EXPECTED
    remote_mtime = fsspec.filesystem("agave", skip_instance_cache=True).info(f"{path}/a.txt")
    assert os.path.getmtime(out / "a.txt") == pytest.approx(remote_mtime["mtime"])
    assert not list(out.rglob("*.part"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out / "a.txt").st_mode) == 0o666 & ~umask  # as `cp` makes it


def test_cp_a_file_into_a_directory_and_to_a_new_name(agave_login, agave_dir, tree, capsys):
    path, disk = agave_dir
    assert main(["cp", str(tree / "a.txt"), f"agave://{path}/"]) == 0
    assert main(["cp", str(tree / "a.txt"), f"agave://{path}/renamed.txt"]) == 0
    assert (disk / "a.txt").read_bytes() == b"hello" == (disk / "renamed.txt").read_bytes()
    assert main(["cp", str(tree), f"agave://{path}/x"]) == EXIT_ERROR
    assert capsys.readouterr().err == f"remotefs: error: {tree} is a directory: use cp -r\n"


def test_cp_remote_to_remote_agave_to_edito_in_a_subprocess(
    agave_login, agave_dir, edito_login, edito_prefix, tree
):
    path, disk = agave_dir
    assert main(["cp", "-r", str(tree), f"agave://{path}"]) == 0
    result = run_cli("cp", "-r", "--transfers", "8", f"agave://{path}", f"edito://{edito_prefix}")
    assert result.returncode == 0, result.stderr
    key = edito_prefix.split("/", 1)[1]
    assert s3_objects(edito_login, key) == EXPECTED
    head = edito_login.s3_client().head_object(Bucket="oidc-demo", Key=f"{key}/a.txt")
    agave_mtime = fsspec.filesystem("agave", skip_instance_cache=True).info(f"{path}/a.txt")
    assert float(head["Metadata"]["mtime"]) == pytest.approx(agave_mtime["mtime"], abs=1e-6)


def test_cp_edito_to_memory_and_memory_to_agave(
    agave_login, agave_dir, edito_login, edito_prefix, edito_fs, memory
):
    path, disk = agave_dir
    edito_fs.pipe(f"{edito_prefix}/r/one.txt", b"one")
    edito_fs.pipe(f"{edito_prefix}/r/two/three.txt", b"three")
    assert main(["cp", "-r", f"edito://{edito_prefix}/r", "memory://staging"]) == 0
    assert memory.cat("/staging/two/three.txt") == b"three"
    assert main(["cp", "-r", "memory://staging", f"agave://{path}/from-memory"]) == 0
    assert files_under(disk / "from-memory") == {"one.txt": b"one", "two/three.txt": b"three"}


def test_cp_within_one_agave_system_stays_on_the_server(
    agave_login, agave_emulator, agave_dir, tree
):
    emu, _ = agave_emulator
    path, disk = agave_dir
    assert main(["cp", "-r", str(tree), f"agave://{path}/src"]) == 0
    before = len(emu.requests)
    assert main(["cp", "-r", f"agave://{path}/src", f"agave://{path}/dst"]) == 0
    methods = {method for method, _ in emu.requests[before:]}
    assert "POST" not in methods  # no upload: the service copied
    assert not any(p.startswith("/files/v2/media") and m == "GET" for m, p in emu.requests[before:])
    assert files_under(disk / "dst") == EXPECTED


# -- mv ------------------------------------------------------------------------------------------


def test_mv_within_agave_renames_on_the_server(agave_login, agave_emulator, agave_dir, tree):
    emu, _ = agave_emulator
    path, disk = agave_dir
    assert main(["cp", "-r", str(tree), f"agave://{path}/old"]) == 0
    result = run_cli("mv", f"agave://{path}/old", f"agave://{path}/new")
    assert result.returncode == 0, result.stderr
    assert not (disk / "old").exists() and files_under(disk / "new") == EXPECTED


def test_mv_across_filesystems_removes_the_source(edito_login, edito_prefix, tree, memory, capsys):
    assert main(["mv", "--json", str(tree), "memory://moved"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
    assert not tree.exists()
    assert memory.cat("/moved/sub/b.bin") == EXPECTED["sub/b.bin"]
    assert main(["mv", "memory://moved/a.txt", f"edito://{edito_prefix}/"]) == 0
    assert s3_objects(edito_login, edito_prefix.split("/", 1)[1]) == {"a.txt": b"hello"}
    assert not memory.exists("/moved/a.txt")


# -- failures ------------------------------------------------------------------------------------


def test_bad_input_gives_one_line_and_the_right_exit_code(tree, capsys):
    cases = [
        (["ls", "nosuchproto://x"], EXIT_USAGE, "Protocol not known: nosuchproto"),
        (["ls", "agave://"], EXIT_USAGE, "names no storage system"),
        (["cat", "agave://cic.storage/../etc/passwd"], EXIT_USAGE, "'..' is not allowed"),
        (["ls", str(tree / "missing")], EXIT_NOT_FOUND, "missing: no such file or directory"),
        (["cp", str(tree / "missing"), str(tree / "x")], EXIT_NOT_FOUND, "no such file"),
        (["cat", str(tree)], EXIT_ERROR, "Is a directory"),
        (["cp", "-r", str(tree), str(tree / "sub")], EXIT_USAGE, "into itself"),
        (["sync", str(tree), str(tree / "sub" / "copy")], EXIT_USAGE, "into itself"),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert err.startswith("remotefs: error: ") and message in err, (argv, err)
        assert err.count("\n") == 1
    result = run_cli("ls", "nosuchproto://x")
    assert result.returncode == EXIT_USAGE and result.stderr.count("\n") == 1
    assert run_cli("cp", "--transfers", "0", "a", "b").returncode == EXIT_USAGE
    debug = run_cli("--debug", "ls", str(tree / "missing"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_some_failed_files_give_exit_6_and_say_which(memory, tmp_path, capsys):
    memory.pipe("/p/a.txt", b"a")
    memory.pipe("/p/b.txt", b"b")
    (tmp_path / "out" / "b.txt" / "in-the-way").mkdir(parents=True)
    assert main(["cp", "-r", "--json", "memory://p", str(tmp_path / "out")]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["files"] == 1 and [f["path"] for f in summary["failed"]] == ["memory:///p/b.txt"]
    assert captured.err.splitlines()[0].startswith("remotefs: failed: memory:///p/b.txt: ")
    assert captured.err.splitlines()[-1] == "remotefs: error: 1 of 2 files failed"
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a"


def test_odd_names_in_memory_never_land_outside_the_destination(memory, tmp_path, capsys):
    memory.pipe("/h/fine.txt", b"fine")
    memory.store["/h/../../evil.txt"] = memory.store["/h/fine.txt"]
    dest = tmp_path / "a" / "b" / "dest"
    assert main(["cp", "-r", "memory://h", str(dest)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "refusing the name '../../evil.txt'" in err and err.count("\n") == 1
    assert list(tmp_path.rglob("evil*")) == [] and not dest.exists()
    memory.store.clear()
    memory.pipe("/h//etc/abs.txt", b"abs")
    assert main(["sync", "memory://h", str(dest)]) == EXIT_ERROR
    assert "refusing the name '/etc/abs.txt'" in capsys.readouterr().err


def test_a_hostile_agave_listing_writes_nothing(tmp_path, monkeypatch, capsys):
    from aiohttp import web

    async def listing(request):
        entries = [
            {"name": ".", "type": "dir", "length": 0, "path": "/demo/dir"},
            {"name": "../../evil.txt", "type": "file", "length": 3},
        ]
        return web.json_response({"status": "success", "result": entries})

    app = web.Application()
    app.router.add_get("/files/v2/listings/system/{tail:.*}", listing)
    with ServerThread(app) as server:
        monkeypatch.setenv("AGAVE_BASE_URL", server.url)
        monkeypatch.setenv("AGAVE_TOKEN", "t")
        dest = tmp_path / "one" / "two" / "dest"
        assert main(["cp", "-r", "agave://cic.storage/demo/dir", str(dest)]) == EXIT_ERROR
        assert main(["sync", "agave://cic.storage/demo/dir", str(dest)]) == EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("unsafe file name '../../evil.txt'" in line for line in err)
    assert list(tmp_path.rglob("evil*")) == []


# -- terminal ------------------------------------------------------------------------------------


def test_progress_bar_on_a_terminal(tree, tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "remotefs", "cp", "-r", str(tree), str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    shown = b"".join(chunks).decode()
    assert "3/3 files" in shown and "ETA" in shown and "/s" in shown
    assert "copied 3 files (1005 B)" in shown
    assert files_under(tmp_path / "out") == EXPECTED


def test_help_lists_every_command_and_exit_code():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("login", "logout", "whoami", "profiles", "ls", "cp", "mv", "rm", "mkdir",
                    "cat", "du", "sync", "demo"):  # fmt: skip
        assert f"    {command}" in result.stdout
    for code in range(7):
        assert f"\n  {code}  " in result.stdout


def test_version_and_help_do_not_import_fsspec():
    code = (
        "import sys\n"
        "from remotefs.cli import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('fsspec' in sys.modules, 'aiohttp' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "False False"
