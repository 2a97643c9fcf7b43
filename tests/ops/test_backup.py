"""The backup procedure of docs/operations.md, run as written against a server under load, then restored."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.harness import Server
from tests.ops.signer import Signer

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BACKGROUND_ORDERS_MAX = 2_000


def backup_script() -> str:
    """The heredoc body of the shell block after the backup-snippet marker."""
    text = DOC.read_text()
    block = text[text.index("<!-- backup-snippet") :]
    match = re.search(r"```sh\n.*?<<'EOF'\n(.*?)\nEOF\n```", block, re.S)
    assert match is not None, "the documented backup block"
    return match.group(1)


def test_online_backup_while_trading_restores_to_a_verified_exchange(server: Server, tmp_path: Path) -> None:
    key = server.account("busy", USD="10000000")
    stop = threading.Event()
    placed = []

    def trade() -> None:
        signer = Signer(server.url, key)
        try:
            while not stop.is_set() and len(placed) < BACKGROUND_ORDERS_MAX:
                reply = signer.call(
                    "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price="100.0", volume="0.01"
                )
                placed.extend(reply["result"]["txid"])
        finally:
            signer.http.close()

    writer = threading.Thread(target=trade)
    writer.start()
    try:
        while len(placed) < 50:
            time.sleep(0.01)
        target = tmp_path / "backup.db"
        run = subprocess.run(
            [sys.executable, "-", str(server.data_dir / "abyssal.db"), str(target)],
            input=backup_script(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        writer.join(30)
    assert run.returncode == 0, run.stderr
    integrity, seq = re.fullmatch(r"integrity (\w+), last seq (\d+)\n", run.stdout).groups()  # type: ignore[union-attr]
    assert integrity == "ok" and int(seq) >= 50

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(target, restored / "abyssal.db")
    shutil.copy(server.data_dir / "master.key", restored / "master.key")
    verify = subprocess.run(
        [sys.executable, "-m", "abyssal.cli", "replay", "--verify", "--data-dir", str(restored)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["verified_commands"] == int(seq)

    copy = Server(restored)
    copy.start()
    try:
        status = copy.status()
        assert status["seq"] == int(seq) and status["audit"] == []
        signer = Signer(copy.url, key)  # the sealed secret opens with the restored master key
        assert signer.call("Balance")["error"] == []
        signer.http.close()
    finally:
        copy.stop()
