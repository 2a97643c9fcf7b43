"""The outbox relay: publishes committed outbox rows in order, marks them after the bus acks.

Two sources use it, each with its own relay on the same bus: the ``outbox`` table (payment
transitions, below) and the event log (the engine's order, trade and ledger events: its claims,
adapters/event_log_outbox.py, tail ``events`` behind a durable cursor; nothing to purge).

The store's claims (adapters/outbox_store.py) decide who sends what. On SQLite one relay per
database reads ``WHERE published_ns IS NULL ORDER BY id``: no watermark, so a row whose
transaction committed late is never skipped, and rows of one aggregate go out in commit order.
On PostgreSQL any number of relays (one per process) compete: each batch is a transaction that
claims aggregate heads ``FOR UPDATE SKIP LOCKED``, so no row goes out twice while relays live,
and two relays never interleave one aggregate. A crash after publish and before mark sends the
batch again (at least once, never "exactly"); consumers dedupe by event id. Published rows are
purged after ``retention_s`` so the table stays small.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from abyssal.adapters.outbox_store import OutboxClaims, SerialClaims
from abyssal.ports import OutboxRow, Publisher
from abyssal.runtime import faults

log = structlog.get_logger("abyssal.outbox")

BATCH_ROWS_MAX = 500
POLL_INTERVAL_S = 0.02
# Woken by every committed batch, the relay still runs at most once per gap: each run's mark is a
# write transaction of its own, and one per batch would double the commits the sequencer competes with.
RUN_GAP_S = 0.01
RETRY_PAUSE_S_MAX = 5.0
RETENTION_S = 3_600
PURGE_ROWS_MAX = 10_000
PURGE_INTERVAL_S = 60.0


class OutboxRelay:
    def __init__(
        self,
        store: Any,  # an OutboxStore (ports.py) with purge_published, or an EventLogOutbox
        publisher: Publisher,
        blocking: Callable[..., Awaitable[Any]],
        *,
        batch_rows_max: int = BATCH_ROWS_MAX,
        poll_interval_s: float = POLL_INTERVAL_S,
        idle_poll_max_s: float | None = None,
        retention_s: float = RETENTION_S,
    ) -> None:
        """``idle_poll_max_s``: for a relay that every writer wakes (the embedded exchange's payments
        run in its own process), the poll after an empty claim doubles up to this, so an idle
        exchange does not query 50 times a second; None keeps the poll at ``poll_interval_s``
        (writers in other processes cannot wake it)."""
        assert batch_rows_max > 0 and poll_interval_s > 0
        assert idle_poll_max_s is None or idle_poll_max_s >= poll_interval_s
        self.store = store
        self.publisher = publisher
        self.blocking = blocking
        self.batch_rows_max = batch_rows_max
        self.poll_interval_s = poll_interval_s
        self.idle_poll_max_s = idle_poll_max_s
        self.retention_s = retention_s
        self.published = 0
        claims = getattr(store, "outbox_claims", None)  # an OutboxTable chooses; else serial
        self.claims: OutboxClaims = claims() if callable(claims) else SerialClaims(store)
        # claims that can tell on the event loop that there is nothing to claim (the event log while
        # nobody reads engine topics) spare each poll its trip to a worker thread
        self._idle: Callable[[], bool] | None = getattr(self.claims, "idle", None)
        self.wake = asyncio.Event()  # set by writers to skip the poll wait
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.blocking(self.claims.close)

    async def run_once(self) -> int:
        """Publish one batch; returns how many rows it marked."""
        if self._idle is not None and self._idle():
            return 0
        rows: list[OutboxRow] = await self.blocking(self.claims.claim, self.batch_rows_max)
        if not rows:
            return 0
        ids = [r.id for r in rows]
        assert ids == sorted(ids), "outbox rows must go out in commit order"
        assert len(rows) <= self.batch_rows_max
        try:
            await self.publisher.publish([r.message for r in rows])
            faults.point("relay.after_publish_before_mark")
            await self.blocking(self.claims.settle, ids, time.time_ns())
        except BaseException:  # not acknowledged, or not marked: the rows stay unpublished
            await asyncio.shield(self.blocking(self.claims.release))
            raise
        self.published += len(rows)
        return len(rows)

    async def _run(self) -> None:
        pause = self.poll_interval_s
        last_purge = time.monotonic()
        while True:
            started = time.monotonic()
            self.wake.clear()  # before the claim: a write committed while it runs wakes the wait below
            try:
                count = await self.run_once()
                if count or self.idle_poll_max_s is None:
                    pause = self.poll_interval_s
                else:  # nothing, and nobody woke us meanwhile: back off while idle
                    pause = min(max(pause, self.poll_interval_s) * 2, self.idle_poll_max_s)
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
                try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with asyncio.timeout(pause):
                        await self.wake.wait()
                except TimeoutError:
                    pass
                gap = RUN_GAP_S - (time.monotonic() - started)
                if gap > 0:
                    await asyncio.sleep(gap)
