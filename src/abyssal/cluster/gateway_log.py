"""A gateway's way to the engine in scaled-out mode: only through the log (docs/scaled-out.md).

``LogSequencer`` has the embedded ``Sequencer``'s interface, so the HTTP and WebSocket code is
the same in both modes. ``execute`` produces the command to the shard's command topic
(idempotent, acks=all: once acknowledged it is durable and will be applied), then waits for
the record with its request id on the event topic, and then for PostgreSQL to have committed
that seq (so whatever the client reads next, from any gateway, includes it).

The gateway keeps a follower replica of the engine fed by the event topic: each record's
command is re-applied and its events compared byte for byte with the leader's; market data,
WebSocket feeds and the reads of engine state are served from it, as in the embedded mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
import uuid
from typing import Any, Final

import psycopg
import structlog

from abyssal.cluster.kafka_log import LogProducer, LogUnavailable, PartitionReader
from abyssal.cluster.records import HEADER_REQUEST, commands_topic, events_topic, record_decoder
from abyssal.core.engine import Engine
from abyssal.core.messages import Command, Event, command_decoder, events_encoder
from abyssal.observability import REFUSED
from abyssal.runtime.projector import Projector, Rows
from abyssal.runtime.sequencer import BatchListener, Busy, Unavailable, journal_bytes

log = structlog.get_logger("abyssal.gateway_log")

RESULT_TIMEOUT_S: Final = 10.0  # the engine's answer; beyond it the client hears EService:Unavailable
PROJECTED_WAIT_S: Final = 5.0  # then the record: answered anyway (the order is durable in the log)
LISTEN_TIMEOUT_S: Final = 1.0
CHANNEL: Final = "abyssal_projected"


class LogSequencer:
    def __init__(
        self,
        engine: Engine,
        projector: Projector,
        *,
        database: str,
        bus: str,
        shard: int,
        applied_seq: int,
        events_offset: int,
        intake_queue_max: int,
    ) -> None:
        self.engine = engine
        self.projector = projector
        self.database = database
        self.bus = bus
        self.shard = shard
        self.applied = applied_seq
        self.events_offset = events_offset
        self.intake_queue_max = intake_queue_max
        self.gateway_id = uuid.uuid4().hex[:10]
        self._rids = itertools.count(1)
        self.listeners: list[BatchListener] = []
        self.failed = False
        self.closing = False
        self._pending: dict[str, asyncio.Future[tuple[int, list[Event]]]] = {}
        self._applied_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._projected_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.projected = applied_seq
        self.producer: LogProducer | None = None
        self.reader: PartitionReader | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._listen_stop = threading.Event()
        self._listen_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the Sequencer interface -------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        return self.applied + 1

    @property
    def committed_seq(self) -> int:
        return self.applied

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.producer = LogProducer(self.bus, client_id=f"abyssal-gw-{self.gateway_id}")
        self.reader = PartitionReader(self.bus, events_topic(self.shard), self.events_offset,
                                      client_id=f"abyssal-gw-{self.gateway_id}")  # fmt: skip
        self.reader.start()
        self._tasks = [asyncio.create_task(self._follow())]
        self._listen_thread = threading.Thread(target=self._listen, name="abyssal-listen", daemon=True)
        self._listen_thread.start()

    async def stop(self, **_: Any) -> None:
        self.closing = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._listen_stop.set()
        if self.reader is not None:
            self.reader.stop()
        if self.producer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.producer.close)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(Unavailable())

    async def execute(self, command: Command, nonce: tuple[int, int] | None = None) -> list[Event]:
        """Log the command, wait for its events and for the record; ``nonce`` is checked already."""
        if self.failed or self.closing:
            REFUSED.labels("unavailable").inc()
            raise Unavailable()
        if len(self._pending) >= self.intake_queue_max:
            REFUSED.labels("busy").inc()
            raise Busy()
        assert self.producer is not None
        body = journal_bytes(command)  # Unjournalable, as the embedded sequencer refuses it
        rid = f"{self.gateway_id}:{next(self._rids)}"
        answer: asyncio.Future[tuple[int, list[Event]]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = answer
        try:
            try:
                await self.producer.send(commands_topic(self.shard), body,
                                         headers=[(HEADER_REQUEST, rid.encode())])  # fmt: skip
            except LogUnavailable as exc:
                log.warning("command_not_logged", error=str(exc))
                raise Unavailable() from None
            try:
                seq, events = await asyncio.wait_for(answer, RESULT_TIMEOUT_S)
            except TimeoutError:  # logged, so it will be applied; the client is told it is unknown
                log.warning("command_result_timeout", request_id=rid)
                raise Unavailable() from None
        finally:
            self._pending.pop(rid, None)
        await self.wait_projected(seq, PROJECTED_WAIT_S)
        return events

    # -- consistency waits -------------------------------------------------------------------
    async def wait_projected(self, seq: int, timeout_s: float) -> bool:
        """Until PostgreSQL has committed ``seq`` (or the timeout); True if it has."""
        return await self._wait(self._projected_waiters, self.projected, seq, timeout_s)

    async def wait_applied(self, seq: int, timeout_s: float) -> bool:
        """Until this gateway's replica has applied ``seq`` (or the timeout)."""
        return await self._wait(self._applied_waiters, self.applied, seq, timeout_s)

    async def _wait(self, heap: list[tuple[int, int, asyncio.Future[None]]], now: int, seq: int,
                    timeout_s: float) -> bool:  # fmt: skip
        if now >= seq:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(heap, (seq, next(self._order), fut))
        try:
            await asyncio.wait_for(fut, timeout_s)
            return True
        except TimeoutError:
            return False

    @staticmethod
    def _release(heap: list[tuple[int, int, asyncio.Future[None]]], upto: int) -> None:
        while heap and heap[0][0] <= upto:
            fut = heapq.heappop(heap)[2]
            if not fut.done():
                fut.set_result(None)

    # -- the follower ------------------------------------------------------------------------
    async def _follow(self) -> None:
        assert self.reader is not None
        try:
            while True:
                batch = await self.reader.next_batch()
                results: list[tuple[int, Command, list[Event]]] = []
                answers: list[tuple[str, int, list[Event]]] = []
                for rec in batch:
                    r = record_decoder.decode(rec.value)
                    if r.seq <= self.applied:
                        continue
                    if r.seq != self.applied + 1:
                        raise RuntimeError(f"event topic has a gap before seq {r.seq} (at {self.applied})")
                    cmd = command_decoder.decode(r.command)
                    events = self.engine.apply(cmd)
                    if events_encoder.encode(events) != r.events:
                        raise RuntimeError(f"replica diverged from the leader at seq {r.seq}")
                    self.projector.project(r.seq, events, Rows())
                    self.applied = r.seq
                    results.append((r.seq, cmd, events))
                    if r.rid in self._pending:
                        answers.append((r.rid, r.seq, events))
                for rid, seq, events in answers:
                    fut = self._pending.get(rid)
                    if fut is not None and not fut.done():
                        fut.set_result((seq, events))
                self._release(self._applied_waiters, self.applied)
                for listener in self.listeners if results else ():
                    try:
                        listener(results)
                    except Exception as exc:  # a listener must never stop the gateway
                        log.error("batch_listener_failed", error=repr(exc))
        except Exception as exc:
            self.failed = True  # fail-stop: a restart rebuilds the replica from PostgreSQL
            log.error("replica_failed", error=repr(exc), seq=self.applied)
            raise

    def _listen(self) -> None:
        """PostgreSQL's NOTIFY of each committed seq, on a thread of its own (reconnects)."""
        while not self._listen_stop.is_set():
            try:
                with psycopg.connect(self.database, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    row = conn.execute("SELECT seq FROM projection_offsets WHERE name = 'ledger'").fetchone()
                    if row is not None:
                        self._projected_to(int(row[0]))
                    while not self._listen_stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_TIMEOUT_S, stop_after=64):
                            self._projected_to(int(note.payload))
            except Exception as exc:
                log.warning("listen_failed", error=repr(exc))
                self._listen_stop.wait(0.5)

    def _projected_to(self, seq: int) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def on_loop() -> None:
            if seq > self.projected:
                self.projected = seq
                self._release(self._projected_waiters, seq)

        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(on_loop)

    async def catch_up(self, store_seq: int, timeout_s: float = PROJECTED_WAIT_S) -> None:
        """Read-your-writes across gateways: wait until this replica reached a seq the record has."""
        started = time.monotonic()
        await self.wait_applied(store_seq, timeout_s)
        if time.monotonic() - started > 1.0:
            log.warning("replica_lagging", seq=self.applied, last_seq=store_seq)
