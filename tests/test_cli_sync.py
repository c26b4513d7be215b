"""remotefs sync: skip rule, --checksum, --dry-run, include/exclude, --delete, rclone's mtime."""

from __future__ import annotations

import json
import os
import time

import fsspec
import pytest
from conftest import run_cli

from remotefs.cli import main
from remotefs.cli.sync import Rules

MTIME = 1_700_000_000.5


@pytest.fixture
def src(tmp_path):
    """a.csv, b.csv, notes.txt and sub/c.csv, all with the same old modification time."""
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    files = {"a.csv": "1,2\n", "b.csv": "3,4\n", "notes.txt": "hi", "sub/c.csv": "5"}
    for name, data in files.items():
        (root / name).write_text(data)
        os.utime(root / name, (MTIME, MTIME))
    return root


def summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def tree(root) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_rules_first_match_wins_and_globs_match_like_rclone():
    rules = Rules([("include", "sub/*.csv"), ("exclude", "*.csv")])
    assert [rules.included(p) for p in ("a.csv", "sub/c.csv", "x/sub/c.csv", "n.txt")] == [
        False, True, True, True,
    ]  # fmt: skip
    rules = Rules([("exclude", "*.csv"), ("include", "sub/*.csv")])
    assert not rules.included("sub/c.csv")
    anchored = Rules([("exclude", "/top.txt"), ("exclude", "data/**"), ("exclude", "[!a]?.bin")])
    assert not anchored.included("top.txt") and anchored.included("d/top.txt")
    assert not anchored.included("data/x/y.z") and anchored.included("mydata/x")
    assert not anchored.included("bc.bin") and anchored.included("ac.bin")
    assert Rules([("exclude", "*.txt")]).included("dir.txt/keep.csv")


def test_local_to_agave_copies_then_skips_what_is_unchanged(agave_login, agave_dir, src, capsys):
    path, disk = agave_dir
    assert main(["sync", "--json", str(src), f"agave://{path}"]) == 0
    assert summary(capsys)["files"] == 4
    assert tree(disk) == tree(src)
    assert main(["sync", "--json", str(src), f"agave://{path}"]) == 0
    assert summary(capsys) | {"seconds": 0} == {
        "files": 0, "bytes": 0, "seconds": 0, "skipped": 4, "deleted": 0, "failed": [],
    }  # fmt: skip
    (src / "a.csv").write_text("1,2,3\n")  # size changes
    os.utime(src / "b.csv", (time.time() + 60, time.time() + 60))  # newer than the remote copy
    assert main(["sync", "--json", str(src), f"agave://{path}"]) == 0
    result = summary(capsys)
    assert result["files"] == 2 and result["skipped"] == 2
    assert (disk / "a.csv").read_text() == "1,2,3\n"


