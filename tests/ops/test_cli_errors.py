"""The command line's answers to bad input: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from tests.ops.inprocess import running

from abyssal.cli import main

SERVE_TIMEOUT_S = 60.0


def _fails_cleanly(capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err


def test_a_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.toml")
    _fails_cleanly(capsys, ["replay", "--verify", "--data-dir", str(tmp_path), "--config", missing], missing)
    # serve in a process of its own: it configures logging for the whole process before the config
    serve = [sys.executable, "-m", "abyssal.cli", "serve", "--data-dir", str(tmp_path), "--config", missing]
    done = subprocess.run(serve, capture_output=True, text=True, timeout=SERVE_TIMEOUT_S)
    assert done.returncode == 2
    assert missing in done.stderr
    assert "Traceback" not in done.stderr


def test_a_config_that_is_not_toml_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    _fails_cleanly(
        capsys, ["replay", "--verify", "--data-dir", str(tmp_path), "--config", str(bad)], "abyssal:"
    )


def test_replay_on_a_database_it_cannot_reach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody@127.0.0.1:1/db"  # nothing listens on port 1
    _fails_cleanly(capsys, ["replay", "--verify", "--database", url], "cannot open the database")


def test_status_writes_zero_balances_as_plain_digits(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, _, client):
            await client.account("alice", XXBT="1.5")
            status = await client.admin("GET", "/admin/status")
            assert status["balances"]["XXBT"] == {"total": "1.5000000000", "held": "0.0000000000"}

    asyncio.run(scenario())
