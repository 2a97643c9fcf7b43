"""The sequencer: bounded intake, group commit, engine apply, acknowledgement after durability.

Commands queue in a bounded intake (full -> the caller answers ``EService:Busy`` at once).
The loop takes whatever is queued, up to ``batch_commands_max``, stamps sequence numbers and
monotonic times, applies them to the engine, projects the events, and hands the batch to a
single writer thread that commits it in one transaction. Only then are the callers answered.
If a commit fails the engine is ahead of the log, so the sequencer stops taking commands
(fail-stop); a restart rebuilds the engine from the durable log.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import msgspec
import structlog

from abyssal.adapters.sqlite import BatchRecord, SqliteStore
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
from abyssal.runtime.projector import Projector, Rows

log = structlog.get_logger("abyssal.sequencer")

TICK_INTERVAL_S = 0.05  # how often idle timers (GTD, scheduled starts, dead man's switch) are checked

BatchListener = Callable[[list[tuple[int, Command, list[Event]]]], None]


class Busy(Exception):
    """The intake is full: refuse at once rather than queue without end."""


class Unavailable(Exception):
    """The sequencer stopped after a storage fault; nothing more is accepted until restart."""


class _Item:
    __slots__ = ("command", "future", "nonce")

    def __init__(self, command: Command, future: asyncio.Future[list[Event]], nonce: tuple[int, int] | None):
        self.command = command
        self.future = future
        self.nonce = nonce


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        store: SqliteStore,
        projector: Projector,
        *,
        intake_queue_max: int,
        batch_commands_max: int,
        snapshot_every_commands: int,
        next_seq: int,
        last_snapshot_seq: int,
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
        self.listeners: list[BatchListener] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=intake_queue_max)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abyssal-writer")
        self._tasks: list[asyncio.Task[None]] = []
        self.batches_committed = 0
        self.commands_committed = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._ticker())]

    async def stop(self) -> None:
        """Finish what is queued, then stop (graceful shutdown)."""
        while not self._queue.empty() and not self.failed:
            await asyncio.sleep(0.01)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writer.shutdown(wait=True)

    # -- intake ------------------------------------------------------------------------------
    def submit(self, command: Command, nonce: tuple[int, int] | None = None) -> asyncio.Future[list[Event]]:
        """Queue a command; the future resolves to its events once they are durable."""
        if self.failed:
            raise Unavailable()
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Item(command, future, nonce))
        except asyncio.QueueFull:
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
            if deadline and deadline <= time.time_ns() and self._queue.empty() and not self.failed:
                try:
                    self.submit(Tick(ts_ns=time.time_ns()))
                except (Busy, Unavailable):
                    pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            while len(items) < self.batch_commands_max and not self._queue.empty():
                items.append(self._queue.get_nowait())
            record, results = self._apply(items)
            try:
                await loop.run_in_executor(self._writer, self.store.write_batch, record)
            except Exception as exc:  # storage fault: fail-stop
                self.failed = True
                log.error("batch_commit_failed", error=repr(exc), first_seq=record.first_seq)
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(Unavailable())
                self._drain_unavailable()
                return
            self.batches_committed += 1
            self.commands_committed += len(items)
            for item, (_, _, events) in zip(items, results):
                if not item.future.done():
                    item.future.set_result(events)
            for listener in self.listeners:
                try:
                    listener(results)
                except Exception as exc:  # a listener must never stop the exchange
                    log.error("batch_listener_failed", error=repr(exc))

    def _drain_unavailable(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            item.future.set_exception(Unavailable())

    def _apply(self, items: list[_Item]) -> tuple[BatchRecord, list[tuple[int, Command, list[Event]]]]:
        now = time.time_ns()
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
            self.last_ts_ns = ts
            seq = self.next_seq
            self.next_seq += 1
            events = self.engine.apply(cmd)
            command_rows.append((seq, ts, COMMAND_SCHEMA_VERSION, command_encoder.encode(cmd)))
            event_rows.append((seq, EVENT_SCHEMA_VERSION, events_encoder.encode(events)))
            self.projector.project(seq, events, rows)
            results.append((seq, cmd, events))
            if item.nonce is not None:
                key_no, nonce = item.nonce
                nonces[key_no] = max(nonce, nonces.get(key_no, 0))
        record = BatchRecord(first_seq, command_rows, event_rows, rows, nonces)
        last = self.next_seq - 1
        if self.snapshot_every_commands and last - self.last_snapshot_seq >= self.snapshot_every_commands:
            from abyssal.core.snapshot import snapshot

            blob = snapshot(self.engine)
            record.snapshot = (last, hashlib.sha256(blob).hexdigest(), blob)
            self.last_snapshot_seq = last
        return record, results
