"""The event log as the outbox of engine events, on PostgreSQL (adapters/event_log_outbox.py).

The SQLite scenarios again (tests/runtime/eventlog_scenarios.py), then what only PostgreSQL has:
relays in several processes taking turns on the cursor row. Three relays, each with its own
store, connections and pool (as three processes would have), run while batches commit: every
event reaches the bus once, in (seq, index) order (so per aggregate too), and more than one relay
did the work. A relay in the middle of a command keeps the cursor locked until it is whole, so
no other relay sends that command's first events again while it lives.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tests.postgres.relaykit import ProcessRelay, competing_relays
from tests.runtime import eventlog_scenarios as scenarios
from tests.runtime.eventlog_kit import Stream, cursor, expected_messages, write

from abyssal.adapters import postgres_schema
from abyssal.adapters.event_log_outbox import CompetingEventClaims, EventLogOutbox, MissingCursor
from abyssal.adapters.outbox_store import write_event
from abyssal.adapters.postgres import PostgresStore
from abyssal.cluster.delivery_roles import DeliveryRole
from abyssal.ports import BusMessage, OutboxEvent

RELAYS = 3


def _run(scenario: Any, url: str, *args: Any) -> None:
    store = PostgresStore(url)
    try:
        asyncio.run(scenario(store, *args))
    finally:
        store.close()


def test_a_random_stream_reaches_the_bus_in_order_with_the_old_bytes(pg_url: str) -> None:
    _run(scenarios.random_stream_in_order, pg_url, 1)


def test_a_command_with_more_events_than_a_claim_goes_out_whole(pg_url: str) -> None:
    _run(scenarios.big_command_over_several_claims, pg_url)


def test_a_crash_between_publish_and_settle_sends_again_and_loses_nothing(pg_url: str) -> None:
    _run(scenarios.crash_between_publish_and_settle, pg_url)


def test_a_gap_in_seq_stops_the_claim(pg_url: str) -> None:
    _run(scenarios.gap_stops_the_claim, pg_url)


def test_commands_without_a_message_advance_the_cursor(pg_url: str) -> None:
    _run(scenarios.unpublishable_commands_advance_the_cursor, pg_url)


def test_a_relay_inside_a_command_keeps_the_cursor_from_the_others(pg_url: str) -> None:
    store, other = PostgresStore(pg_url), PostgresStore(pg_url)
    s = Stream(7)
    stream = s.funded() + s.big(12)
    write(store, stream)
    a = EventLogOutbox(store).outbox_claims()
    b = EventLogOutbox(other).outbox_claims()
    assert isinstance(a, CompetingEventClaims) and isinstance(b, CompetingEventClaims)
    sent: list[BusMessage] = []
    last = stream[-1][0]
    while True:
        rows = a.claim(5)
        if not rows:
            break
        assert b.claim(5) == []  # a holds the cursor from its claim ...
        sent += [r.message for r in rows]
        a.settle([r.id for r in rows], 0)
        inside = sent[-1].event_id.startswith(f"e-{last}-") and len(sent) < len(expected_messages(stream))
        if inside:
            assert b.claim(5) == []  # ... and past its settles while the command is half sent
            assert cursor(store) < last  # (on PostgreSQL the cursor commits once it is whole)
    assert sent == expected_messages(stream) and cursor(store) == last
    more = s.random(10)
    write(store, more)
    rows = b.claim(500)  # a is idle: the cursor is free
    assert [r.message for r in rows] == expected_messages(more)
    b.settle([r.id for r in rows], 0)
    for claims in (a, b):
        claims.close()
    store.close()
    other.close()


def _relay(url: str, publisher: Any, batch_rows_max: int) -> ProcessRelay:
    r = ProcessRelay(url, EventLogOutbox, publisher, batch_rows_max)
    assert isinstance(r.relay.claims, CompetingEventClaims)
    return r


def test_competing_relays_send_every_event_once_in_order(pg_url: str) -> None:
    rng = random.Random(20260807)
    s = Stream(8)
    stream = s.funded() + s.random(400)
    expected = expected_messages(stream)

    async def scenario() -> list[int]:
        make = partial(_relay, pg_url, batch_rows_max=7)
        topics = ["orders", "trades", "ledger"]
        writer = PostgresStore(pg_url)
        loop = asyncio.get_running_loop()
        try:
            async with competing_relays(make, RELAYS, topics, rng, slow_share=0.05) as (relays, received):
                at = 0
                with ThreadPoolExecutor(max_workers=1) as pool:
                    while at < len(stream):  # the relays run while the batches commit
                        size = rng.randint(1, 20)
                        await loop.run_in_executor(pool, write, writer, stream[at : at + size])
                        at += size
                        await asyncio.sleep(rng.random() * 0.01)
                    deadline = loop.time() + 30
                    while await loop.run_in_executor(pool, cursor, writer) < stream[-1][0]:
                        assert loop.time() < deadline, "the relays did not reach the end of the log"
                        await asyncio.sleep(0.02)
                await asyncio.sleep(0.1)  # a duplicate would arrive now
        finally:
            writer.close()
        assert [m.event_id for m in received] == [m.event_id for m in expected]  # once each, in order
        assert received == expected
        return [r.relay.published for r in relays]

    published = asyncio.run(scenario())
    assert sum(published) == len(expected)
    assert sum(1 for n in published if n) >= 2, f"the relays did not share the work: {published}"


def test_the_migration_starts_the_cursor_at_the_end_of_an_existing_log(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", postgres_schema.MIGRATIONS[:3])
    old = PostgresStore(pg_url)  # a database of the version before
    assert old.conn().execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 3
    s = Stream(10)
    history = s.funded() + s.random(30)
    write(old, history)
    old.close()
    monkeypatch.undo()
    store = PostgresStore(pg_url)  # migrates to the current version
    assert cursor(store) == history[-1][0]
    claims = EventLogOutbox(store).outbox_claims()
    assert claims.claim(100) == []  # the history is not published again
    after = s.random(5)
    write(store, after)
    rows = claims.claim(100)
    assert expected_messages(after) and [r.message for r in rows] == expected_messages(after)
    claims.close()
    store.close()


def test_a_fresh_database_starts_at_zero(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    assert cursor(store) == 0
    store.close()


def test_the_relay_role_runs_both_relays_and_reports_both_counts(pg_url: str, tmp_path: Path) -> None:
    s = Stream(11)
    stream = s.funded() + s.random(40)
    expected = expected_messages(stream)

    async def scenario() -> dict[str, Any]:
        store = PostgresStore(pg_url)
        write(store, stream)
        payment = OutboxEvent("p-X-1", "payments", "payment:X", "payment.deposit.pending", 1, b"{}", "")
        with store.transaction() as c:
            write_event(c, payment, 1)
        role = DeliveryRole("relay", pg_url, "memory://", tmp_path)
        running = asyncio.create_task(role.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while role.status().get("published", 0) < len(expected) + 1:
            assert loop.time() < deadline and not running.done(), role.status()
            await asyncio.sleep(0.02)
        status = role.status()
        role.stop()
        await running
        assert role.phase == "stopped" and cursor(store) == stream[-1][0]
        store.close()
        return status

    status = asyncio.run(scenario())
    assert status["published_events"] == len(expected) and status["published_outbox"] == 1
    assert status["published"] == len(expected) + 1


def test_a_missing_cursor_fails_every_claim_and_no_connection_is_kept_in_autocommit(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    claims = EventLogOutbox(store).outbox_claims()
    try:
        write(store, Stream(3).funded())
        with store.transaction() as c:
            c.execute("DELETE FROM projection_offsets WHERE name = 'relay:events'")
        for _ in range(2):  # the second claim must check again, not reuse the first connection
            with pytest.raises(MissingCursor):
                claims.claim(10)
        with store.transaction() as c:
            c.execute("INSERT INTO projection_offsets VALUES ('relay:events', 0)")
        assert claims.claim(10)
        assert isinstance(claims, CompetingEventClaims) and claims._raw.autocommit is False
    finally:
        claims.close()
        store.close()
