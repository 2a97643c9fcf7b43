"""``abyssal engine``: one replica of a shard's engine; the lease holder leads (docs/scaled-out.md).

Every replica reads the command topic in order and applies each command with the same
deterministic stamp, so leader and standby hold the same state at the same seq. Only the
leader publishes: one ``LogRecord`` per seq to the event topic (idempotent producer, acks=all),
a ``Tick`` to the command topic when a deadline passes, and a snapshot to PostgreSQL every
``snapshot_every_commands``. A replica keeps its recent records, so on taking the lease it
publishes at once whatever the old leader had not (from the seq after the event topic's last
record); if they are no longer in memory it rebuilds from a snapshot at or before that seq.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec
import structlog

from abyssal.adapters.store import Store, open_store
from abyssal.cluster import schema
from abyssal.cluster.kafka_log import LogProducer, PartitionReader, ensure_topics, last_record
from abyssal.cluster.lease import Lease
from abyssal.cluster.records import (
    HEADER_EPOCH,
    HEADER_REQUEST,
    LogRecord,
    commands_topic,
    events_topic,
    offset_of_seq,
    record_decoder,
    record_encoder,
    seq_of_offset,
)
from abyssal.config import Config
from abyssal.core.engine import Engine
from abyssal.core.messages import Tick, command_decoder, command_encoder, events_encoder
from abyssal.runtime.snapshot_fork import BackgroundSnapshots

log = structlog.get_logger("abyssal.engine")

LEASE_TTL_S: Final = 2.0
RECENT_RECORDS: Final = 100_000  # records kept for a takeover (beyond: rebuild from a snapshot)
TICK_INTERVAL_S: Final = 0.05
T = TypeVar("T")


class EngineNode:
    def __init__(
        self,
        config: Config,
        database: str,
        bus: str,
        *,
        shard: int = 0,
        node_id: str | None = None,
        data_dir: Path = Path("."),
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.config = config
        self.database = database
        self.bus = bus
        self.shard = shard
        self.node_id = node_id or f"engine-{uuid.uuid4().hex[:8]}"
        self.data_dir = data_dir
        self.lease_ttl_s = lease_ttl_s
        self.snapshot_every = config.engine.snapshot_every_commands
        self.cmd_topic = commands_topic(shard)
        self.ev_topic = events_topic(shard)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abyssal-engine-db")
        self.store: Store
        self.lease: Lease
        self.engine = Engine(config.instruments)
        self.seq = 0  # last applied
        self.last_ts_ns = 0
        self.snapshot_seq = 0
        self.snapshots = BackgroundSnapshots(self._store_snapshot, self._db)
        self._snapshot_clock = (0, 0)  # (seq, last stamp) of the snapshot being taken
        self.recent: collections.deque[tuple[int, bytes, str]] = collections.deque(maxlen=RECENT_RECORDS)
        self.leader = False
        self.published_seq = 0  # leader: every record up to here is on the event topic
        self.queued_seq = 0  # leader: every record up to here is handed to the producer
        self.producer: LogProducer | None = None
        self.reader: PartitionReader | None = None
        self._tick_seq = 0  # the seq of the last Tick sent: no other until it is applied
        self._stopping = asyncio.Event()
        self.takeovers = 0
        self.phase = "starting"

    async def _in_db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        self.store = await self._in_db(open_store, self.database, self.data_dir)
        await self._in_db(lambda: schema.ensure(self.store.conn().raw))  # type: ignore[attr-defined]
        self.lease = Lease(lambda: self.store.conn().raw, self.shard, self.node_id, self.lease_ttl_s)  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(
            None, ensure_topics, self.bus, [self.cmd_topic, self.ev_topic]
        )
        await self._restore(None)
        self.producer = LogProducer(self.bus, client_id=f"abyssal-{self.node_id}")
        self.phase = "following"
        log.info("engine_started", node=self.node_id, shard=self.shard, seq=self.seq)
        tasks = [
            asyncio.create_task(t)
            for t in (self._apply_forever(), self._lease_forever(), self._tick_forever())
        ]
        stop = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            for t in [*tasks, stop]:
                t.cancel()
            await asyncio.gather(*tasks, stop, return_exceptions=True)
            await self._shutdown()

    def stop(self) -> None:
        self._stopping.set()

    async def _shutdown(self) -> None:
        await self.snapshots.close()  # a child still serialising is killed: a later leader takes its own
        if self.reader is not None:
            self.reader.stop()
        if self.producer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.producer.close)
        if self.leader:
            with contextlib.suppress(Exception):
                await self._in_db(self.lease.release)
        self._db.shutdown(wait=True)
        self.store.close()
        self.phase = "stopped"

    # -- state -------------------------------------------------------------------------------
    async def _restore(self, at_most: int | None) -> None:
        """The newest snapshot (at or before ``at_most``), then read the command topic after it."""
        found = await self._in_db(self._load_snapshot, at_most)
        if found is None:
            self.engine, self.seq, self.last_ts_ns = Engine(self.config.instruments), 0, 0
        else:
            from abyssal.core import snapshot as snapshots

            seq, blob, last_ts = found
            self.engine = snapshots.restore(self.config.instruments, blob)
            self.seq, self.last_ts_ns = seq, last_ts
        self.snapshot_seq = self.seq
        self.recent.clear()
        if self.reader is not None:
            self.reader.stop()
        self.reader = PartitionReader(self.bus, self.cmd_topic, offset_of_seq(self.seq + 1),
                                      client_id=f"abyssal-{self.node_id}")  # fmt: skip
        self.reader.start()

    def _load_snapshot(self, at_most: int | None) -> tuple[int, bytes, int] | None:
        c = self.store.conn()
        row = c.execute(
            "SELECT s.seq, s.state_hash, s.body, k.last_ts_ns FROM snapshots s "
            "JOIN engine_clocks k ON k.seq = s.seq WHERE s.seq <= ? ORDER BY s.seq DESC LIMIT 1",
            (at_most if at_most is not None else 2**62,),
        ).fetchone()
        if row is None:
            return None
        blob = bytes(row[2])
        if hashlib.sha256(blob).hexdigest() != str(row[1]):
            raise RuntimeError(f"snapshot at seq {row[0]} does not match its recorded hash")
        return int(row[0]), blob, int(row[3])

    async def _apply_forever(self) -> None:
        while True:
            assert self.reader is not None
            reader = self.reader
            batch = await reader.next_batch()
            if reader is not self.reader:
                continue  # a rebuild replaced the reader while this batch was in flight
            fresh: list[tuple[int, bytes, str]] = []
            for rec in batch:
                seq = seq_of_offset(rec.offset)
                if seq <= self.seq:
                    continue
                if seq != self.seq + 1:
                    raise RuntimeError(f"command topic has a gap before seq {seq} (at {self.seq})")
                fresh.append(self._apply(seq, rec.value, rec.headers.get(HEADER_REQUEST, b"").decode()))
            if self.leader and fresh:
                await self._publish(fresh)
            if self.leader and self.seq - self.snapshot_seq >= self.snapshot_every > 0:
                await self._snapshot()

    def _apply(self, seq: int, body: bytes, rid: str) -> tuple[int, bytes, str]:
        cmd = command_decoder.decode(body)
        ts = max(cmd.ts_ns, self.last_ts_ns + 1)
        if ts != cmd.ts_ns:
            cmd = msgspec.structs.replace(cmd, ts_ns=ts)
        self.last_ts_ns = ts
        events = self.engine.apply(cmd)
        self.seq = seq
        out = (seq, record_encoder.encode(LogRecord(seq, rid, command_encoder.encode(cmd),
                                                    events_encoder.encode(events))), rid)  # fmt: skip
        self.recent.append(out)
        return out

    def _enqueue(self, records: list[tuple[int, bytes, str]]) -> list[asyncio.Future[int]]:
        """Hand the records after ``queued_seq`` to the producer, in order, without yielding: the
        partition keeps the order of these calls (idempotent producer), so no later record can
        overtake an earlier one."""
        assert self.producer is not None
        epoch = str(self.lease.epoch).encode()
        futures = []
        for seq, body, rid in records:
            if seq <= self.queued_seq:
                continue
            futures.append(self.producer.send_nowait(
                self.ev_topic, body, str(self.shard).encode(),
                [(HEADER_EPOCH, epoch), (HEADER_REQUEST, rid.encode())],
            ))  # fmt: skip
            self.queued_seq = seq
        return futures

    async def _publish(self, records: list[tuple[int, bytes, str]]) -> None:
        """Send records and wait for every acknowledgement."""
        futures = self._enqueue(records)
        upto = self.queued_seq
        await asyncio.gather(*futures)
        self.published_seq = max(self.published_seq, upto)

    async def _snapshot(self) -> None:
        """A snapshot at this seq, serialised by a forked child while the node goes on applying
        (runtime/snapshot_fork.py); inline where fork is unavailable. The log already holds the seq."""
        if self.snapshots.busy:
            return  # the previous one is still being written: a later batch tries again
        seq = self.snapshot_seq = self.seq
        self._snapshot_clock = (seq, self.last_ts_ns)
        if self.snapshots.start(self.engine, seq, None):
            return
        from abyssal.core import snapshot as snapshots

        blob = snapshots.snapshot(self.engine)  # on the loop: the engine must not change meanwhile
        try:
            await self._in_db(self._store_snapshot, seq, hashlib.sha256(blob).hexdigest(), blob)
        except Exception as exc:  # replay from an older snapshot costs time, not correctness
            log.error("snapshot_write_failed", seq=seq, error=repr(exc))

    def _store_snapshot(self, seq: int, digest: str, blob: bytes) -> None:
        """The snapshot and the clock it was taken at (in the database thread)."""
        clock_seq, last_ts = self._snapshot_clock
        assert clock_seq == seq, "one snapshot at a time"
        with self.store.transaction() as c:
            c.execute("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)", (seq, digest, blob))
            c.execute("INSERT OR IGNORE INTO engine_clocks VALUES (?, ?)", (seq, last_ts))

    # -- leadership --------------------------------------------------------------------------
    async def _lease_forever(self) -> None:
        while True:
            try:
                holds = await self._in_db(self.lease.try_hold)
            except Exception as exc:  # the database is unreachable: lead only while the lease may last
                log.warning("lease_renew_failed", node=self.node_id, error=repr(exc))
                holds = self.lease.held()
            if holds and not self.leader:
                await self._take_over()
            elif not holds and self.leader:
                self.leader = False
                self.phase = "following"
                log.warning("engine_lost_lease", node=self.node_id, seq=self.seq)
            await asyncio.sleep(self.lease_ttl_s / 4 if self.leader else self.lease_ttl_s / 8)

    async def _take_over(self) -> None:
        """Publish, from the seq after the event topic's last record, what this replica applied."""
        started = time.monotonic()
        tail = await asyncio.get_running_loop().run_in_executor(None, self._published_tail)
        if tail < self.seq and (not self.recent or self.recent[0][0] > tail + 1):
            log.warning("engine_rebuild_for_takeover", last_seq=tail, seq=self.seq)
            await self._restore(tail)  # replays from Kafka; records after `tail` publish as they apply
        # from here to `leader = True` nothing yields: the apply loop cannot publish in between
        self.queued_seq = self.published_seq = tail
        unsent = list(itertools.takewhile(lambda r: r[0] > tail, reversed(self.recent)))
        backlog = self._enqueue(unsent[::-1])
        self.leader = True
        self.takeovers += 1
        self.phase = "leading"
        await asyncio.gather(*backlog)
        self.published_seq = max(self.published_seq, self.queued_seq)
        log.info("engine_leading", node=self.node_id, epoch=self.lease.epoch, first_seq=tail + 1,
                 seq=self.seq, duration_us=round((time.monotonic() - started) * 1e6))  # fmt: skip

    def _published_tail(self) -> int:
        rec = last_record(self.bus, self.ev_topic)
        return 0 if rec is None else int(record_decoder.decode(rec.value).seq)

    async def _tick_forever(self) -> None:
        """The leader sends a Tick when a deadline (GTD, scheduled start, dead man's switch) passes."""
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            deadline = self.engine.next_deadline_ns()
            if not self.leader or self._tick_seq > self.seq or not deadline or deadline > time.time_ns():
                continue
            assert self.producer is not None
            self._tick_seq = 2**62  # until acknowledged
            try:
                tick = command_encoder.encode(Tick(ts_ns=time.time_ns()))
                self._tick_seq = seq_of_offset(await self.producer.send(self.cmd_topic, tick))
            except Exception as exc:
                self._tick_seq = 0
                log.warning("tick_send_failed", error=repr(exc))

    def state_hash(self) -> str:
        from abyssal.core import snapshot as snapshots

        return snapshots.state_hash(self.engine)
