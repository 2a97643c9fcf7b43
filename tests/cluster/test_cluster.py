"""The scaled-out mode on loopback: two gateways, leader and standby engines, ledger writer,
relay and notifier, over Tansu and a throwaway PostgreSQL; ccxt through both gateways."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from tests.cluster.harness import Cluster
from tests.harness import Server

pytestmark = pytest.mark.slow


def kraken(server: Server, key: dict[str, str]) -> ccxt.kraken:
    ex = ccxt.kraken({"apiKey": key["api_key"], "secret": key["api_secret"], "enableRateLimit": False})
    ex.urls["api"] = {"public": server.url, "private": server.url}
    return ex


def test_ccxt_lifecycle_through_both_gateways(cluster: Cluster) -> None:
    cluster.start()
    g0, g1 = cluster.gateways
    alice_key = g0.account("alice", USD="1000")
    bob_key = g1.account("bob", XBT="1")
    # each client alternates gateways: a key made on one works on the other, and so do nonces
    alice0, alice1 = kraken(g0, alice_key), kraken(g1, alice_key)
    bob1 = kraken(g1, bob_key)
    assert Decimal(str(alice1.fetch_balance()["total"]["USD"])) == Decimal("1000")
    maker = alice0.create_order("BTC/USD", "limit", "buy", 0.01, 50000)
    open_on_other = alice1.fetch_open_orders("BTC/USD")
    assert [o["id"] for o in open_on_other] == [maker["id"]]
    bob1.create_order("BTC/USD", "market", "sell", 0.004)
    order = alice1.fetch_order(maker["id"])
    assert Decimal(str(order["filled"])) == Decimal("0.004")
    trades = alice0.fetch_my_trades("BTC/USD")
    assert len(trades) == 1
    alice1.cancel_order(maker["id"])
    assert alice0.fetch_open_orders("BTC/USD") == []
    assert Decimal(str(alice0.fetch_balance()["total"]["BTC"])) == Decimal("0.004")
    for g in (g0, g1):
        assert g.status()["audit"] == []


def _trader(gateways: list[Server], key: dict[str, str], side: str, stop: threading.Event,
            acked: list[str], refused: list[str]) -> None:  # fmt: skip
    clients = [kraken(g, key) for g in gateways]
    n = 0
    while not stop.is_set():
        client = clients[n % len(clients)]
        n += 1
        try:
            order = client.create_order("BTC/USD", "limit", side, 0.001, 50000)
            acked.append(order["id"])
        except ccxt.BaseError as err:  # during the failover: unknown outcome, never acknowledged
            refused.append(str(err))


def test_leader_killed_during_a_burst_loses_nothing(cluster: Cluster) -> None:
    cluster.start()
    g0, g1 = cluster.gateways
    keys = [g0.account("buyer0", USD="100000"), g1.account("seller0", XBT="10"),
            g1.account("buyer1", USD="100000"), g0.account("seller1", XBT="10")]  # fmt: skip
    stop = threading.Event()
    acked: list[list[str]] = [[] for _ in keys]
    refused: list[list[str]] = [[] for _ in keys]
    threads = [
        threading.Thread(target=_trader, args=(cluster.gateways, k, "buy" if i % 2 == 0 else "sell", stop,
                                               acked[i], refused[i]))  # fmt: skip
        for i, k in enumerate(keys)
    ]
    for t in threads:
        t.start()
    time.sleep(1.5)
    old = cluster.wait_for_leader()
    before_kill = sum(len(a) for a in acked)
    killed_at = time.monotonic()
    old.kill()
    new = cluster.wait_for_leader(timeout_s=10)
    failover_s = time.monotonic() - killed_at
    assert new is not old
    time.sleep(2.0)  # trading resumes through the new leader
    stop.set()
    for t in threads:
        t.join(timeout=30)
    total = sum(len(a) for a in acked)
    assert before_kill > 0 and total > before_kill, (before_kill, total, refused)
    print(f"acked {total} ({before_kill} before the kill), refused {sum(len(r) for r in refused)}, failover {failover_s:.2f} s")
    assert failover_s < 5.0, failover_s

    # every acknowledged order is there, with its fills; buyers and sellers filled the same
    client = kraken(g0, keys[0])
    filled = Decimal(0)
    sold = Decimal(0)
    for i, ids in enumerate(acked):
        c = kraken(cluster.gateways[i % 2], keys[i])
        found: dict[str, Any] = {}
        for chunk in range(0, len(ids), 50):
            found.update(c.private_post_queryorders({"txid": ",".join(ids[chunk : chunk + 50])})["result"])
        assert set(found) == set(ids)
        vol = sum(Decimal(o["vol_exec"]) for o in found.values())
        if i % 2 == 0:
            filled += vol
        else:
            sold += vol
    assert filled == sold > 0
    del client

    # the ledger balances, on either gateway
    for g in cluster.gateways:
        assert g.status()["audit"] == []

    # the surviving leader's state equals a replay: of the record (every event checked byte for
    # byte) and of the Kafka log by a fresh replica started from the newest snapshot
    writer = cluster.others["ledger-writer"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and writer.status()["seq"] < new.status()["seq"]:
        time.sleep(0.1)
    leader_state = new.status()
    assert writer.status()["seq"] == leader_state["seq"]
    replay = subprocess.run(
        [sys.executable, "-m", "abyssal.cli", "replay", "--verify", "--database", cluster.database],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    verified = json.loads(replay.stdout)
    assert verified["verified_commands"] == leader_state["seq"]
    assert verified["state_hash"] == leader_state["state_hash"]
    fresh = cluster.role("engine", "--node-id", "engine-late")
    fresh.start()
    cluster.engines.append(fresh)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and fresh.status()["seq"] < leader_state["seq"]:
        time.sleep(0.1)
    late = fresh.status()
    assert not late["leader"]
    assert (late["seq"], late["state_hash"]) == (leader_state["seq"], leader_state["state_hash"])