def test_dry_run_changes_nothing(agave_login, agave_dir, src):
    path, disk = agave_dir
    (disk / "extra.txt").write_text("x")
    result = run_cli("sync", "--dry-run", "--delete", str(src), f"agave://{path}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"copy {src}/a.csv -> agave://{path}/a.csv" in lines
    assert f"delete agave://{path}/extra.txt" in lines
    assert lines[-1] == "4 to copy, 0 unchanged, 1 to delete"
    assert sorted(p.name for p in disk.iterdir()) == ["extra.txt"]
    planned = json.loads(run_cli("sync", "--dry-run", "--json", str(src), f"agave://{path}").stdout)
    assert planned["dry_run"] is True and len(planned["would_copy"]) == 4
    assert planned["would_delete"] == []


def test_include_exclude_and_delete(agave_login, agave_dir, src, capsys):
    path, disk = agave_dir
    (disk / "stale.txt").write_text("old")
    (disk / "kept.csv").write_text("excluded, so --delete leaves it")
    argv = ["sync", "--json", "--delete", "--include", "sub/*.csv", "--exclude", "*.csv"]
    assert main([*argv, str(src), f"agave://{path}"]) == 0
    result = summary(capsys)
    assert result["files"] == 2 and result["deleted"] == 1
    assert tree(disk) == {
        "notes.txt": "hi", "sub/c.csv": "5", "kept.csv": "excluded, so --delete leaves it",
    }  # fmt: skip


def test_to_edito_writes_rclone_mtime_and_reads_it_back(edito_login, edito_prefix, src, capsys):
    bucket, key = edito_prefix.split("/", 1)
    assert main(["sync", "--json", str(src), f"edito://{edito_prefix}"]) == 0
    assert summary(capsys)["files"] == 4
    s3 = edito_login.s3_client()
    head = s3.head_object(Bucket=bucket, Key=f"{key}/a.csv")
    assert head["Metadata"] == {"mtime": "1700000000.500000000"}  # rclone's format
    assert main(["sync", "--json", str(src), f"edito://{edito_prefix}"]) == 0
    assert summary(capsys)["skipped"] == 4
    # An object rclone left with an older mtime is copied though S3 says it is newer.
    s3.put_object(Bucket=bucket, Key=f"{key}/notes.txt", Body=b"hi", Metadata={"mtime": "1000"})
    # One whose mtime metadata matches is unchanged, whatever its LastModified.
    assert main(["sync", "--json", str(src), f"edito://{edito_prefix}"]) == 0
    result = summary(capsys)
    assert result["files"] == 1 and result["skipped"] == 3
    head = s3.head_object(Bucket=bucket, Key=f"{key}/notes.txt")
    assert head["Metadata"]["mtime"] == "1700000000.500000000"


def test_checksum_catches_same_size_changes_on_s3(edito_login, edito_prefix, src, capsys):
    bucket, key = edito_prefix.split("/", 1)
    s3 = edito_login.s3_client()
    future = f"{time.time() + 3600:.9f}"
    s3.put_object(Bucket=bucket, Key=f"{key}/notes.txt", Body=b"HI", Metadata={"mtime": future})
    argv = ["sync", "--json", "--include", "notes.txt", "--exclude", "**"]
    assert main([*argv, str(src), f"edito://{edito_prefix}"]) == 0
    assert summary(capsys)["skipped"] == 1  # same size, newer: size+mtime says unchanged
    assert main([*argv, "--checksum", str(src), f"edito://{edito_prefix}"]) == 0
    assert summary(capsys)["files"] == 1
    assert s3.get_object(Bucket=bucket, Key=f"{key}/notes.txt")["Body"].read() == b"hi"
    assert main([*argv, "--checksum", str(src), f"edito://{edito_prefix}"]) == 0
    assert summary(capsys)["skipped"] == 1


def test_checksum_falls_back_with_a_note_where_there_is_none(agave_login, agave_dir, src, capsys):
    path, _ = agave_dir
    assert main(["sync", str(src), f"agave://{path}"]) == 0
    capsys.readouterr()
    assert main(["sync", "--json", "--checksum", str(src), f"agave://{path}"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped"] == 4
    assert captured.err == (
        f"remotefs: note: --checksum: no MD5 for agave://{path}; compared size and "
        "modification time\n"
    )


def test_edito_to_local_then_nothing_left_to_do_in_a_subprocess(
    edito_login, edito_prefix, src, tmp_path
):
    assert main(["sync", str(src), f"edito://{edito_prefix}"]) == 0
    out = tmp_path / "back"
    first = run_cli("sync", "--json", f"edito://{edito_prefix}", str(out))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["files"] == 4 and tree(out) == tree(src)
    assert os.path.getmtime(out / "a.csv") == pytest.approx(MTIME)
    second = run_cli("sync", "--json", f"edito://{edito_prefix}", str(out))
    assert json.loads(second.stdout)["skipped"] == 4


def test_memory_to_memory(capsys):
    fs = fsspec.filesystem("memory")
    fs.pipe("/syncsrc/x/1.txt", b"1")
    fs.pipe("/syncsrc/2.txt", b"22")
    fs.pipe("/syncdst/old.txt", b"old")
    try:
        assert main(["sync", "--json", "--delete", "memory://syncsrc", "memory://syncdst"]) == 0
        result = summary(capsys)
        assert (result["files"], result["deleted"]) == (2, 1)
        assert fs.cat("/syncdst/x/1.txt") == b"1" and not fs.exists("/syncdst/old.txt")
        assert main(["sync", "--json", "memory://syncsrc", "memory://syncdst"]) == 0
        assert summary(capsys)["skipped"] == 2
    finally:
        fs.rm(["/syncsrc", "/syncdst"], recursive=True)
