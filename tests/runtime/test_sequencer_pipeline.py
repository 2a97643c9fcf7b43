"""The sequencer's pipeline: batch N+1 is applied while N commits and handed to the writer at once
where the writer has a CPU of its own (at most two batches with it), else right after N's commit;
either way nobody hears of a batch before its own commit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from abyssal.adapters.sqlite import BatchRecord, SqliteStore
from abyssal.adapters.sqlite_writer import ProcessBatchWriter
from abyssal.config import load_config
from abyssal.core.messages import Deposit, Deposited, Event
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import recover
from abyssal.runtime.sequencer import Sequencer, Unavailable
from abyssal.runtime.writer_thread import BatchRefused, ThreadBatchWriter, WriterThread, early_handover_pays

INS = load_config(None).instruments
USD = INS.asset("ZUSD")
assert USD is not None
TIMEOUT_S = 10.0


class ManualWriter:
    """A batch writer whose commits the test completes by hand, one at a time."""

    def __init__(self, most: int) -> None:
        self.most = most  # batches with the writer at once, this one included
        self.handed: list[BatchRecord] = []
        self.commits: list[asyncio.Future[tuple[int, int]]] = []

    def write(self, loop: asyncio.AbstractEventLoop, record: BatchRecord) -> asyncio.Future[tuple[int, int]]:
        pending = sum(not f.done() for f in self.commits)
        assert pending <= self.most - 1, f"a batch was handed over while {pending} were with the writer"
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        self.handed.append(record)
        self.commits.append(future)
        return future

    def close(self) -> None:
        pass


def _started(
    tmp_path: Path, writer: ManualWriter, early_handover: bool, deposits: int
) -> tuple[Sequencer, list[asyncio.Future[list[Event]]]]:
    """A sequencer of two commands per batch on ``writer``, started, with ``deposits`` submitted."""
    store = SqliteStore(tmp_path / "db")
    recovered = recover(store, INS)
    seq = Sequencer(
        recovered.engine, store, Projector(INS, {}), intake_queue_max=100, batch_commands_max=2,
        snapshot_every_commands=0, next_seq=1, last_snapshot_seq=0, batch_writer=writer,
        early_handover=early_handover,
    )  # fmt: skip
    seq.start()
    assert USD is not None
    deposit = [
        Deposit(ts_ns=0, account=1, asset=USD.index, amount_minor=5, ref=f"d{i}") for i in range(deposits)
    ]
    return seq, [seq.submit(d) for d in deposit]


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("timed out")


def test_the_next_batch_is_handed_over_before_the_commit_before_it_and_acks_wait_for_their_own(
    tmp_path: Path,
) -> None:
    writer = ManualWriter(most=2)

    async def main() -> None:
        seq, futures = _started(tmp_path, writer, True, 6)  # three batches of two
        first, second, third = futures[:2], futures[2:4], futures[4:]
        await _until(lambda: len(writer.handed) == 2)  # batch 2 is with the writer while 1 commits ...
        await asyncio.sleep(0.01)
        assert seq.next_seq == 5 and len(writer.handed) == 2  # ... and batch 3 waits for batch 1
        assert not any(f.done() for f in futures)  # nobody has heard of any of them
        writer.commits[0].set_result((1, 2))
        await asyncio.wait_for(asyncio.gather(*first), TIMEOUT_S)
        await _until(lambda: len(writer.handed) == 3)
        assert not any(f.done() for f in second + third)
        assert [r.first_seq for r in writer.handed] == [1, 3, 5]
        writer.commits[1].set_result((3, 4))
        events = await asyncio.wait_for(asyncio.gather(*second), TIMEOUT_S)
        assert not any(f.done() for f in third)
        writer.commits[2].set_result((5, 6))
        events += await asyncio.wait_for(asyncio.gather(*third), TIMEOUT_S)
        assert all(isinstance(e[0], Deposited) for e in events)
        assert seq.committed_seq == 6 and not seq.failed
        await seq.stop(snapshot=False)

    asyncio.run(main())


def test_without_early_handover_the_next_batch_waits_for_the_commit_before_it(tmp_path: Path) -> None:
    """Where the writer shares the loop's CPU: one batch with the writer at a time."""
    writer = ManualWriter(most=1)

    async def main() -> None:
        seq, futures = _started(tmp_path, writer, False, 4)  # two batches of two
        first, second = futures[:2], futures[2:]
        await _until(lambda: seq.next_seq == 5)  # batch 2 is applied while batch 1 commits ...
        await asyncio.sleep(0.01)
        assert len(writer.handed) == 1  # ... but not handed over
        assert not any(f.done() for f in first + second)  # and nobody has heard of either
        writer.commits[0].set_result((1, 2))
        await _until(lambda: len(writer.handed) == 2)
        await asyncio.wait_for(asyncio.gather(*first), TIMEOUT_S)
        assert not any(f.done() for f in second)
        assert [r.first_seq for r in writer.handed] == [1, 3]
        writer.commits[1].set_result((3, 4))
        events = await asyncio.wait_for(asyncio.gather(*second), TIMEOUT_S)
        assert all(isinstance(e[0], Deposited) for e in events)
        assert seq.committed_seq == 4 and not seq.failed
        await seq.stop(snapshot=False)

    asyncio.run(main())


