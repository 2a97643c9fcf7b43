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

from abyssal.adapters.event_log_outbox import EVENTS_CURSOR
from abyssal.runtime.event_messages import command_messages

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


def _query_orders(client: ccxt.kraken, ids: list[str]) -> dict[str, Any]:
    """QueryOrders for every id, 50 at a time (Kraken's limit per call)."""
    found: dict[str, Any] = {}
    for chunk in range(0, len(ids), 50):
        found.update(client.private_post_queryorders({"txid": ",".join(ids[chunk : chunk + 50])})["result"])
    return found


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
    sides = ["buy" if i % 2 == 0 else "sell" for i in range(len(keys))]
    threads = [
        threading.Thread(target=_trader, args=(cluster.gateways, k, sides[i], stop, acked[i], refused[i]))
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
    assert failover_s < 5.0, failover_s

    # every acknowledged order is there, with its fills; buyers and sellers filled the same
    filled = Decimal(0)
    sold = Decimal(0)
    for i, ids in enumerate(acked):
        found = _query_orders(kraken(cluster.gateways[i % 2], keys[i]), ids)
        assert set(found) == set(ids)
        vol = sum(Decimal(o["vol_exec"]) for o in found.values())
        if i % 2 == 0:
            filled += vol
        else:
            sold += vol
    assert filled == sold > 0

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


def _outbox_on_kafka(bootstrap: str, topics: list[str]) -> list[str]:
    """Every event id on the relay's topics, from the beginning (duplicates kept). Read until
    nothing new arrives for a while: Tansu's high watermark lags behind the last batch."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time_ns()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})  # fmt: skip
    ids: list[str] = []
    try:
        meta = c.list_topics(timeout=10).topics
        c.assign([TopicPartition(t, p, 0) for t in topics for p in meta[t].partitions])
        quiet_since = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() - quiet_since < 3.0 and time.monotonic() < deadline:
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    quiet_since = time.monotonic()
                    ids.extend(v.decode() for k, v in (m.headers() or []) if k == "event_id")
    finally:
        c.close()
    return ids


def test_every_other_role_killed_and_restarted_under_load(cluster: Cluster) -> None:
    cluster.start()
    g0, g1 = cluster.gateways
    keys = [g0.account("buyer", USD="100000"), g1.account("seller", XBT="10")]
    stop = threading.Event()
    acked: list[list[str]] = [[], []]
    refused: list[list[str]] = [[], []]
    threads = [threading.Thread(target=_trader, args=(cluster.gateways, k, side, stop, acked[i], refused[i]))
               for i, (k, side) in enumerate(zip(keys, ("buy", "sell"), strict=True))]  # fmt: skip
    for t in threads:
        t.start()
    for name in ("ledger-writer", "relay", "notifier"):
        time.sleep(0.8)
        cluster.others[name].kill()
        time.sleep(0.5)
        cluster.others[name].start()
    time.sleep(0.5)
    g1.kill()  # clients of this gateway see errors until it is back
    time.sleep(0.5)
    g1.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert all(acked), (acked, refused)

    leader = cluster.wait_for_leader()
    writer = cluster.others["ledger-writer"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and writer.status()["seq"] < leader.status()["seq"]:
        time.sleep(0.1)
    seq = leader.status()["seq"]
    for i, ids in enumerate(acked):
        assert set(_query_orders(kraken(g0, keys[i]), ids)) == set(ids)
    assert g0.status()["audit"] == [] and g1.status()["audit"] == []

    import psycopg

    with psycopg.connect(cluster.database, autocommit=True) as db:
        count, top = db.execute("SELECT COUNT(*), MAX(seq) FROM events").fetchone()  # type: ignore[misc]
        assert count == top == seq  # every seq written once, none missing
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # both relays: the outbox table and the event log
            left = db.execute("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL").fetchone()
            at = db.execute("SELECT seq FROM projection_offsets WHERE name = %s", (EVENTS_CURSOR,)).fetchone()
            if left is not None and left[0] == 0 and at is not None and at[0] == seq:
                break
            time.sleep(0.1)
        rows = db.execute("SELECT event_id, topic FROM outbox").fetchall()
        events = db.execute("SELECT seq, version, body FROM events ORDER BY seq").fetchall()
    # the message of every publishable engine event, from the event log, as the relay builds it
    expected = {
        m.event_id: m.topic for seq, version, body in events for _, m in command_messages(seq, version, body)
    }
    assert {"orders", "trades", "ledger"} <= set(expected.values()), "the engine's events have messages"
    expected.update((e, t) for e, t in rows)  # and the payment transitions of the outbox table
    on_kafka = _outbox_on_kafka(cluster.bus.removeprefix("kafka://"), sorted(set(expected.values())))
    assert set(on_kafka) == set(expected)  # all published (at least once; consumers dedupe by id)
