"""Outbox relays on PostgreSQL as separate processes would run them (the competing-relay tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from abyssal.adapters.postgres import PostgresStore
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
