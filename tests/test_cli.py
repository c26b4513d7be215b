"""The remotefs command: version, demo, and one-line errors with meaningful exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from remotefs import __version__
from remotefs.cli import (
    EXIT_NETWORK,
    EXIT_NOT_FOUND,
    EXIT_PERMISSION,
    EXIT_USAGE,
    exit_code_for,
    main,
)
from remotefs.errors import RemoteTimeoutError


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remotefs", *args], capture_output=True, text=True, timeout=120
    )


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"remotefs {__version__}"


def test_demo_runs_the_main_job_end_to_end():
    result = run("demo", "--rows", "250")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in (
        "log in",
        "Make a folder",
        "Upload",
        "List",
        "pandas",
        "identical",
        "STS",
        "remote to remote",
        "Parquet",
        "Run the EDITO process",
        "successful 100%",
        "summary.json",
    ):
        assert step in out
    assert "250 rows" in out and "covering 250 rows" in out


def test_demo_in_process(capsys):
    assert main(["demo", "--rows", "10"]) == 0
    assert "10 rows" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == EXIT_USAGE
    assert main([]) == EXIT_USAGE


def test_exit_codes_by_failure_kind():
    assert exit_code_for(FileNotFoundError("x")) == EXIT_NOT_FOUND
    assert exit_code_for(PermissionError("x")) == EXIT_PERMISSION
    assert exit_code_for(RemoteTimeoutError("slow")) == EXIT_NETWORK
    assert exit_code_for(ConnectionError("x")) == EXIT_NETWORK
    assert exit_code_for(ValueError("x")) == EXIT_USAGE


def test_bare_not_found_errors_say_what_is_wrong(capsys):
    assert main(["cat", "memory://no/such/file.txt"]) == EXIT_NOT_FOUND
    err = capsys.readouterr().err.strip()
    assert err == "remotefs: error: no such file or directory: /no/such/file.txt"
