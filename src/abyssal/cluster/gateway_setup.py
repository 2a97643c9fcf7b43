"""Opening a scaled-out gateway: its replica and projector, consistent with PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

from abyssal.adapters.store import Store, is_postgres
from abyssal.cluster import schema
from abyssal.cluster.gateway_log import LogSequencer
from abyssal.cluster.kafka_log import ensure_topics
from abyssal.cluster.records import commands_topic, events_topic
from abyssal.cluster.shared import SharedState
from abyssal.cluster.writer import stored_position
from abyssal.core.engine import Engine
from abyssal.core.instruments import Instruments
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import ReplayMismatch, replay

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange


def recover_consistent(
    store: Store, instruments: Instruments
) -> tuple[Engine, int, int, dict[tuple[int, int], list[int]]]:
    """(replica, last seq, next event-topic offset, balances), all as of one PostgreSQL snapshot
    (REPEATABLE READ): the newest engine snapshot at or before the record's last seq, then the
    record's command log replayed up to it, its events checked byte for byte."""
    c = store.conn()
    raw: Any = c.raw  # type: ignore[attr-defined]
    with raw.transaction():
        raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        last, offset = stored_position(store)
        balances = store.load_balances()
        row = c.execute(
            "SELECT seq, state_hash, body FROM snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (last,)
        ).fetchone()
        if row is None:
            engine, seq = Engine(instruments), 0
        else:
            from abyssal.core import snapshot as snapshots

            blob = bytes(row[2])
            if hashlib.sha256(blob).hexdigest() != str(row[1]):
                raise ReplayMismatch(f"snapshot at seq {row[0]} does not match its recorded hash")
            engine, seq = snapshots.restore(instruments, blob), int(row[0])
        seq, _ = replay(store, engine, seq)
    if seq != last:
        raise ReplayMismatch(f"the record's command log ends at {seq}, its ledger at {last}")
    return engine, last, offset, balances


async def open_gateway(
    ex: Exchange, loop: asyncio.AbstractEventLoop
) -> tuple[Engine, LogSequencer, SharedState]:
    if not is_postgres(ex.database) or not str(ex.bus_url or "").startswith("kafka://"):
        raise SystemExit("a gateway needs --database postgresql://... and --bus kafka://...")
    assert ex.database is not None and ex.bus_url is not None
    store = ex.store
    await loop.run_in_executor(None, lambda: schema.ensure(store.conn().raw))  # type: ignore[attr-defined]
    topics = [commands_topic(ex.shard), events_topic(ex.shard)]
    await loop.run_in_executor(None, ensure_topics, ex.bus_url, topics)
    engine, last, offset, balances = await loop.run_in_executor(
        None, recover_consistent, store, ex.instruments
    )
    sequencer = LogSequencer(
        engine,
        Projector(ex.instruments, balances),
        database=ex.database,
        bus=ex.bus_url,
        shard=ex.shard,
        applied_seq=last,
        events_offset=offset,
        intake_queue_max=ex.config.engine.intake_queue_max,
    )
    return engine, sequencer, SharedState(store)
