"""The idempotency key reaper: forgets finished keys older than the published retention.

Stripe's rule (ledger-notes 3.1): keys may be removed once they are at least 24 hours old, and a
key reused after that starts a new request. Each round deletes at most ``batches_per_round_max``
batches of ``batch_rows_max`` keys, every batch its own short transaction on the payments pool
(never on the event loop), so the reaper never holds the database's write lock for long. Only
finished keys (``state = 'done'``) are deleted: a request still in flight keeps its key. A new
request under a reaped key is a new payment, because the refid is salted with the key's claim
time (payment_records.make_refid).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("abyssal.payments")

RETENTION_S = 24 * 3_600
BATCH_ROWS_MAX = 1_000
BATCHES_PER_ROUND_MAX = 20
INTERVAL_S = 60.0


class KeyReaper:
    def __init__(
        self,
        store: Any,  # the PaymentStore: reap_keys(before_ns, batch_rows_max) -> int
        blocking: Callable[..., Awaitable[Any]],
        *,
        retention_s: float = RETENTION_S,
        batch_rows_max: int = BATCH_ROWS_MAX,
        batches_per_round_max: int = BATCHES_PER_ROUND_MAX,
        interval_s: float = INTERVAL_S,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        assert retention_s > 0, "a retention of 0 would forget answers a retry still needs"
        assert batch_rows_max > 0 and batches_per_round_max > 0 and interval_s > 0
        self.store = store
        self.blocking = blocking
        self.retention_s = retention_s
        self.batch_rows_max = batch_rows_max
        self.batches_per_round_max = batches_per_round_max
        self.interval_s = interval_s
        self.clock_ns = clock_ns
        self.reaped = 0
        self._task: asyncio.Task[None] | None = None

    async def reap_once(self) -> int:
        """One round: batches until one comes back short or the round's bound is hit."""
        before_ns = self.clock_ns() - int(self.retention_s * 10**9)
        total = 0
        for _ in range(self.batches_per_round_max):
            count: int = await self.blocking(self.store.reap_keys, before_ns, self.batch_rows_max)
            assert 0 <= count <= self.batch_rows_max
            total += count
            if count < self.batch_rows_max:
                break
        self.reaped += total
        if total:
            log.info("idempotency_keys_reaped", count=total)
        return total

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.reap_once()
            except Exception as exc:  # the database may be away: the keys wait for the next round
                log.warning("idempotency_reap_failed", error=repr(exc))
            await asyncio.sleep(self.interval_s)
