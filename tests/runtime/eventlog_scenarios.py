"""Scenarios for the event-log relay, run on SQLite (tests/runtime) and PostgreSQL (tests/postgres).

Each takes a fresh, migrated store and drives ``OutboxRelay.run_once`` over the event-log claims
with a recording publisher, checking the messages against the old ``outbox_row`` reference.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from tests.runtime.eventlog_kit import Recorder, Stream, cursor, expected_messages, inline, write

from abyssal.adapters.event_log_outbox import EventLogOutbox
from abyssal.adapters.store import Store
from abyssal.ports import BusMessage
from abyssal.runtime.outbox import OutboxRelay


def relay(store: Store, publisher: Any, batch_rows_max: int) -> OutboxRelay:
    return OutboxRelay(EventLogOutbox(store), publisher, inline, batch_rows_max=batch_rows_max)


RUNS_MAX = 2_000  # a relay that never gets to the end fails the test instead of hanging it


async def drain(r: OutboxRelay) -> int:
    runs = 0
    while await r.run_once():
        runs += 1
        assert runs < RUNS_MAX, "the relay never reached the end of the log"
    return runs


def first_of_each(messages: list[BusMessage]) -> list[BusMessage]:
    seen: set[str] = set()
    out = []
    for m in messages:
        if m.event_id not in seen:
            seen.add(m.event_id)
            out.append(m)
    return out


async def random_stream_in_order(store: Store, seed: int) -> None:
    """Every publishable event reaches the bus once, in (seq, index) order, with the old bytes."""
    rng = random.Random(seed)
    s = Stream(seed)
    stream = s.funded() + s.random(300)
    rec = Recorder()
    r = relay(store, rec, batch_rows_max=7)
    at = 0
    while at < len(stream):  # the relay runs while batches commit
        size = rng.randint(1, 20)
        write(store, stream[at : at + size])
        at += size
        for _ in range(rng.randint(0, 3)):
            await r.run_once()
    await drain(r)
    expected = expected_messages(stream)
    assert any(len(events) > 7 for _, _, events in stream), "some command has more events than a claim"
    assert any(not expected_messages([command]) for command in stream), "and some command has none"
    assert rec.messages == expected  # field for field, byte for byte, in order, none twice
    assert r.published == len(expected)
    assert cursor(store) == stream[-1][0]  # trailing commands without a message passed too
    await r.stop()


async def big_command_over_several_claims(store: Store) -> None:
    s = Stream(1)
    head = s.funded()
    write(store, head)
    sweep = s.big(20)
    write(store, sweep[:-1])  # the resting orders
    rec = Recorder()
    r = relay(store, rec, batch_rows_max=5)
    await drain(r)
    before = len(rec.messages)
    seq, _, events = sweep[-1]
    assert len(events) > 40
    write(store, [sweep[-1]])
    runs = 0
    while await r.run_once():
        runs += 1
        assert runs < RUNS_MAX
        whole = len(rec.messages) - before == len(expected_messages([sweep[-1]]))
        assert cursor(store) == (seq if whole else seq - 1)  # moves only past a whole command
    assert runs == -(-len(expected_messages([sweep[-1]])) // 5)
    assert rec.messages == expected_messages(head + sweep)
    await r.stop()


class DiesAfterPublish(Recorder):
    """Publishes, then raises as if the relay were killed before its settle."""

    async def publish(self, messages: list[BusMessage]) -> None:
        await super().publish(messages)
        raise ConnectionError("killed before the settle")


async def crash_between_publish_and_settle(store: Store) -> None:
    """A relay that fails or dies between publish and settle sends again; nothing is lost."""
    s = Stream(2)
    stream = s.funded() + s.random(40) + s.big(15)
    write(store, stream)
    expected = expected_messages(stream)
    big_seq = stream[-1][0]
    big = [m for m in expected if m.event_id.startswith(f"e-{big_seq}-")]
    assert len(big) > 12

    rec = Recorder()
    r = relay(store, rec, batch_rows_max=6)
    rec.fail_next = True  # not acknowledged: nothing settled
    with pytest.raises(ConnectionError):
        await r.run_once()
    dying = DiesAfterPublish()  # acknowledged, then killed before the settle
    r.publisher = dying
    with pytest.raises(ConnectionError):
        await r.run_once()
    assert len(dying.messages) == 6 and rec.messages == []
    r.publisher = rec
    assert await r.run_once() == 6
    assert rec.messages == dying.messages  # the same batch again: at least once

    for _ in range(RUNS_MAX):
        if rec.messages[-1].event_id.startswith(f"e-{big_seq}-"):  # into the big command
            break
        await r.run_once()
    assert cursor(store) < big_seq  # its first part is settled in memory only
    assert 0 < sum(m in big for m in rec.messages) < len(big)
    r.publisher = dying = DiesAfterPublish()
    with pytest.raises(ConnectionError):
        await r.run_once()
    await r.stop()  # the process is gone, and its position with it

    durable = cursor(store)  # SQLite: the command before the big one; PostgreSQL: maybe earlier
    rec2 = Recorder()
    r2 = relay(store, rec2, batch_rows_max=6)  # a fresh relay (or the same, restarted)
    await drain(r2)
    await r2.stop()
    assert rec2.messages == [m for m in expected if int(m.event_id.split("-")[1]) > durable]
    assert rec2.messages[-len(big) :] == big  # the big command again, from its first event
    assert first_of_each(rec.messages + dying.messages + rec2.messages) == expected  # nothing lost
    assert cursor(store) == big_seq


async def gap_stops_the_claim(store: Store) -> None:
    s = Stream(3)
    stream = s.funded() + [s.resting() for _ in range(4)]  # one message each
    assert [seq for seq, _, _ in stream] == list(range(1, 9))
    write(store, stream[:5])
    write(store, stream[6:])  # seq 6 is missing (for now)
    rec = Recorder()
    r = relay(store, rec, batch_rows_max=100)
    await drain(r)
    assert rec.messages == expected_messages(stream[:5])
    assert cursor(store) == 5
    write(store, stream[5:6])
    await drain(r)
    assert rec.messages == expected_messages(stream)
    assert cursor(store) == 8
    await r.stop()


async def unpublishable_commands_advance_the_cursor(store: Store) -> None:
    s = Stream(4)
    head = s.funded()
    write(store, head)
    rec = Recorder()
    r = relay(store, rec, batch_rows_max=10)
    await drain(r)
    quiet = [s.unpublishable() for _ in range(60)]
    assert not expected_messages(quiet)
    write(store, quiet)
    assert await r.run_once() == 0
    assert cursor(store) == quiet[-1][0]  # written, not only known in memory
    fresh = EventLogOutbox(store).outbox_claims()
    assert fresh.claim(10) == []
    fresh.close()
    before = [s.unpublishable() for _ in range(30)]
    one = s.resting()
    tail = [s.unpublishable() for _ in range(30)]
    write(store, [*before, one, *tail])
    assert await r.run_once() == 1
    assert cursor(store) == tail[-1][0]  # the settle passed the commands behind it too
    assert EventLogOutbox(store).outbox_backlog() == 0
    assert rec.messages == expected_messages([*head, one])
    await r.stop()
