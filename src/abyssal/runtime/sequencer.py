"""The sequencer: bounded intake, group commit, engine apply, acknowledgement after durability.

Commands queue in a bounded intake (full -> the caller answers ``EService:Busy`` at once).
The loop takes whatever is queued, up to ``batch_commands_max``, stamps sequence numbers and
monotonic times, applies them to the engine, projects the events, and hands the batch to its
batch writer (for SQLite a child process, adapters/sqlite_writer.py; else the writer thread),
which commits it in one transaction. Only then are the callers answered.
If a commit fails the engine is ahead of the log, so the sequencer stops taking commands
(fail-stop); a restart rebuilds the engine from the durable log. ``stop`` is the graceful
shutdown: intake closes, the queue and the batch in flight finish, a snapshot is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import structlog

from abyssal import tracing
from abyssal.adapters.sqlite import BatchRecord
from abyssal.adapters.store import Store
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    COMMAND_SCHEMA_VERSION,
    EVENT_SCHEMA_VERSION,
    Command,
    Event,
    Tick,
    command_encoder,
    events_encoder,
)
from abyssal.observability import REFUSED
from abyssal.runtime.projector import Projector, Rows
from abyssal.runtime.snapshot_fork import BackgroundSnapshots
from abyssal.runtime.telemetry import observe_batch
from abyssal.runtime.writer_thread import BatchWriter, ThreadBatchWriter, WriterThread, early_handover_pays

log = structlog.get_logger("abyssal.sequencer")

TICK_INTERVAL_S = 0.05  # how often idle timers (GTD, scheduled starts, dead man's switch) are checked
STOP_TIMEOUT_S = 10.0  # graceful shutdown: longest wait for the queue and the batch in flight
STOP_POLL_S = 0.005

BatchListener = Callable[[list[tuple[int, Command, list[Event]]]], None]


class Busy(Exception):
    """The intake is full: refuse at once rather than queue without end."""


class Unavailable(Exception):
    """The sequencer stopped after a fault (storage, or the engine while applying a batch);
    nothing more is accepted until a restart recovers from the log."""


class Unjournalable(ValueError):
    """A command that cannot be written to the command log (an integer beyond 64 bits): refused
    before the engine sees it, so the engine and the log never disagree."""


def journal_bytes(command: Command) -> bytes:
    """The command as the command log stores it, or ``Unjournalable`` (an int beyond 64 bits)."""
    try:
        return command_encoder.encode(command)
    except (OverflowError, TypeError, ValueError) as exc:
        raise Unjournalable(str(exc)) from None


class _Item:
    __slots__ = ("command", "future", "nonce", "trace")

    def __init__(
        self,
        command: Command,
        future: asyncio.Future[list[Event]],
        nonce: tuple[int, int] | None,
        trace: tracing.Trace | None = None,
    ):
        self.command = command
        self.future = future
        self.nonce = nonce
        self.trace = trace  # the submitting request's trace: its id goes into the command's log record


@dataclass(slots=True)
class _Inflight:
    items: list[_Item]
    record: BatchRecord
    results: list[tuple[int, Command, list[Event]]]
    write: asyncio.Future[tuple[int, int]]
    apply_ns: int
    batch_start_ns: int


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        store: Store,
        projector: Projector,
        *,
        intake_queue_max: int,
        batch_commands_max: int,
        snapshot_every_commands: int,
        next_seq: int,
        last_snapshot_seq: int,
        batch_writer: BatchWriter | None = None,
        early_handover: bool | None = None,
    ) -> None:
        assert intake_queue_max > 0 and batch_commands_max > 0
        self.engine = engine
        self.store = store
        self.projector = projector
        self.batch_commands_max = batch_commands_max
        self.snapshot_every_commands = snapshot_every_commands
        self.next_seq = next_seq
        self.last_snapshot_seq = last_snapshot_seq
        self.last_ts_ns = 0
        self.failed = False
        self.closing = False  # graceful shutdown began: intake is closed
        self.committed_seq = next_seq - 1  # the last durable command (the engine may be ahead after a fault)
        self._in_batch = False
        self._inflight: _Inflight | None = None  # the batch with the writer while the next is applied
        self._pair_names = [p.id for p in engine.s.instruments.pairs]
        self.intake_queue_max = intake_queue_max
        self.listeners: list[BatchListener] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=intake_queue_max)
        self._writer = WriterThread("abyssal-writer")
        self.batch_writer = batch_writer or ThreadBatchWriter(store, self._writer)
        self.early_handover = (
            early_handover_pays(self.batch_writer) if early_handover is None else early_handover
        )
        self.snapshots = BackgroundSnapshots(store.write_snapshot, self._writer)
        self._tasks: list[asyncio.Task[None]] = []
        self.batches_committed = 0
        self.commands_committed = 0
        # (projection_offsets row, predicate): while the predicate holds when a batch is applied,
        # that batch's transaction moves the row to its last seq (a position with nothing to do
        # for these events: the event-log relay while no engine topic has a reader)
        self.follows: list[tuple[str, Callable[[], bool]]] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._ticker())]

    async def stop(self, *, snapshot: bool = True, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Graceful shutdown: close intake, finish the queue and the batch in flight, write a snapshot."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._busy() and not self.failed and loop.time() < deadline:
            await asyncio.sleep(STOP_POLL_S)
        finished = not self._busy()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._drain_unavailable()
        await self.snapshots.close()
        if finished and snapshot and not self.failed:
            try:
                await self._write_final_snapshot()
            except Exception as exc:  # the log is complete without it; recovery replays instead
                log.error("shutdown_snapshot_failed", error=repr(exc), seq=self.next_seq - 1)
        elif not finished:
            log.error("shutdown_incomplete", queue_depth=self._queue.qsize(), seq=self.next_seq - 1)
        self._writer.shutdown(wait=True)
        self.batch_writer.close()

    def _busy(self) -> bool:
        return self._in_batch or self._inflight is not None or not self._queue.empty()

    async def _write_final_snapshot(self) -> None:
        """A snapshot at the last committed seq, so the next start replays nothing."""
        last = self.next_seq - 1
        if last <= self.last_snapshot_seq:
            return
        size = await self._snapshot_inline(last)
        self.last_snapshot_seq = last
        log.info("shutdown_snapshot_written", seq=last, bytes=size)

    async def _snapshot_inline(self, seq: int) -> int:
        """Serialise and write the engine at ``seq`` in the writer thread; the caller applies nothing
        meanwhile. Returns the snapshot's size."""
        from abyssal.core.snapshot import snapshot

        def write() -> int:
            blob = snapshot(self.engine)
            self.store.write_snapshot(seq, hashlib.sha256(blob).hexdigest(), blob)
            return len(blob)

        return await self._writer.run(asyncio.get_running_loop(), write)

    # -- intake ------------------------------------------------------------------------------
    def submit(self, command: Command, nonce: tuple[int, int] | None = None) -> asyncio.Future[list[Event]]:
        """Queue a command; the future resolves to its events once they are durable."""
        if self.failed or self.closing:
            REFUSED.labels("unavailable").inc()
            raise Unavailable()
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        trace = tracing.current()
        if trace is not None and trace.span is not None:
            trace.enqueued_ns = time.time_ns()
        try:
            self._queue.put_nowait(_Item(command, future, nonce, trace))
        except asyncio.QueueFull:
            REFUSED.labels("busy").inc()
            raise Busy() from None
        return future

    async def execute(self, command: Command, nonce: tuple[int, int] | None = None) -> list[Event]:
        return await self.submit(command, nonce)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    # -- the loop ----------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            deadline = self.engine.next_deadline_ns()
            idle = self._queue.empty() and not self.failed and not self.closing
            if deadline and deadline <= time.time_ns() and idle:
                with contextlib.suppress(Busy, Unavailable):  # a full or closed intake: next tick
                    self.submit(Tick(ts_ns=time.time_ns()))

    async def _run(self) -> None:
        """Apply batch N+1 while N commits, hand N+1 to the writer (before N's commit with
        ``early_handover``, else right after it), then acknowledge N. Writers refuse every batch
        after one they refused, so the log stays a prefix: if N fails, N+1 fails unwritten too.

        Where a snapshot is due, a forked child serialises the engine as it is at this batch's end
        (runtime/snapshot_fork.py) and the loop goes on. Without fork, the batch that carries the
        snapshot is committed before anything else is applied: the writer thread serialises the
        engine, which must not change meanwhile.
        """
        while True:
            if self._inflight is not None and self._queue.empty():
                await self._finish(self._inflight)  # nothing to overlap with: settle it
                self._inflight = None
                if self.failed:
                    return
                continue
            items = [await self._queue.get()]
            self._in_batch = True
            while len(items) < self.batch_commands_max and not self._queue.empty():
                items.append(self._queue.get_nowait())
            batch_start_ns = time.time_ns()
            apply_start = time.perf_counter_ns()
            try:
                record, results, items = self._apply(items)
            except Exception as exc:  # the engine or the encoders failed mid-batch: fail-stop
                self.failed = True
                log.exception("batch_apply_failed", error=repr(exc), first_seq=self.next_seq)
                if self._inflight is not None:
                    await self._finish(self._inflight)  # committed before this batch: acknowledged
                    self._inflight = None
                self._fail(items)
                return
            if not items:  # every command of this batch was refused before the engine
                self._in_batch = not self._queue.empty()
                continue
            apply_ns = time.perf_counter_ns() - apply_start
            committed, window = self._inflight, None
            if committed is not None and not self.early_handover:
                window = await self._committed(committed)
                if window is None:
                    self._inflight = None
                    self._fail(items)
                    return
            write = self.batch_writer.write(asyncio.get_running_loop(), record)
            self._inflight = _Inflight(items, record, results, write, apply_ns, batch_start_ns)
            if committed is not None:
                if window is None:  # early hand-over: N+1 is with the writer, now wait for N
                    window = await self._committed(committed)
                    if window is None:  # the writer refuses N+1 too (see above): nobody waits for it
                        self._inflight = None
                        write.add_done_callback(lambda f: f.cancelled() or f.exception())
                        self._fail(items)
                        return
                self._acknowledge(committed, window)
            due = record.snapshot_due
            if due and not self.snapshots.start(self.engine, due, write):
                await self._finish(self._inflight)  # inline: the engine must not change meanwhile
                self._inflight = None
                if self.failed:
                    return
                try:
                    await self._snapshot_inline(due)
                except Exception as exc:  # the log is complete without it; recovery replays more
                    log.error("snapshot_failed", error=repr(exc), seq=due)

    async def _finish(self, b: _Inflight) -> None:
        """Wait for a batch's commit, then acknowledge it and tell the listeners."""
        commit_window = await self._committed(b)
        if commit_window is not None:
            self._acknowledge(b, commit_window)

    async def _committed(self, b: _Inflight) -> tuple[int, int] | None:
        """Wait for a batch's commit: its window, or None after a storage fault (fail-stop)."""
        try:
            return await b.write
        except Exception as exc:
            self.failed = True
            log.error("batch_commit_failed", error=repr(exc), first_seq=b.record.first_seq)
            self._fail(b.items)
            return None

    def _acknowledge(self, b: _Inflight, commit_window: tuple[int, int]) -> None:
        self.batches_committed += 1
        self.commands_committed += len(b.items)
        self.committed_seq = b.results[-1][0]
        try:
            observe_batch(b.results, [item.trace for item in b.items], self._pair_names, apply_ns=b.apply_ns,
                          commit_window_ns=commit_window, batch_start_ns=b.batch_start_ns)  # fmt: skip
        except Exception as exc:  # telemetry must never stop the exchange
            log.error("observe_batch_failed", error=repr(exc), first_seq=b.record.first_seq)
        for item, (_, _, events) in zip(b.items, b.results, strict=True):
            if not item.future.done():
                item.future.set_result(events)
        for listener in self.listeners:
            try:
                listener(b.results)
            except Exception as exc:  # a listener must never stop the exchange
                log.error("batch_listener_failed", error=repr(exc))
        self._in_batch = not self._queue.empty()

    def _fail(self, items: list[_Item]) -> None:
        self._in_batch = False  # the loop ends: nothing is in flight any more
        for item in items:
            if not item.future.done():
                item.future.set_exception(Unavailable())
        self._drain_unavailable()

    def _drain_unavailable(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():  # a caller that went away cancelled its future
                item.future.set_exception(Unavailable())

    def _apply(
        self, items: list[_Item]
    ) -> tuple[BatchRecord, list[tuple[int, Command, list[Event]]], list[_Item]]:
        """Apply a batch; returns its record, its results and the items sequenced (a command that
        cannot be journaled is refused with ``Unjournalable`` and left out)."""
        now = time.time_ns()
        kept: list[_Item] = []
        first_seq = self.next_seq
        command_rows: list[tuple[int, int, int, bytes]] = []
        event_rows: list[tuple[int, int, bytes]] = []
        results: list[tuple[int, Command, list[Event]]] = []
        nonces: dict[int, int] = {}
        rows = Rows()
        for item in items:
            ts = max(now, self.last_ts_ns + 1, item.command.ts_ns)
            cmd = (
                item.command if item.command.ts_ns == ts else msgspec.structs.replace(item.command, ts_ns=ts)
            )
            try:
                body = journal_bytes(cmd)
            except Unjournalable as exc:
                log.warning("command_refused", error=repr(exc), command=type(cmd).__name__)
                if not item.future.done():
                    item.future.set_exception(exc)
                continue
            kept.append(item)
            self.last_ts_ns = ts
            seq = self.next_seq
            self.next_seq += 1
            trace = item.trace
            if trace is not None and trace.span is not None:
                apply_start_ns = time.time_ns()
                events = self.engine.apply(cmd)
                trace.apply_window_ns = (apply_start_ns, time.time_ns())
            else:
                events = self.engine.apply(cmd)
            command_rows.append((seq, ts, COMMAND_SCHEMA_VERSION, body))
            event_rows.append((seq, EVENT_SCHEMA_VERSION, events_encoder.encode(events)))
            self.projector.project(seq, events, rows)
            results.append((seq, cmd, events))
            if item.nonce is not None:
                key_no, nonce = item.nonce
                nonces[key_no] = max(nonce, nonces.get(key_no, 0))
        record = BatchRecord(first_seq, command_rows, event_rows, rows, nonces)
        last = self.next_seq - 1
        for name, holds in self.follows:
            if holds():
                record.offsets[name] = last
        due = self.snapshot_every_commands and last - self.last_snapshot_seq >= self.snapshot_every_commands
        if due and not self.snapshots.busy:  # busy: the previous child still runs; the next batch retries
            record.snapshot_due = last  # see _run: a forked child, or inline after the commit
            self.last_snapshot_seq = last
        return record, results, kept
