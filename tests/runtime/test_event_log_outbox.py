"""The event log as the outbox of engine events, on SQLite (adapters/event_log_outbox.py).

The same scenarios run on PostgreSQL in tests/postgres/test_event_log_outbox_postgres.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from tests.runtime import eventlog_scenarios as scenarios
from tests.runtime.eventlog_kit import (
    Recorder,
    Stream,
    bus_message_of,
    cursor,
    expected_messages,
    inline,
    old_outbox_row,
    write,
)

from abyssal.adapters import event_log_outbox, sqlite_schema
from abyssal.adapters.event_log_outbox import EventLogOutbox, SerialEventClaims
from abyssal.adapters.outbox_store import write_event
from abyssal.adapters.sqlite import SqliteStore
from abyssal.adapters.sqlite_payments import SqlitePaymentStore
from abyssal.core.messages import EVENT_SCHEMA_VERSION, events_encoder
from abyssal.ports import OutboxEvent
from abyssal.runtime.event_messages import event_message
from abyssal.runtime.outbox import OutboxRelay


def _store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "abyssal.db")


def test_the_message_of_every_event_is_the_old_outbox_row() -> None:
    s = Stream(9)
    stream = s.funded() + s.random(400)
    seen = 0
    for seq, _, events in stream:
        for index, event in enumerate(events):
            old = old_outbox_row(seq, index, event)
            assert event_message(seq, index, event) == (None if old is None else bus_message_of(old))
            seen += old is not None
    assert seen > 500


def test_claims_on_sqlite_are_serial(tmp_path: Path) -> None:
    assert isinstance(EventLogOutbox(_store(tmp_path)).outbox_claims(), SerialEventClaims)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_random_stream_reaches_the_bus_in_order_with_the_old_bytes(tmp_path: Path, seed: int) -> None:
    asyncio.run(scenarios.random_stream_in_order(_store(tmp_path), seed))


def test_scans_smaller_than_a_claim_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_log_outbox, "SCAN_ROWS", 3)
    monkeypatch.setattr(event_log_outbox, "AHEAD_COMMANDS_MAX", 4)
    asyncio.run(scenarios.random_stream_in_order(_store(tmp_path), 3))


def test_a_command_with_more_events_than_a_claim_goes_out_whole(tmp_path: Path) -> None:
    asyncio.run(scenarios.big_command_over_several_claims(_store(tmp_path)))


def test_a_crash_between_publish_and_settle_sends_again_and_loses_nothing(tmp_path: Path) -> None:
    asyncio.run(scenarios.crash_between_publish_and_settle(_store(tmp_path)))


def test_a_gap_in_seq_stops_the_claim(tmp_path: Path) -> None:
    asyncio.run(scenarios.gap_stops_the_claim(_store(tmp_path)))


def test_commands_without_a_message_advance_the_cursor(tmp_path: Path) -> None:
    asyncio.run(scenarios.unpublishable_commands_advance_the_cursor(_store(tmp_path)))


def test_an_unknown_events_schema_version_stops_the_relay_there(tmp_path: Path) -> None:
    store = _store(tmp_path)
    s = Stream(5)
    head = s.funded()
    write(store, head)
    with store.transaction() as c:
        c.execute("INSERT INTO events VALUES (?, ?, ?)", (len(head) + 1, 99, b"\x90"))
    claims = EventLogOutbox(store).outbox_claims()
    rows = claims.claim(100)
    assert [r.message for r in rows] == expected_messages(head)
    claims.settle([r.id for r in rows], 0)
    with pytest.raises(ValueError, match="schema version 99"):
        claims.claim(100)  # never misread, never skipped
    assert cursor(store) == len(head)


def test_the_migration_starts_the_cursor_at_the_end_of_an_existing_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fresh").mkdir()
    assert cursor(_store(tmp_path / "fresh")) == 0
    path = tmp_path / "abyssal.db"
    old = sqlite3.connect(path, isolation_level=None)
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:4])
    assert sqlite_schema.migrate(old) == 4  # a database of the version before
    monkeypatch.undo()
    s = Stream(6)
    history = s.funded() + s.random(30)
    legacy = expected_messages(history)[0]  # an engine row the old batch wrote into ``outbox``
    with old:
        old.execute("BEGIN")
        rows = [(seq, EVENT_SCHEMA_VERSION, events_encoder.encode(e)) for seq, _, e in history]
        old.executemany("INSERT INTO events VALUES (?, ?, ?)", rows)
        write_event(old, OutboxEvent(legacy.event_id, legacy.topic, legacy.key, legacy.event_type,
                                     legacy.schema_version, legacy.payload, ""), 1)  # fmt: skip
    old.close()

    store = SqliteStore(path)  # migrates to the current version
    assert cursor(store) == history[-1][0]
    rec = Recorder()
    events_relay = OutboxRelay(EventLogOutbox(store), rec, inline)
    assert asyncio.run(events_relay.run_once()) == 0  # the history is not published again
    table_relay = OutboxRelay(SqlitePaymentStore(store), rec, inline)
    assert asyncio.run(table_relay.run_once()) == 1  # its old engine rows still go out
    assert rec.messages == [legacy]
    after = s.random(5)
    write(store, after)
    asyncio.run(scenarios.drain(events_relay))
    assert expected_messages(after) and rec.messages[1:] == expected_messages(after)  # from the cursor on


@pytest.mark.parametrize("readers", [frozenset({"trades"}), frozenset({"orders", "ledger", "payments"})])
def test_only_topics_the_bus_has_readers_for_are_built(tmp_path: Path, readers: frozenset[str]) -> None:
    """The in-process bus drops a message for a topic nobody reads, so the relay does not build it."""

    async def scenario() -> None:
        store = _store(tmp_path)
        s = Stream(5)
        stream = s.funded() + s.random(300)
        write(store, stream)
        rec = Recorder()
        r = OutboxRelay(EventLogOutbox(store, lambda: readers), rec, inline, batch_rows_max=9)
        await scenarios.drain(r)
        wanted = [m for m in expected_messages(stream) if m.topic in readers]
        assert rec.messages == wanted and wanted
        assert cursor(store) == stream[-1][0]
        await r.stop()

    asyncio.run(scenario())


def test_with_no_engine_topic_read_claims_touch_nothing_and_a_later_reader_starts_at_the_cursor(
    tmp_path: Path,
) -> None:
    """No reader: a claim reads no row and writes no cursor (the exchange's batches move it, and
    the cursor never goes back). A reader that appears later gets what follows the cursor."""
    store = _store(tmp_path)
    readers: set[str] = {"payments"}
    s = Stream(6)
    stream = s.funded() + s.random(200)
    half = len(stream) // 2
    write(store, stream[:half])
    with store.transaction() as c:  # what Sequencer.follows does while nobody reads
        c.execute("UPDATE projection_offsets SET seq = ? WHERE name = 'relay:events'", (stream[half - 1][0],))
    claims = EventLogOutbox(store, lambda: frozenset(readers)).outbox_claims()
    assert claims.claim(10) == []
    assert cursor(store) == stream[half - 1][0]
    write(store, stream[half:])
    readers.add("trades")
    got = []
    for _ in range(1_000):
        rows = claims.claim(10)
        if not rows:
            break
        got += [r.message for r in rows]
        claims.settle([r.id for r in rows], 0)
    assert got == [m for m in expected_messages(stream[half:]) if m.topic == "trades"] and got
    assert cursor(store) == stream[-1][0]


def test_the_cursor_never_goes_back(tmp_path: Path) -> None:
    """Batches may move the cursor (no reader) past a relay's position: its settle keeps the max."""
    store = _store(tmp_path)
    stream = Stream(7).funded()
    write(store, stream)
    claims = EventLogOutbox(store).outbox_claims()
    rows = claims.claim(1)
    assert rows
    with store.transaction() as c:
        c.execute("UPDATE projection_offsets SET seq = ? WHERE name = 'relay:events'", (stream[-1][0] + 5,))
    claims.settle([r.id for r in rows], 0)
    assert cursor(store) == stream[-1][0] + 5


def test_the_memory_bus_knows_its_audience() -> None:
    from abyssal.adapters.memory_bus import MemoryBus

    bus = MemoryBus()
    assert bus.audience() == frozenset()
    bus.subscribe(["payments"], "webhooks")
    bus.subscribe(["trades", "orders"], "analytics")
    assert bus.audience() == frozenset({"payments", "trades", "orders"})
