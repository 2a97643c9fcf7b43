"""Batch N+1 goes to the writer before N has committed (test_sequencer_pipeline.py): when N fails,
N+1 is neither written nor acknowledged, so the log stays a prefix of the batches handed over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.runtime.test_sequencer_faults import ANSWER_TIMEOUT_S, deposit, wire

from abyssal.adapters.sqlite import BatchRecord, SqliteStore
from abyssal.config import load_config
from abyssal.runtime.sequencer import Sequencer, Unavailable
from abyssal.runtime.writer_thread import BatchRefused, ThreadBatchWriter, WriterThread

INS = load_config(None).instruments


class GatedWriter:
    """A batch writer whose outcomes the test decides, one batch at a time, in order."""

    def __init__(self, db: Path) -> None:
        self.store = SqliteStore(db)
        self.handed: list[tuple[BatchRecord, asyncio.Future[tuple[int, int]]]] = []
        self.done = 0

    def write(self, loop: asyncio.AbstractEventLoop, record: BatchRecord) -> asyncio.Future[tuple[int, int]]:
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        self.handed.append((record, future))
        return future

    def refuse_next(self) -> None:
        _, future = self.handed[self.done]
        self.done += 1
        future.set_exception(RuntimeError("disk full"))

    def close(self) -> None:
        self.store.close()


def _one_per_batch(db: Path, writer: GatedWriter) -> Sequencer:
    """A sequencer whose batches hold one command each: two commands queued together make two
    batches, the second applied and handed over while the first waits for its commit."""
    seq = wire(db, writer)
    seq.batch_commands_max, seq.early_handover = 1, True
    seq.start()
    return seq


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_TIMEOUT_S
    while not condition():
        assert loop.time() < deadline, "the sequencer did not get there"
        await asyncio.sleep(0.001)


def test_when_a_batch_fails_the_one_handed_over_behind_it_fails_its_callers_too(tmp_path: Path) -> None:
    async def main() -> None:
        writer = GatedWriter(tmp_path / "db")
        seq = _one_per_batch(tmp_path / "db", writer)
        first, second = seq.submit(deposit(1, 100, "a")), seq.submit(deposit(1, 5, "b"))
        await _until(lambda: len(writer.handed) == 2)
        writer.refuse_next()
        outcomes = await asyncio.wait_for(
            asyncio.gather(first, second, return_exceptions=True), ANSWER_TIMEOUT_S
        )
        assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        assert seq.failed and seq.committed_seq == 0
        with pytest.raises(Unavailable):
            seq.submit(deposit(1, 1, "c"))
        assert len(writer.handed) == 2  # nothing more was handed over
        await seq.stop(snapshot=False)

    asyncio.run(main())
    assert SqliteStore(tmp_path / "db").last_seq() == 0


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
