"""Outbox relays on PostgreSQL as separate processes would run them (the competing-relay tests)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from abyssal.adapters.memory_bus import MemoryBus
from abyssal.adapters.postgres import PostgresStore
from abyssal.ports import BusMessage
from abyssal.runtime.outbox import OutboxRelay


class ProcessRelay:
    """A relay with its own store, connections and pool; ``source`` makes what it publishes from
    (the payments outbox table, or the event log) over that store."""

    def __init__(
        self, url: str, source: Callable[[PostgresStore], Any], publisher: Any, batch_rows_max: int
    ) -> None:
        self.store = PostgresStore(url)
        self.source = source(self.store)
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.relay = OutboxRelay(self.source, publisher, self.io, batch_rows_max=batch_rows_max,
                                 poll_interval_s=0.005)  # fmt: skip

    async def io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def close(self) -> None:
        await self.relay.stop()
        self.pool.shutdown(wait=True)
        self.store.close()


@asynccontextmanager
async def competing_relays(
    make: Callable[[MemoryBus], ProcessRelay],
    count: int,
    topics: list[str],
    rng: random.Random,
    slow_share: float,
) -> AsyncIterator[tuple[list[ProcessRelay], list[BusMessage]]]:
    """``count`` started relays on one in-process bus, and what an auditing reader received (a
    ``slow_share`` of its acks slow, so claims overlap in time); all closed on exit."""
    bus = MemoryBus()
    received: list[BusMessage] = []

    async def consumer(m: BusMessage) -> None:
        received.append(m)
        if rng.random() < slow_share:
            await asyncio.sleep(rng.random() * 0.002)

    bus.subscribe(topics, "audit")
    consuming = asyncio.create_task(bus.run(topics, "audit", consumer))
    relays = [make(bus) for _ in range(count)]
    for r in relays:
        r.relay.start()
    try:
        yield relays, received
    finally:
        for r in relays:
            await r.close()
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
