"""One exchange per data directory: a second one is refused before it reads or writes anything."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.harness import ADMIN_TOKEN, Server, free_port
from tests.ops.inprocess import running
from tests.ops.signer import Signer

from abyssal.adapters import owner_lock
from abyssal.config import load_config
from abyssal.runtime.exchange import Exchange

SECOND_SERVER_TIMEOUT_S = 60.0


def test_the_lock_is_exclusive_names_its_holder_and_is_free_again_once_released(tmp_path: Path) -> None:
    db = tmp_path / "abyssal.db"
    assert not owner_lock.is_held(db)
    fd = owner_lock.take(db)
    assert owner_lock.is_held(db)
    with pytest.raises(owner_lock.DatabaseInUse, match=f"in use by process {os.getpid()}"):
        owner_lock.take(db)  # another open file description: refused even within one process
    owner_lock.release(fd)
    assert not owner_lock.is_held(db)
    owner_lock.release(owner_lock.take(db))


def test_a_second_exchange_on_a_data_dir_in_use_is_refused_and_the_first_goes_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, exchange, client):
            key = await client.account("alice", ZUSD="100")
            seq = exchange.sequencer.next_seq
            second = Exchange(load_config(), tmp_path)
            with pytest.raises(owner_lock.DatabaseInUse):
                await second.open()
            await second.close()  # what the server does after a failed start: nothing to undo
            assert not second.opened
            assert exchange.sequencer.next_seq == seq  # the second one sequenced nothing
            answer = await client.private(key, "Balance")
            assert answer == {"error": [], "result": {"ZUSD": "100.0000"}}
        async with running(tmp_path) as (_, _, client):  # released at close: a restart opens it
            client.nonce += 1_000_000
            assert (await client.private(key, "Balance"))["result"] == {"ZUSD": "100.0000"}

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_second_serve_on_the_same_data_dir_exits_with_a_clear_message(tmp_path: Path) -> None:
    first = Server(tmp_path / "data")
    first.start()
    try:
        key = first.account("alice", USD="1000")
        status = first.admin("GET", "/admin/status")
        assert first.proc is not None
        env = {**os.environ, "ABYSSAL_ADMIN_TOKEN": ADMIN_TOKEN}
        command = ["serve", "--data-dir", str(first.data_dir), "--port", str(free_port())]
        second = subprocess.run(
            [sys.executable, "-m", "abyssal.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=SECOND_SERVER_TIMEOUT_S,
        )
        assert second.returncode == 1, second.stderr
        assert f"in use by process {first.proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        after = first.admin("GET", "/admin/status")
        assert after["seq"] == status["seq"]  # the second server sequenced nothing
        assert after["balances"]["ZUSD"] == {"total": "1000.0000", "held": "0.0000"}
        signer = Signer(first.url, key)
        order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "100.0", "volume": "1"}
        assert signer.call("AddOrder", **order)["error"] == []  # the first server trades on
        signer.http.close()
        replay = subprocess.run(
            [sys.executable, "-m", "abyssal.cli", "replay", "--verify", "--data-dir", str(first.data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=SECOND_SERVER_TIMEOUT_S,
        )
        assert replay.returncode == 0, replay.stderr
        assert "a running exchange holds" in replay.stderr
    finally:
        first.stop()