def test_early_handover_only_where_the_writer_has_a_cpu_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    process = ProcessBatchWriter(Path("unused.db"))  # not started: only its kind matters here
    thread = ThreadBatchWriter(SqliteStore.__new__(SqliteStore), WriterThread("unused"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert early_handover_pays(process) and not early_handover_pays(thread)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # taskset -c 0, one-CPU containers
    assert not early_handover_pays(process) and not early_handover_pays(thread)
    thread.thread.shutdown()


@pytest.mark.parametrize("early", [True, False])
def test_when_a_batch_fails_the_one_applied_behind_it_fails_its_callers_too(
    tmp_path: Path, early: bool
) -> None:
    """The writer refuses batch 1 while batch 2 is applied (and, with the early hand-over, with the
    writer): batch 2's callers hear ``Unavailable`` too (a writer refuses it unwritten: the writers'
    own tests), and nothing more is handed over."""
    handed = 2 if early else 1
    writer = ManualWriter(most=handed)

    async def main() -> None:
        seq, futures = _started(tmp_path, writer, early, 4)  # two batches of two
        await _until(lambda: len(writer.handed) == handed and seq.next_seq == 5)
        writer.commits[0].set_exception(RuntimeError("disk full"))
        outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), TIMEOUT_S)
        assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        assert seq.failed and seq.committed_seq == 0
        with pytest.raises(Unavailable):
            seq.submit(Deposit(ts_ns=0, account=1, asset=0, amount_minor=1, ref="late"))
        assert len(writer.handed) == handed
        for later in writer.commits[1:]:
            later.set_exception(RuntimeError("refused: a batch before it failed"))
        await seq.stop(snapshot=False)

    asyncio.run(main())


class RefusingStore:
    """A store that refuses its second batch and records what it was asked to write."""

    def __init__(self) -> None:
        self.written: list[int] = []

    def write_batch(self, record: BatchRecord) -> None:
        if record.first_seq == 2:
            raise RuntimeError("disk full")
        self.written.append(record.first_seq)


def test_the_writer_thread_writes_nothing_after_a_batch_it_refused() -> None:
    async def main() -> list[object]:
        thread = WriterThread("test-writer")
        store = RefusingStore()
        writer = ThreadBatchWriter(store, thread)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        records = [BatchRecord(n, [], [], None, {}) for n in (1, 2, 3)]  # type: ignore[arg-type]
        futures = [writer.write(loop, r) for r in records]  # handed over back to back
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        thread.shutdown()
        assert store.written == [1]
        return outcomes

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[0], tuple)
    assert isinstance(outcomes[1], RuntimeError) and "disk full" in str(outcomes[1])
    assert isinstance(outcomes[2], BatchRefused) and "disk full" in str(outcomes[2])
