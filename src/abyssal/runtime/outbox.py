"""The outbox relay: publishes committed outbox rows in order, marks them after the bus acks.

One relay per database (the embedded mode runs exactly one), reading ``WHERE published_ns IS
NULL ORDER BY id``: no watermark, so a row whose transaction committed late is never skipped,
and rows of one aggregate go out in commit order. A crash after publish and before mark sends
the batch again after the restart; consumers dedupe by event id (at-least-once, never "exactly").
Published rows are purged after ``retention_s`` so the table stays small.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from abyssal.ports import OutboxRow, Publisher
from abyssal.runtime import faults

log = structlog.get_logger("abyssal.outbox")

BATCH_ROWS_MAX = 500
POLL_INTERVAL_S = 0.02
RETRY_PAUSE_S_MAX = 5.0
RETENTION_S = 3_600
PURGE_ROWS_MAX = 10_000
PURGE_INTERVAL_S = 60.0


class OutboxRelay:
    def __init__(
        self,
        store: Any,  # an OutboxStore (ports.py) with purge_published
        publisher: Publisher,
        blocking: Callable[..., Awaitable[Any]],
        *,
        batch_rows_max: int = BATCH_ROWS_MAX,
        poll_interval_s: float = POLL_INTERVAL_S,
        retention_s: float = RETENTION_S,
    ) -> None:
        assert batch_rows_max > 0 and poll_interval_s > 0
        self.store = store
        self.publisher = publisher
        self.blocking = blocking
        self.batch_rows_max = batch_rows_max
        self.poll_interval_s = poll_interval_s
        self.retention_s = retention_s
        self.published = 0
        self.wake = asyncio.Event()  # set by writers to skip the poll wait
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> int:
        """Publish one batch; returns how many rows it marked."""
        rows: list[OutboxRow] = await self.blocking(self.store.unpublished, self.batch_rows_max)
        if not rows:
            return 0
        ids = [r.id for r in rows]
        assert ids == sorted(ids), "outbox rows must go out in commit order"
        await self.publisher.publish([r.message for r in rows])
        faults.point("relay.after_publish_before_mark")
        await self.blocking(self.store.mark_published, ids, time.time_ns())
        self.published += len(rows)
        return len(rows)

    async def _run(self) -> None:
        pause = self.poll_interval_s
        last_purge = time.monotonic()
        while True:
            try:
                count = await self.run_once()
                pause = self.poll_interval_s
            except Exception as exc:  # bus down or slow: back off, keep the rows, try again
                log.warning("outbox_publish_failed", error=repr(exc))
                count = 0
                pause = min(pause * 2, RETRY_PAUSE_S_MAX)
            if time.monotonic() - last_purge > PURGE_INTERVAL_S:
                last_purge = time.monotonic()
                cutoff = time.time_ns() - int(self.retention_s * 10**9)
                try:
                    await self.blocking(self.store.purge_published, cutoff, PURGE_ROWS_MAX)
                except Exception as exc:  # cleanup may wait for the next round
                    log.warning("outbox_purge_failed", error=repr(exc))
            if count < self.batch_rows_max:
                self.wake.clear()
                try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with asyncio.timeout(pause):
                        await self.wake.wait()
                except TimeoutError:
                    pass
