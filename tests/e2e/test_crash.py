"""Crash safety: SIGKILL mid-burst loses no acknowledged order, fill or ledger entry."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness import Server

from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow

CLIENTS = 6
BURST_S_MAX = 20.0
ACKS_BEFORE_KILL = 300


class Trader:
    """A signing Kraken client with its own key and strictly increasing nonces."""

    def __init__(self, url: str, key: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.api_key = key["api_key"]
        self.secret = key["api_secret"]
        self.nonce = time.time_ns() // 1000

    def private(self, method: str, **params: str) -> dict[str, Any]:
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        path = f"/0/private/{method}"
        headers = {
            "API-Key": self.api_key,
            "API-Sign": sign(self.secret, path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = self.http.post(path, content=body, headers=headers)
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        self.http.close()


def _burst(trader: Trader, seed: int, acked: list[str], stop: threading.Event) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        side = rng.choice(["buy", "sell"])
        price = 30000 + rng.randint(-20, 20) * 5
        try:
            reply = trader.private(
                "AddOrder", pair="XBTUSD", type=side, ordertype="limit", volume=f"0.00{rng.randint(10, 99)}",
                price=f"{price}.0",
            )  # fmt: skip
        except (httpx.HTTPError, AssertionError):
            return  # the server died under us: whatever was in flight is not acknowledged
        if not reply["error"]:
            acked.extend(reply["result"]["txid"])


def test_sigkill_mid_burst_loses_nothing_acknowledged(server: Server) -> None:
    crash_and_check(server)


def test_sigkill_while_snapshot_children_run_loses_nothing(tmp_path: Path) -> None:
    """Snapshots every 40 commands: a forked child may be serialising when the server dies. An
    orphaned child holds neither the port nor the database, and the restart recovers from a
    snapshot the children stored before the kill."""
    config = tmp_path / "abyssal.toml"
    config.write_text("[engine]\nsnapshot_every_commands = 40\n")
    server = Server(tmp_path / "data", config=config)
    server.start()
    try:
        crash_and_check(server, before_kill=lambda: "snapshot_written" in server.log())
        assert server.status()["audit"] == []
        opens = [json.loads(line) for line in server.log().splitlines() if '"event": "exchange_open"' in line]
        after_kill = opens[1]  # the first start, the restart after the kill, the one after replay
        assert after_kill["replayed"] < after_kill["seq"], "the restart began from a stored snapshot"
    finally:
        server.stop()


def crash_and_check(server: Server, before_kill: Callable[[], bool] = lambda: True) -> None:
    """A burst from several clients, SIGKILL once ``before_kill`` holds and enough orders are
    acknowledged, restart on the same port and data: every acknowledged order is found with its
    fills, the ledger audits clean, and ``replay --verify`` passes. Leaves the server running."""
    keys = [server.account(f"trader{i}", USD="1000000", XBT="100") for i in range(CLIENTS)]
    traders = [Trader(server.url, k) for k in keys]
    acked_by_client: list[list[str]] = [[] for _ in traders]
    stop = threading.Event()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(_burst, t, i, acked_by_client[i], stop) for i, t in enumerate(traders)]
        deadline = time.monotonic() + BURST_S_MAX
        while time.monotonic() < deadline and not (
            sum(map(len, acked_by_client)) >= ACKS_BEFORE_KILL and before_kill()
        ):
            time.sleep(0.01)
        server.kill()  # mid-burst: requests are in flight right now
        stop.set()
        for f in futures:
            f.result()
    acked = {i: list(a) for i, a in enumerate(acked_by_client)}
    assert sum(len(a) for a in acked.values()) >= ACKS_BEFORE_KILL // 2, "the burst barely ran"

    server.start()
    for t in traders:
        t.close()
    traders = [Trader(server.url, k) for k in keys]
    total_filled = 0
    for i, txids in acked.items():
        trader = traders[i]
        for chunk in range(0, len(txids), 50):
            batch = txids[chunk : chunk + 50]
            reply = trader.private("QueryOrders", txid=",".join(batch), trades="true")
            assert reply["error"] == [], reply
            found = reply["result"]
            missing = [t for t in batch if t not in found]
            assert not missing, f"acknowledged orders lost in the crash: {missing[:5]}"
            for txid in batch:
                order = found[txid]
                vol_exec = float(order["vol_exec"])
                trades = order.get("trades", [])
                if vol_exec:
                    total_filled += 1
                    fills = trader.private("QueryTrades", txid=",".join(trades[:20]))["result"]
                    filled = round(sum(float(f["vol"]) for f in fills.values()), 8)
                    assert filled == vol_exec or len(trades) > 20
    assert total_filled > 0, "no fills happened: the scenario did not exercise matching"
    status = server.status()
    assert status["audit"] == [], status["audit"]
    assert all(p["lag"] == 0 for p in status["projections"].values())
    for t in traders:
        t.close()

    server.stop()
    verify = subprocess.run(
        [sys.executable, "-m", "abyssal.cli", "replay", "--verify", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["verified_commands"] > 0
    server.start()  # the caller (or the fixture's teardown) audits the ledger once more
