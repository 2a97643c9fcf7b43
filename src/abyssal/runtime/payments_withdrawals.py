"""Withdrawals: request (claim, check key and daily limit, open, hold in the engine) and resolve.

A withdrawal is a hold in the engine (``WithdrawHold``) that a resolution posts (``completed``)
or voids (``failed``, ``canceled``). The resolution commits in the database first, then the
engine settles the hold, at most once; ``Recovery.reconcile`` finishes a crash in between.
A mixin of PaymentService (payments.py), which provides the store, engine and helpers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from abyssal.core.messages import Command, Event, Reject, Rejected, WithdrawHold, WithdrawPost, WithdrawVoid
from abyssal.ports import IdempotencyClaim, LimitWindow, NewPayment, PaymentRecord
from abyssal.runtime import calendar, faults
from abyssal.runtime import payment_records as records
from abyssal.runtime.idempotency_gate import Answer, KeyGate, refusal

if TYPE_CHECKING:
    from abyssal.adapters.sqlite_payments import SqlitePaymentStore
    from abyssal.core.instruments import Instruments

log = structlog.get_logger("abyssal.payments")

# the withdrawal state machine: which status may follow which (everything else is refused)
WITHDRAWAL_NEXT: dict[str, tuple[str, ...]] = {
    "requested": ("held", "failed", "canceled"),
    "held": ("sent", "failed", "canceled"),
    "sent": ("completed", "failed"),
}


def _rejection(events: list[Event]) -> Rejected | None:
    return next((e for e in events if isinstance(e, Rejected)), None)


class Withdrawals:
    """Withdrawal requests and resolutions (a mixin of PaymentService)."""

    store: SqlitePaymentStore
    ins: Instruments
    blocking: Callable[..., Awaitable[Any]]
    clock_ns: Callable[[], int]
    gate: KeyGate

    # provided by PaymentService
    def _claim(
        self, tenant: int, source: str, key: str, fp: str, now_ns: int
    ) -> Callable[[], Awaitable[IdempotencyClaim]]:
        raise NotImplementedError

    async def _refid(self, claim: IdempotencyClaim, tenant: int, source: str, key: str, now_ns: int) -> str:
        raise NotImplementedError

    async def _run(self, command: Command) -> list[Event]:
        raise NotImplementedError

    async def _existing(self, claim: IdempotencyClaim) -> PaymentRecord | None:
        raise NotImplementedError

    async def _finish_refused(self, key_id: int, code: str) -> Answer:
        raise NotImplementedError

    async def _answer_for(self, p: PaymentRecord, key_id: int | None) -> Answer:
        raise NotImplementedError

    async def _move(
        self, p: PaymentRecord, to: str, reason: str = "", key_id: int | None = None, refused: str = ""
    ) -> tuple[PaymentRecord, Answer]:
        raise NotImplementedError

    # -- requests ----------------------------------------------------------------------------
    async def request_withdrawal(
        self,
        tenant: int,
        source: str,
        key: str,
        asset: int,
        amount_minor: int,
        withdraw_key: str,
        address: str = "",
        trace_id: str = "",
    ) -> Answer:
        assert amount_minor > 0 and 0 <= asset < len(self.ins.assets)
        fp = records.fingerprint(
            "withdrawal",
            {"asset": asset, "amount_minor": amount_minor, "key": withdraw_key, "address": address},
        )
        claimed_at = self.clock_ns()

        async def work(claim: IdempotencyClaim) -> Answer:
            p = await self._existing(claim)
            if p is None:
                refid = await self._refid(claim, tenant, source, key, claimed_at)
                opened = await self._open_withdrawal(claim, refid, tenant, asset, amount_minor, withdraw_key,
                                                     address, trace_id)  # fmt: skip
                if isinstance(opened, Answer):
                    return opened
                p = opened
            elif p.status != "requested":
                return await self._answer_for(p, claim.key_id)
            elif await self.blocking(self.store.hold_pending, p.refid):
                return (await self._move(p, "held", "", claim.key_id))[1]
            await faults.apoint("payments.before_engine")
            events = await self._run(
                WithdrawHold(self.clock_ns(), p.account, p.asset, p.amount_minor, p.refid)
            )
            rejected = _rejection(events)
            if rejected is not None and rejected.reason != Reject.duplicate_reference:
                code = (
                    "insufficient_funds" if rejected.reason == Reject.insufficient_funds else "invalid_amount"
                )
                return (await self._move(p, "failed", code, claim.key_id, refused=code))[1]
            await faults.apoint("payments.after_engine")
            return (await self._move(p, "held", "", claim.key_id))[1]

        return await self.gate.run(
            (tenant, source, key), self._claim(tenant, source, key, fp, claimed_at), work
        )

    async def _open_withdrawal(
        self,
        claim: IdempotencyClaim,
        refid: str,
        tenant: int,
        asset: int,
        amount_minor: int,
        withdraw_key: str,
        address: str,
        trace_id: str,
    ) -> PaymentRecord | Answer:
        keys = await self.blocking(self.store.withdraw_keys, tenant)
        found = next(((m, a) for s, n, m, a in keys if s == asset and n == withdraw_key), None)
        if found is None:
            return await self._finish_refused(claim.key_id, "unknown_withdraw_key")
        method, key_address = found
        if address and address != key_address:
            return await self._finish_refused(claim.key_id, "invalid_address")
        now = self.clock_ns()
        try:
            limit = await self.blocking(self.limit_window, tenant, asset, now)
        except calendar.CalendarMissing as missing:  # an operator's gap, not the client's: not stored
            log.error("calendar_missing", reason=str(missing))
            await self.blocking(self.store.release_key, claim.key_id)
            return refusal("calendar_missing")
        new = NewPayment(refid, "withdrawal", tenant, asset, amount_minor, "requested", method, withdraw_key,
                         key_address, trace_id=trace_id)  # fmt: skip
        event = records.payment_event(self.ins, records.opened(new, now))
        opened = await self.blocking(self.store.open_payment, claim.key_id, new, limit, event, now)
        if isinstance(opened, str):
            return await self._finish_refused(claim.key_id, opened)
        return opened  # type: ignore[no-any-return]

    def limit_window(self, account: int, asset: int, now_ns: int) -> LimitWindow | None:
        """The account's daily limit and the business-day window ``now_ns`` is in (blocking)."""
        limit = self.store.daily_limit(account, asset)
        if limit is None:
            return None
        zone_name, cutoff_minute, cal, _ = self.store.settings()
        zone = ZoneInfo(zone_name)
        first, last = calendar.days_needed(now_ns, zone)
        days = self.store.calendar_days(cal, first, last)
        start, end = calendar.window(now_ns, zone, cutoff_minute, days, cal)
        return LimitWindow(start, end, limit)

    # -- resolutions -------------------------------------------------------------------------
    async def resolve(
        self, account: int | None, refid: str, to: str, reason: str = ""
    ) -> PaymentRecord | str:
        """Move a withdrawal forward (admin, API cancel, auto-settle); returns it or a refusal code."""
        if account is not None:
            p = await self.blocking(self.store.payment_by_refid, account, refid)
        else:
            p = await self.blocking(self.store.payment_any, refid)
        if p is None or p.kind != "withdrawal":
            return "not_found"
        if to == "completed" and p.status == "held":  # the sandbox may skip a visible "sent"
            p, _ = await self._move(p, "sent", reason)
        if to not in WITHDRAWAL_NEXT.get(p.status, ()) or to == "held":
            return "invalid_transition"
        p, _ = await self._move(p, to, reason or to)
        if p.status != to:
            return "invalid_transition"
        if to in ("completed", "failed", "canceled"):
            await self._settle_hold(p)
        return p

    async def _settle_hold(self, p: PaymentRecord) -> None:
        """Post or void the engine hold of a resolved withdrawal (after the status committed)."""
        await faults.apoint("payments.before_settle_hold")
        cmd = WithdrawPost if p.status == "completed" else WithdrawVoid
        events = await self._run(cmd(self.clock_ns(), p.account, p.refid))
        rejected = _rejection(events)
        if rejected is not None:  # already resolved (a reconcile got there first): at most once
            log.info("withdrawal_hold_already_resolved", ref=p.refid, reason=p.status)
