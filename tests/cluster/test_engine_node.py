"""An engine replica taking the lease in-process: what it publishes on takeover, from memory or
rebuilt from a snapshot, is every seq after the event topic's last record, in order, once."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from tests.kafka.broker import Tansu

from abyssal.cluster import schema
from abyssal.cluster.engine_node import EngineNode
from abyssal.cluster.records import commands_topic, events_topic, record_decoder
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import Deposit, command_encoder, events_encoder
from abyssal.core.snapshot import state_hash

pytestmark = pytest.mark.slow
COMMANDS = 40


def _database(pg_url: str) -> psycopg.Connection[Any]:
    """The store's and the cluster's tables in a fresh database; the connection stays open."""
    from abyssal.adapters.postgres import PostgresStore

    PostgresStore(pg_url).close()  # migrations
    db = psycopg.connect(pg_url, autocommit=True)
    schema.ensure(db)
    return db


async def _leading(node: EngineNode, task: asyncio.Task[None], published: int) -> None:
    """Until the node leads and has published ``published`` records (20 s at most)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (node.leader and node.published_seq >= published):
        assert not task.done(), task
        await asyncio.sleep(0.05)


def _deposit(i: int) -> Deposit:
    return Deposit(ts_ns=1_000 + i, account=1 + i % 3, asset=0, amount_minor=100 + i, ref=f"d{i}")


def _log_commands(broker: Tansu, n: int) -> list[Deposit]:
    broker.create_topic(commands_topic(0), 1)
    broker.create_topic(events_topic(0), 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    sent = [_deposit(i) for i in range(n)]
    for c in sent:
        p.produce(commands_topic(0), command_encoder.encode(c), partition=0)
    assert p.flush(10) == 0
    return sent


def _published(broker: Tansu, expected: int) -> list[tuple[int, bytes, bytes]]:
    c = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": f"t{time.time_ns()}", "enable.auto.commit": False}
    )
    c.assign([TopicPartition(events_topic(0), 0, 0)])
    out: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 20
    while len(out) < expected and time.monotonic() < deadline:
        for m in c.consume(100, 0.2):
            if m.error() is None:
                r = record_decoder.decode(m.value())
                out.append((r.seq, r.command, r.events))
    c.close()
    return out


@pytest.mark.parametrize("recent", [1_000, 2], ids=["from-memory", "rebuilt"])
def test_takeover_publishes_every_seq_after_the_tail_in_order(
    pg_url: str, broker: Tansu, recent: int
) -> None:
    sent = _log_commands(broker, COMMANDS)
    with _database(pg_url) as db:
        # another node holds the lease for a moment: this one follows first, then takes over
        db.execute("INSERT INTO engine_leases VALUES (0, 'ghost', 7, now() + interval '1500 milliseconds')")
    config = load_config()
    node = EngineNode(config, pg_url, broker.url, node_id="b", lease_ttl_s=1.0)
    node.recent = collections.deque(maxlen=recent)

    async def run() -> None:
        task = asyncio.create_task(node.run())
        await _leading(node, task, COMMANDS)
        node.stop()
        await task

    asyncio.run(run())
    assert node.takeovers == 1 and node.lease.epoch == 8  # the ghost's epoch, raised once
    records = _published(broker, COMMANDS)
    assert [seq for seq, _, _ in records] == list(range(1, COMMANDS + 1))
    reference = Engine(config.instruments)
    for (seq, command, events), original in zip(records, sent, strict=True):
        assert command == command_encoder.encode(original)  # stamps already increase: kept as sent
        assert events == events_encoder.encode(reference.apply(original)), seq


def test_the_leaders_snapshots_are_the_state_at_their_seq(pg_url: str, broker: Tansu) -> None:
    """Snapshots are serialised by a forked child while the leader goes on; each one stored equals
    the state of a reference engine after exactly that many commands, with its clock."""
    sent = _log_commands(broker, COMMANDS)
    _database(pg_url).close()
    config = load_config()
    node = EngineNode(config, pg_url, broker.url, node_id="s", lease_ttl_s=1.0)
    node.snapshot_every = 7

    async def run() -> None:
        task = asyncio.create_task(node.run())
        await _leading(node, task, COMMANDS)
        p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
        for i in range(COMMANDS, 2 * COMMANDS):  # commands the leader applies, in several batches
            sent.append(_deposit(i))
            p.produce(commands_topic(0), command_encoder.encode(sent[-1]), partition=0)
            assert p.flush(10) == 0
            await asyncio.sleep(0.01)
        await _leading(node, task, 2 * COMMANDS)
        while node.snapshots.busy:
            await asyncio.sleep(0.02)
        node.stop()
        await task

    asyncio.run(run())
    with psycopg.connect(pg_url, autocommit=True) as db:
        rows = db.execute(
            "SELECT s.seq, s.state_hash, k.last_ts_ns FROM snapshots s JOIN engine_clocks k ON k.seq = s.seq "
            "ORDER BY s.seq"
        ).fetchall()
    assert len(rows) >= 2, rows  # several, while commands kept coming
    reference = Engine(config.instruments)
    applied = 0
    for seq, digest, last_ts in rows:
        while applied < seq:
            reference.apply(sent[applied])
            applied += 1
        assert digest == state_hash(reference), seq
        assert last_ts == sent[seq - 1].ts_ns
