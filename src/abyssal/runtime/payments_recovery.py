"""Payments recovery and background loops: reconcile after a crash, auto-settle, the key reaper.

``reconcile`` (at start) finishes what a crash left between a committed status and its engine
effect. The sandbox's auto-settle completes withdrawals that waited long enough, and the
reaper forgets idempotency keys older than the retention. A mixin of PaymentService.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from abyssal.ports import PaymentRecord
from abyssal.runtime.idempotency_gate import Answer, KeyGate
from abyssal.runtime.idempotency_reaper import KeyReaper
from abyssal.runtime.payments_group_commit import GroupCommit

if TYPE_CHECKING:
    from abyssal.adapters.sqlite_payments import SqlitePaymentStore

log = structlog.get_logger("abyssal.payments")

SETTLE_POLL_S = 0.2
SETTLE_BATCH_MAX = 100


class Recovery:
    """Reconcile, auto-settle and reaping (a mixin of PaymentService)."""

    store: SqlitePaymentStore
    blocking: Callable[..., Awaitable[Any]]
    clock_ns: Callable[[], int]
    gate: KeyGate
    reaper: KeyReaper
    group: GroupCommit | None
    _settler: asyncio.Task[None] | None

    # provided by PaymentService and Withdrawals
    async def _move(
        self, p: PaymentRecord, to: str, reason: str = "", key_id: int | None = None, refused: str = ""
    ) -> tuple[PaymentRecord, Answer]:
        raise NotImplementedError

    async def _settle_hold(self, p: PaymentRecord) -> None:
        raise NotImplementedError

    async def resolve(
        self, account: int | None, refid: str, to: str, reason: str = ""
    ) -> PaymentRecord | str:
        raise NotImplementedError

    def _init_recovery(self) -> None:
        self._settler = None

    async def reconcile(self) -> int:
        """Finish what a crash left between a committed status and its engine effect."""
        fixed = 0
        for p in await self.blocking(self.store.unsettled):
            key_id = await self.blocking(self.store.key_of_payment, p.id)
            if key_id is not None and key_id in self.gate.keys_in_flight:
                continue  # its request runs in this process now: it finishes the payment itself
            if p.kind == "withdrawal" and p.status in ("completed", "failed", "canceled"):
                await self._settle_hold(p)
            elif p.kind == "withdrawal" and p.status == "requested":
                if await self.blocking(self.store.hold_pending, p.refid):
                    await self._move(p, "held", "recovered")
                else:
                    continue
            elif p.kind == "deposit" and await self.blocking(self.store.ledger_has_deposit, p.refid):
                await self._move(p, "captured", "recovered")
            else:
                continue
            fixed += 1
        if fixed:
            log.info("payments_reconciled", count=fixed)
        return fixed

    def start(self) -> None:
        self._settler = asyncio.create_task(self._settle_forever())
        self.reaper.start()

    async def stop(self) -> None:
        await self.reaper.stop()
        if self._settler is not None:
            self._settler.cancel()
            await asyncio.gather(self._settler, return_exceptions=True)
        if self.gate.work:
            await asyncio.gather(*self.gate.work, return_exceptions=True)
        if self.group is not None:
            await self.group.drain()

    async def _settle_forever(self) -> None:
        while True:
            await asyncio.sleep(SETTLE_POLL_S)
            try:
                _, _, _, auto_ms = await self.blocking(self.store.settings)
                if auto_ms > 0:
                    due = await self.blocking(
                        self.store.held_before, self.clock_ns() - auto_ms * 10**6, SETTLE_BATCH_MAX
                    )
                    for p in due:
                        await self.resolve(p.account, p.refid, "completed", "auto-settle")
            except Exception as exc:  # the loop must outlive a bad row or a busy engine
                log.error("auto_settle_failed", error=repr(exc))
