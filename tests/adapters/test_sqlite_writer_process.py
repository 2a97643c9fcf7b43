"""The batch writer process (adapters/sqlite_writer.py): the same rows as an in-process commit, and
a writer that dies or refuses a batch stops the sequencer instead of losing an acknowledgement."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.runtime.test_projector_holds import INSTRUMENTS, events_of_a_busy_book
from tests.runtime.test_sequencer_faults import wire

from abyssal.adapters.sqlite import BatchRecord, SqliteStore, coalesce_orders
from abyssal.adapters.sqlite_writer import ProcessBatchWriter, WriterGone, decode_batch, encode_batch
from abyssal.config import load_config
from abyssal.core.messages import EVENT_SCHEMA_VERSION, Deposit, Deposited, Event, events_encoder
from abyssal.runtime.projector import Projector, Rows
from abyssal.runtime.recovery import verify_from_genesis
from abyssal.runtime.sequencer import Sequencer, Unavailable

INS = load_config(None).instruments
USD = INS.asset("ZUSD")
assert USD is not None
TABLES = ("commands", "events", "orders", "trades", "fills", "ledger", "balances", "projection_offsets")
BATCH = 40
TIMEOUT_S = 20.0


def _records(events: list[list[Event]]) -> list[BatchRecord]:
    """A busy book's events as the sequencer's batch records (commands stand in as opaque bytes)."""
    projector = Projector(INSTRUMENTS, {})
    out = []
    for first in range(0, len(events), BATCH):
        rows = Rows()
        commands: list[tuple[int, int, int, bytes]] = []
        logged: list[tuple[int, int, bytes]] = []
        for seq, batch_events in enumerate(events[first : first + BATCH], start=first + 1):
            projector.project(seq, batch_events, rows)
            commands.append((seq, 1_000 + seq, 1, f"command {seq}".encode()))
            logged.append((seq, EVENT_SCHEMA_VERSION, events_encoder.encode(batch_events)))
        out.append(BatchRecord(first + 1, commands, logged, rows, {}, None, 0, {"relay": first + BATCH}))
    return out


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


def test_a_batch_survives_the_pipe_field_by_field() -> None:
    """Everything arrives as sent, the order writes coalesced on the way (the child only runs them)."""
    records = _records(events_of_a_busy_book(300, seed=11))
    assert any(r.rows.order_fills and r.rows.order_closes for r in records)
    for record in records:
        sent = copy.deepcopy(record)
        arrived = decode_batch(encode_batch(record))
        assert arrived.orders == coalesce_orders(record.rows)
        assert record == sent  # the sender's record is left as it was
        record.rows.order_inserts, record.rows.order_fills, record.rows.order_closes = [], [], []
        assert dataclasses.replace(arrived, orders=None) == record
        assert decode_batch(encode_batch(arrived)) == arrived  # coalesced once, sent as it is


def test_the_writer_process_leaves_exactly_the_rows_an_in_process_commit_leaves(tmp_path: Path) -> None:
    records = _records(events_of_a_busy_book(400, seed=3))
    assert sum(len(r.rows.ledger) for r in records) > 100 and any(r.rows.order_closes for r in records)
    local = SqliteStore(tmp_path / "local.db")
    for record in records:
        local.write_batch(record)
    local.close()

    SqliteStore(tmp_path / "child.db").close()  # migrated, as the exchange does before starting it

    async def main() -> None:
        writer = ProcessBatchWriter(tmp_path / "child.db")
        writer.start()
        loop = asyncio.get_running_loop()
        for record in records:  # one in flight at a time, as the sequencer hands them over
            start_ns, end_ns = await asyncio.wait_for(writer.write(loop, record), TIMEOUT_S)
            assert 0 < start_ns <= end_ns
        writer.close()

    asyncio.run(main())
    assert _dump(tmp_path / "child.db") == _dump(tmp_path / "local.db")


def _deposit(account: int, amount: int, ref: str) -> Deposit:
    assert USD is not None
    return Deposit(ts_ns=0, account=account, asset=USD.index, amount_minor=amount, ref=ref)


def test_a_batch_that_cannot_be_encoded_fails_and_so_does_every_later_one(tmp_path: Path) -> None:
    """An int beyond 64 bits in a row (SQLite would refuse it too) fails that batch's future, as a
    refused commit does, instead of an exception escaping the sequencer's loop; and the batches
    after it fail unwritten, since the sequencer hands the next batch over before this one's fate
    is known and the log must stay a prefix of what was handed over."""
    first, second = _records(events_of_a_busy_book(80, seed=4))[:2]
    bad = decode_batch(encode_batch(first))
    bad.rows.balances[(1, 0)] = [2**64, 0]
    SqliteStore(tmp_path / "db").close()

    async def main() -> None:
        writer = ProcessBatchWriter(tmp_path / "db")
        writer.start()
        loop = asyncio.get_running_loop()
        with pytest.raises(WriterGone, match="cannot be encoded"):
            await writer.write(loop, bad)
        with pytest.raises(WriterGone, match="cannot be encoded"):
            await asyncio.wait_for(writer.write(loop, second), TIMEOUT_S)
        writer.close()

    asyncio.run(main())
    assert _dump(tmp_path / "db")["commands"] == []


def test_a_refused_batch_stops_the_writer_before_the_one_queued_behind_it(tmp_path: Path) -> None:
    """Two batches handed over back to back, as the sequencer does: the child refuses the first
    (a duplicate command seq, like a database that already holds it) and never commits the second,
    which was already in its pipe."""
    records = _records(events_of_a_busy_book(120, seed=5))
    SqliteStore(tmp_path / "db").close()

    async def main() -> None:
        writer = ProcessBatchWriter(tmp_path / "db")
        writer.start()
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(writer.write(loop, records[0]), TIMEOUT_S)
        again, behind = writer.write(loop, records[0]), writer.write(loop, records[1])
        with pytest.raises(WriterGone, match="UNIQUE"):
            await asyncio.wait_for(again, TIMEOUT_S)
        with pytest.raises(WriterGone):
            await asyncio.wait_for(behind, TIMEOUT_S)
        writer.close()

    asyncio.run(main())
    assert [row[0] for row in _dump(tmp_path / "db")["commands"]] == [r[0] for r in records[0].command_rows]


def test_a_batch_sent_after_the_child_exited_fails_and_the_earlier_ones_keep_their_answers(
    tmp_path: Path,
) -> None:
    """The child commits one batch, refuses the next and exits before the third is written (the
    race a busy machine makes): the third fails at once, while the first two get what the child
    answered before it exited (a commit is not reported as lost, the refusal keeps its reason)."""
    records = _records(events_of_a_busy_book(120, seed=6))
    SqliteStore(tmp_path / "db").close()

    async def main() -> None:
        writer = ProcessBatchWriter(tmp_path / "db")
        writer.start()
        loop = asyncio.get_running_loop()
        committed, refused = writer.write(loop, records[0]), writer.write(loop, records[0])
        assert writer._proc is not None
        writer._proc.wait(TIMEOUT_S)  # blocking: the loop has not read the child's answers yet
        late = writer.write(loop, records[1])
        assert late.done()
        with pytest.raises(WriterGone, match="gone"):
            late.result()
        start_ns, end_ns = await asyncio.wait_for(committed, TIMEOUT_S)
        assert 0 < start_ns <= end_ns
        with pytest.raises(WriterGone, match="UNIQUE"):
            await asyncio.wait_for(refused, TIMEOUT_S)
        with pytest.raises(WriterGone):
            await writer.write(loop, records[1])
        writer.close()

    asyncio.run(main())
    assert [row[0] for row in _dump(tmp_path / "db")["commands"]] == [r[0] for r in records[0].command_rows]


def test_a_killed_writer_stops_the_sequencer_and_what_it_acknowledged_is_in_the_log(tmp_path: Path) -> None:
    writer = ProcessBatchWriter(tmp_path / "db")

    async def main() -> tuple[list[object], list[object], Sequencer]:
        writer.start()
        seq = wire(tmp_path / "db", writer)
        seq.start()
        acked = [
            await asyncio.wait_for(seq.execute(_deposit(1, 100 + i, f"a{i}")), TIMEOUT_S) for i in range(5)
        ]
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(seq.submit(_deposit(1, 1, f"b{i}")) for i in range(20)), return_exceptions=True),
            TIMEOUT_S,
        )
        with pytest.raises(Unavailable):
            seq.submit(_deposit(1, 1, "after"))
        await seq.stop(snapshot=False)
        return list(acked), list(outcomes), seq

    acked, outcomes, seq = asyncio.run(main())
    assert all(isinstance(events[0], Deposited) for events in acked)  # type: ignore[index]
    assert seq.failed
    assert outcomes and all(isinstance(o, Unavailable) for o in outcomes)
    store = SqliteStore(tmp_path / "db")
    assert store.last_seq() >= 5  # every acknowledged deposit is durable
    verify_from_genesis(store, INS)  # and the log replays
    total = store.conn().execute("SELECT total FROM balances WHERE account = 1").fetchone()[0]
    assert total >= sum(100 + i for i in range(5))


def test_a_batch_the_writer_refuses_fails_its_callers_and_stops_the_sequencer(tmp_path: Path) -> None:
    """A commit the database refuses in the child (here the schema's balance check, after the
    stored balance was changed behind the exchange's back) is a storage fault, as in a thread."""
    writer = ProcessBatchWriter(tmp_path / "db")

    async def main() -> tuple[object, Sequencer]:
        writer.start()
        seq = wire(tmp_path / "db", writer)
        seq.start()
        await asyncio.wait_for(seq.execute(_deposit(1, 100, "a")), TIMEOUT_S)
        seq.projector.balances[(1, USD.index)][1] = 10**9  # held beyond total: CHECK fails
        outcome = await asyncio.wait_for(
            asyncio.gather(seq.submit(_deposit(1, 5, "b")), return_exceptions=True), TIMEOUT_S
        )
        await seq.stop(snapshot=False)
        return outcome[0], seq

    assert USD is not None
    outcome, seq = asyncio.run(main())
    assert isinstance(outcome, Unavailable) and seq.failed
    assert "CHECK constraint failed" in writer.gone
    assert SqliteStore(tmp_path / "db").last_seq() == 1  # the refused batch left nothing


def test_the_writer_process_dies_with_the_exchange(tmp_path: Path) -> None:
    db = tmp_path / "db"
    SqliteStore(db).close()
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from abyssal.adapters.sqlite_writer import ProcessBatchWriter
            w = ProcessBatchWriter(Path({str(db)!r}))
            w.start()
            print(w.pid, flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
    )  # fmt: skip
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as stat:  # reaped by init or still a zombie: gone as well
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.05)
    raise AssertionError(f"writer process {child} outlived its parent")
