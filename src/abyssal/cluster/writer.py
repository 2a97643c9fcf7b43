"""``abyssal ledger-writer``: the event topic into PostgreSQL, each seq exactly once in effect.

It reads the event topic from the offset it stored, skips every seq already written (the
topic may repeat a seq after a failover), and writes each batch with the embedded exchange's
own write path (``Store.write_batch``: command and event logs, orders, trades, ledger,
balances) in one transaction that also stores the next topic offset. A crash between
two batches therefore re-reads at most the batch that was not committed. PostgreSQL tells the
gateways each committed seq (``NOTIFY abyssal_projected``), which is how a gateway answers a
client only once what it did can be read from any gateway.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import structlog

from abyssal.adapters.sqlite import BatchRecord
from abyssal.adapters.store import Store, open_store
from abyssal.cluster import schema
from abyssal.cluster.kafka_log import PartitionReader, ensure_topics
from abyssal.cluster.records import commands_topic, events_topic, record_decoder
from abyssal.config import Config
from abyssal.core.messages import (
    COMMAND_SCHEMA_VERSION,
    EVENT_SCHEMA_VERSION,
    Event,
    command_decoder,
    events_decoder,
)
from abyssal.runtime.projector import Projector, Rows

log = structlog.get_logger("abyssal.writer")

EVENTS_OFFSET: Final = "events_offset"  # projection_offsets row: the next event-topic offset to read


def stored_position(store: Store) -> tuple[int, int]:
    """(last seq written, next event-topic offset) as committed together (blocking)."""
    c = store.conn()
    row = c.execute("SELECT seq FROM projection_offsets WHERE name = ?", (EVENTS_OFFSET,)).fetchone()
    return store.last_seq(), int(row[0]) if row is not None else 0


class LedgerWriter:
    def __init__(self, config: Config, database: str, bus: str, *, shard: int = 0,
                 data_dir: Path = Path(".")) -> None:  # fmt: skip
        self.config = config
        self.database = database
        self.bus = bus
        self.shard = shard
        self.data_dir = data_dir
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abyssal-writer-db")
        self.store: Store
        self.projector: Projector
        self.last_seq = 0
        self.reader: PartitionReader | None = None
        self.batches = 0
        self.duplicates = 0
        self.phase = "starting"
        self._stopping = asyncio.Event()

    async def _in_db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def run(self) -> None:
        self.store = await self._in_db(open_store, self.database, self.data_dir)
        await self._in_db(lambda: schema.ensure(self.store.conn().raw))  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(
            None, ensure_topics, self.bus, [commands_topic(self.shard), events_topic(self.shard)]
        )
        self.last_seq, offset = await self._in_db(stored_position, self.store)
        self.projector = Projector(self.config.instruments, await self._in_db(self.store.load_balances))
        self.reader = PartitionReader(self.bus, events_topic(self.shard), offset, client_id="abyssal-writer")
        self.reader.start()
        self.phase = "ready"
        log.info("writer_started", seq=self.last_seq, offset=offset)
        work = asyncio.create_task(self._write_forever())
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait([work, stop], return_when=asyncio.FIRST_COMPLETED)
            if work.done() and work.exception() is not None:
                raise work.exception()  # type: ignore[misc]
        finally:
            work.cancel()
            stop.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
            self.reader.stop()
            self._db.shutdown(wait=True)
            self.store.close()
            self.phase = "stopped"

    def stop(self) -> None:
        self._stopping.set()

    async def _write_forever(self) -> None:
        assert self.reader is not None
        while True:
            batch = await self.reader.next_batch()
            record = self._record(batch)
            await self._in_db(self.store.write_batch, record)
            if record.command_rows:
                self.last_seq = record.command_rows[-1][0]
                self.batches += 1

    def _record(self, batch: list[Any]) -> BatchRecord:
        """One transaction's worth: the new seqs of the batch, projected, plus the next offset."""
        commands: list[tuple[int, int, int, bytes]] = []
        events_rows: list[tuple[int, int, bytes]] = []
        rows = Rows()
        last = self.last_seq
        for rec in batch:
            r = record_decoder.decode(rec.value)
            if r.seq <= last:
                self.duplicates += 1
                continue
            if r.seq != last + 1:
                raise RuntimeError(f"event topic has a gap before seq {r.seq} (written up to {last})")
            cmd = command_decoder.decode(r.command)
            commands.append((r.seq, cmd.ts_ns, COMMAND_SCHEMA_VERSION, r.command))
            events_rows.append((r.seq, EVENT_SCHEMA_VERSION, r.events))
            events: list[Event] = list(events_decoder.decode(r.events))
            self.projector.project(r.seq, events, rows)
            last = r.seq
        out = BatchRecord(last + 1 if not commands else commands[0][0], commands, events_rows, rows)
        out.offsets = {EVENTS_OFFSET: batch[-1].offset + 1}
        return out
