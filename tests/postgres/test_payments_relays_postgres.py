"""Competing outbox relays on one PostgreSQL database (ledger-notes 4.2, D3, D7, D8).

Three relays, each with its own store, connections and blocking pool (as three processes
would have), run against one database while writers commit payment transitions on many
aggregates. The first test proves: every outbox row reaches the bus, none twice while the relays
live, each aggregate's versions arrive strictly in order, and the relays really shared the work.
The second kills a relay between its publish and its commit: its rows go out again through
another relay (at least once), and the webhook consumer's dedupe by event id keeps the effect
single. The third shows the hazard the head-of-aggregate claim exists for: plain ``FOR UPDATE
SKIP LOCKED`` on rows lets two relays hold rows of one aggregate at once. The fourth (D8) commits
a row after a later one was published: it is published too (no watermark).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import msgspec
import psycopg
import pytest
from tests.postgres.relaykit import ProcessRelay, competing_relays

from abyssal.adapters.memory_bus import MemoryBus
from abyssal.adapters.outbox_store import CompetingClaims
from abyssal.adapters.postgres import PostgresStore
from abyssal.adapters.sqlite_payments import SqlitePaymentStore
from abyssal.adapters.sqlite_webhooks import SqliteWebhookStore
from abyssal.ports import BusMessage, NewPayment, OutboxEvent

pytestmark = pytest.mark.slow

AGGREGATES = 40
STEPS = ("held", "sent", "completed")  # after "requested": versions 1..4 per aggregate
RELAYS = 3


def _event(refid: str, version: int, status: str, account: int) -> OutboxEvent:
    payload = msgspec.json.encode({"account": account, "payment": {"id": refid, "version": version}})
    return OutboxEvent(f"p-{refid}-{version}", "payments", f"payment:{refid}", f"payment.withdrawal.{status}",
                       1, payload, "")  # fmt: skip


def _write_aggregate(payments: SqlitePaymentStore, account: int, n: int, rng: random.Random) -> None:
    """One payment through its four statuses, each transition its own transaction (as in production)."""
    refid = f"AGG{n:04d}"
    claim = payments.claim(account, "test", refid, "fp", "writer", 1, 10**12)
    new = NewPayment(refid, "withdrawal", account, 1, 100, "requested")
    p = payments.open_payment(claim.key_id, new, None, _event(refid, 1, "requested", account), 1)
    assert not isinstance(p, str)
    for version, status in enumerate(STEPS, start=2):
        if rng.random() < 0.5:
            time.sleep(rng.random() * 0.004)
        moved = payments.transition(p.id, p.status, status, "", _event(refid, version, status, account), 2)
        assert moved is not None and moved.version == version
        p = moved


def _relay(url: str, publisher: Any, batch_rows_max: int) -> ProcessRelay:
    r = ProcessRelay(url, SqlitePaymentStore, publisher, batch_rows_max)
    assert isinstance(r.relay.claims, CompetingClaims)
    return r


async def _drain(payments: SqlitePaymentStore, io: Any, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await io(payments.outbox_backlog) > 0:
        assert loop.time() < deadline, "the relays did not drain the outbox"
        await asyncio.sleep(0.02)


async def _write_all(url: str, rng: random.Random) -> PostgresStore:
    store = PostgresStore(url)
    payments = SqlitePaymentStore(store)
    account = store.create_account("writer", 1)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=4) as writers:
        seeds = [rng.random() for _ in range(AGGREGATES)]
        await asyncio.gather(
            *[
                loop.run_in_executor(writers, _write_aggregate, payments, account, n, random.Random(seeds[n]))
                for n in range(AGGREGATES)
            ]
        )
    return store


def test_three_relays_publish_every_row_once_in_order_per_aggregate(pg_url: str) -> None:
    rng = random.Random(20260807)

    async def scenario() -> None:
        make = partial(_relay, pg_url, batch_rows_max=7)
        async with competing_relays(make, RELAYS, ["payments"], rng, slow_share=0.3) as (relays, received):
            store = await _write_all(pg_url, rng)  # the relays run while the writers commit
            await _drain(relays[0].source, relays[0].io)
            await asyncio.sleep(0.1)  # a duplicate would arrive now

        rows = store.conn().execute("SELECT event_id FROM outbox WHERE published_ns IS NOT NULL").fetchall()
        store.close()
        ids = [m.event_id for m in received]
        assert len(rows) == AGGREGATES * (1 + len(STEPS))
        assert sorted(ids) == sorted(r[0] for r in rows), "every committed row reached the bus, once"
        versions: dict[str, list[int]] = defaultdict(list)
        for m in received:
            versions[m.key].append(msgspec.json.decode(m.payload)["payment"]["version"])
        assert all(v == [1, 2, 3, 4] for v in versions.values()), versions
        shares = [r.relay.published for r in relays]
        assert sum(shares) == len(rows) and sum(1 for s in shares if s > 0) >= 2, shares

    asyncio.run(scenario())


class _DiesBeforeCommit:
    """Publishes (the bus acknowledged) and then fails, as a relay killed before its commit."""

    def __init__(self, bus: MemoryBus) -> None:
        self.bus = bus
        self.sent: list[str] = []

    async def publish(self, messages: list[BusMessage]) -> None:
        await self.bus.publish(messages)
        self.sent += [m.event_id for m in messages]
        raise ConnectionError("killed between publish and commit")

    async def close(self) -> None:
        return None


def test_a_relay_killed_after_publishing_duplicates_on_the_bus_never_downstream(pg_url: str) -> None:
    async def scenario() -> None:
        store = await _write_all(pg_url, random.Random(7))
        hooks = SqliteWebhookStore(store)
        account = int(store.conn().execute("SELECT id FROM accounts WHERE name = 'writer'").fetchone()[0])
        hooks.add_webhook(account, "http://hooks.test/in", "s", 1)
        bus = MemoryBus()
        seen: list[str] = []
        created = 0

        async def webhooks(m: BusMessage) -> None:  # the notifications consumer's durable write
            nonlocal created
            seen.append(m.event_id)
            created += hooks.record("webhooks", m, account, 1)

        bus.subscribe(["payments"], "webhooks")
        consuming = asyncio.create_task(bus.run(["payments"], "webhooks", webhooks))
        dying = _relay(pg_url, _DiesBeforeCommit(bus), batch_rows_max=20)
        survivor = _relay(pg_url, bus, batch_rows_max=20)
        try:
            with pytest.raises(ConnectionError):
                await dying.relay.run_once()
            publisher = dying.relay.publisher
            assert isinstance(publisher, _DiesBeforeCommit) and len(publisher.sent) > 0
            survivor.relay.start()
            await _drain(survivor.source, survivor.io)
        finally:
            await dying.close()
            await survivor.close()
            consuming.cancel()
            await asyncio.gather(consuming, return_exceptions=True)
        total = AGGREGATES * (1 + len(STEPS))
        assert len(seen) == total + len(publisher.sent), "the killed relay's batch went out twice"
        assert len(set(seen)) == total
        deliveries = int(store.conn().execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0])
        assert created == deliveries == total, "the consumer deduplicated by event id"
        store.close()

    asyncio.run(scenario())


def test_plain_skip_locked_would_let_two_relays_hold_one_aggregate(pg_url: str) -> None:
    """Why heads: with row-level SKIP LOCKED, relay B takes version 2 while A still holds version 1."""

    async def scenario() -> None:
        store = PostgresStore(pg_url)
        payments = SqlitePaymentStore(store)
        account = store.create_account("writer", 1)
        for n in range(4):  # one writer: rows X1..X4, Y1..Y4, ... in id order
            _write_aggregate(payments, account, n, random.Random(n))
        store.close()
        a, b = psycopg.connect(pg_url), psycopg.connect(pg_url)
        try:
            plain = (
                "SELECT id, aggregate FROM outbox WHERE published_ns IS NULL ORDER BY id LIMIT 2 "
                "FOR UPDATE SKIP LOCKED"
            )
            held_a = {agg for _, agg in a.execute(plain).fetchall()}
            held_b = {agg for _, agg in b.execute(plain).fetchall()}
            assert held_a & held_b, "row-level claims split an aggregate across relays"
            a.rollback()
            b.rollback()
            heads_a = CompetingClaims(pg_url)
            heads_b = CompetingClaims(pg_url)
            try:
                rows_a = {r.message.key for r in heads_a.claim(2)}
                rows_b = {r.message.key for r in heads_b.claim(2)}
                assert rows_a and rows_b and not rows_a & rows_b, "head claims keep aggregates apart"
            finally:
                heads_a.close()
                heads_b.close()
        finally:
            a.close()
            b.close()

    asyncio.run(scenario())


def test_a_row_committed_after_a_later_one_is_still_published(pg_url: str) -> None:
    """D8: ids are drawn at INSERT, commits land in any order; no watermark, so nothing is skipped."""
    PostgresStore(pg_url).close()  # the schema
    insert = (
        "INSERT INTO outbox (event_id, topic, aggregate, event_type, schema_version, payload, trace_id, "
        "created_ns) VALUES (%s, 'payments', %s, 'payment.test', 1, '\\x7b7d', '', 1) RETURNING id"
    )
    late, early = psycopg.connect(pg_url), psycopg.connect(pg_url, autocommit=True)
    claims = CompetingClaims(pg_url)
    try:
        (first_id,) = late.execute(insert, ("e-late", "payment:L")).fetchone()  # stays open
        (second_id,) = early.execute(insert, ("e-early", "payment:E")).fetchone()
        assert first_id < second_id
        batch = claims.claim(10)
        assert [r.message.event_id for r in batch] == ["e-early"]
        claims.settle([r.id for r in batch], 2)
        late.commit()
        batch = claims.claim(10)
        assert [r.message.event_id for r in batch] == ["e-late"]
        claims.settle([r.id for r in batch], 3)
        assert claims.claim(10) == []
    finally:
        claims.close()
        late.close()
        early.close()
