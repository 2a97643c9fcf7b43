"""The payments service: idempotent deposit captures and withdrawals, through the engine.

The database is the gate (``PaymentStore.claim``: first write of (tenant, source, key) wins);
the engine is the balance (``Deposit``; ``WithdrawHold`` then ``WithdrawPost`` or
``WithdrawVoid``). The order of every step is chosen so a crash anywhere converges:

- a payment row is opened (status ``pending``/``requested``) before its engine command, and
  its refid is the engine ref, so a resumed request can tell whether the effect happened;
- a resolution (completed, failed, canceled) commits in the database *before* the engine posts
  or voids the hold, and ``reconcile`` finishes whatever a crash left between the two;
- the answer is stored with the transition that produced it; a retry replays those bytes.

The work of a request runs in its own task, so a client that disconnects does not cancel a half
done payment: its retry waits for (or replays) the same result.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog

from abyssal.adapters.sqlite_payments import SqlitePaymentStore
from abyssal.core.instruments import Instruments
from abyssal.core.messages import (
    Command,
    Deposit,
    Event,
    Reject,
    Rejected,
    WithdrawHold,
    WithdrawPost,
    WithdrawVoid,
)
from abyssal.ports import IdempotencyClaim, LimitWindow, NewPayment, PaymentRecord
from abyssal.runtime import calendar, faults
from abyssal.runtime import payment_records as records

log = structlog.get_logger("abyssal.payments")

T = TypeVar("T")
IN_FLIGHT_WAIT_S = 2.0  # a concurrent twin waits this long for the first request, then gets 409
STALE_LOCK_NS = 60 * 10**9  # an in-flight key older than this (another process) is taken over
SETTLE_POLL_S = 0.2
SETTLE_BATCH_MAX = 100

# the withdrawal state machine: which status may follow which (everything else is refused)
WITHDRAWAL_NEXT: dict[str, tuple[str, ...]] = {
    "requested": ("held", "failed", "canceled"),
    "held": ("sent", "failed", "canceled"),
    "sent": ("completed", "failed"),
}
DEPOSIT_NEXT: dict[str, tuple[str, ...]] = {"pending": ("captured", "failed")}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer under an idempotency key; ``replayed`` when it came from the store."""

    status: int
    body: bytes
    replayed: bool = False


class EngineRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Execute = Callable[[Command], Awaitable[list[Event]]]
Blocking = Callable[..., Awaitable[Any]]


def _rejection(events: list[Event]) -> Rejected | None:
    return next((e for e in events if isinstance(e, Rejected)), None)


class PaymentService:
    def __init__(
        self,
        store: SqlitePaymentStore,
        instruments: Instruments,
        execute: Execute,
        blocking: Blocking,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        in_flight_wait_s: float = IN_FLIGHT_WAIT_S,
    ) -> None:
        self.store = store
        self.ins = instruments
        self.execute = execute
        self.blocking = blocking  # runs a blocking store call off the event loop
        self.clock_ns = clock_ns
        self.in_flight_wait_s = in_flight_wait_s
        self.owner = secrets.token_hex(8)  # this process instance: other owners' in-flight keys are orphans
        self._in_flight: dict[tuple[int, str, str], asyncio.Event] = {}
        self._work: set[asyncio.Task[Answer]] = set()
        self._settler: asyncio.Task[None] | None = None

    # -- the idempotent envelope -------------------------------------------------------------
    async def _idempotent(
        self,
        tenant: int,
        source: str,
        key: str,
        fp: str,
        work: Callable[[IdempotencyClaim], Awaitable[Answer]],
    ) -> Answer:
        gate = (tenant, source, key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.in_flight_wait_s
        while True:
            leader = self._in_flight.get(gate)
            if leader is not None:  # a twin in this process is running it: wait, then replay
                try:
                    async with asyncio.timeout_at(deadline):
                        await leader.wait()
                except TimeoutError:
                    break
                continue
            # no await between the check and this line: exactly one local leader per key
            done = self._in_flight[gate] = asyncio.Event()
            try:
                claim = await self.blocking(
                    self.store.claim, tenant, source, key, fp, self.owner, self.clock_ns(), STALE_LOCK_NS
                )
            except BaseException:
                self._in_flight.pop(gate, None)
                done.set()
                raise
            if claim.outcome in ("mismatch", "replay", "in_flight"):
                self._in_flight.pop(gate, None)
                done.set()
                if claim.outcome == "mismatch":
                    return self._refusal("idempotency_key_mismatch")
                if claim.outcome == "replay":
                    return Answer(claim.response_code, claim.response_body, True)
                break  # in flight elsewhere (another process, or a lock not yet stale)
            task = asyncio.create_task(self._guarded(work, claim, gate, done))
            self._work.add(task)
            task.add_done_callback(self._work.discard)
            return await asyncio.shield(task)  # a disconnect cancels the wait, never the work
        return self._refusal("idempotency_key_in_use")

    async def _guarded(
        self,
        work: Callable[[IdempotencyClaim], Awaitable[Answer]],
        claim: IdempotencyClaim,
        gate: tuple[int, str, str],
        done: asyncio.Event,
    ) -> Answer:
        try:
            return await work(claim)
        except EngineRefused as refused:  # busy or unavailable: not stored, a retry resumes it
            await self.blocking(self.store.unlock_key, claim.key_id)
            return self._refusal(refused.code)
        except BaseException:  # a fault mid-way: the next retry resumes from what was committed
            await asyncio.shield(self.blocking(self.store.unlock_key, claim.key_id))
            raise
        finally:
            self._in_flight.pop(gate, None)
            done.set()

    def _refusal(self, code: str) -> Answer:
        return Answer(records.REFUSALS[code][0], records.refusal_body(code))

    async def _run(self, command: Command) -> list[Event]:
        from abyssal.runtime.sequencer import Busy, Unavailable

        try:
            return await self.execute(command)
        except Busy:
            raise EngineRefused("busy") from None
        except Unavailable:
            raise EngineRefused("unavailable") from None

    async def _finish_refused(self, key_id: int, code: str) -> Answer:
        answer = self._refusal(code)
        await self.blocking(self.store.finish_key, key_id, answer.status, answer.body, self.clock_ns())
        return answer

    async def _move(
        self, p: PaymentRecord, to: str, reason: str = "", key_id: int | None = None, refusal: str = ""
    ) -> tuple[PaymentRecord, Answer]:
        """One guarded transition; the answer stored with it (when ``key_id``) is rendered first."""
        now = self.clock_ns()
        nxt = records.after(p, to, now, reason)
        if refusal:
            answer = Answer(records.REFUSALS[refusal][0], records.refusal_body(refusal, self.ins, nxt))
        else:
            answer = Answer(201, records.success_body(self.ins, nxt))
        finish = None if key_id is None else (key_id, answer.status, answer.body)
        event = records.payment_event(self.ins, nxt)
        moved = await self.blocking(self.store.transition, p.id, p.status, to, reason, event, now, finish)
        if moved is None:  # someone else moved it first (reconcile): answer with what it is now
            current = await self.blocking(self.store.payment, p.id)
            assert current is not None
            return current, await self._answer_for(current, key_id)
        assert moved.version == p.version + 1 and moved.status == to
        return moved, answer

    async def _answer_for(self, p: PaymentRecord, key_id: int | None) -> Answer:
        if p.status in ("failed", "canceled"):
            code = p.error if p.error in records.REFUSALS else "insufficient_funds"
            answer = Answer(records.REFUSALS[code][0], records.refusal_body(code, self.ins, p))
        else:
            answer = Answer(201, records.success_body(self.ins, p))
        if key_id is not None:
            await self.blocking(self.store.finish_key, key_id, answer.status, answer.body, self.clock_ns())
        return answer

    def _opening(self, new: NewPayment, now: int) -> PaymentRecord:
        return PaymentRecord(
            0,
            new.refid,
            new.kind,
            new.account,
            new.asset,
            new.amount_minor,
            0,
            new.status,
            1,
            new.method,
            new.withdraw_key,
            new.address,
            new.reference,
            "",
            new.trace_id,
            now,
            now,
        )

    # -- deposits ----------------------------------------------------------------------------
    async def capture_deposit(
        self,
        tenant: int,
        source: str,
        key: str,
        asset: int,
        amount_minor: int,
        reference: str = "",
        trace_id: str = "",
    ) -> Answer:
        assert amount_minor > 0 and 0 <= asset < len(self.ins.assets)
        fp = records.fingerprint(
            "deposit", {"asset": asset, "amount_minor": amount_minor, "reference": reference}
        )

        async def work(claim: IdempotencyClaim) -> Answer:
            p = await self._existing(claim)
            if p is None:
                refid = records.make_refid(tenant, source, key)
                new = NewPayment(
                    refid,
                    "deposit",
                    tenant,
                    asset,
                    amount_minor,
                    "pending",
                    reference=reference,
                    method=self.deposit_method(asset),
                    trace_id=trace_id,
                )
                now = self.clock_ns()
                opened = await self.blocking(
                    self.store.open_payment,
                    claim.key_id,
                    new,
                    None,
                    records.payment_event(self.ins, self._opening(new, now)),
                    now,
                )
                assert isinstance(opened, PaymentRecord)
                p = opened
            elif p.status != "pending":
                return await self._answer_for(p, claim.key_id)
            elif await self.blocking(self.store.ledger_has_deposit, p.refid):  # resumed after the effect
                return (await self._move(p, "captured", "", claim.key_id))[1]
            await faults.apoint("payments.before_engine")
            events = await self._run(Deposit(self.clock_ns(), p.account, p.asset, p.amount_minor, p.refid))
            rejected = _rejection(events)
            if rejected is not None:
                code = "unknown_asset" if rejected.reason == Reject.unknown_asset else "invalid_amount"
                return (await self._move(p, "failed", code, claim.key_id, refusal=code))[1]
            await faults.apoint("payments.after_engine")
            return (await self._move(p, "captured", "", claim.key_id))[1]

        return await self._idempotent(tenant, source, key, fp, work)

    async def _existing(self, claim: IdempotencyClaim) -> PaymentRecord | None:
        if claim.payment_id is None:
            return None
        p = await self.blocking(self.store.payment, claim.payment_id)
        assert p is not None, "an idempotency key links a payment that does not exist"
        return p  # type: ignore[no-any-return]

    def deposit_method(self, asset: int) -> str:
        return records.method_of(self.ins.assets[asset])

    # -- withdrawals -------------------------------------------------------------------------
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

        async def work(claim: IdempotencyClaim) -> Answer:
            p = await self._existing(claim)
            if p is None:
                opened = await self._open_withdrawal(
                    claim, tenant, source, key, asset, amount_minor, withdraw_key, address, trace_id
                )
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
                return (await self._move(p, "failed", code, claim.key_id, refusal=code))[1]
            await faults.apoint("payments.after_engine")
            return (await self._move(p, "held", "", claim.key_id))[1]

        return await self._idempotent(tenant, source, key, fp, work)

    async def _open_withdrawal(
        self,
        claim: IdempotencyClaim,
        tenant: int,
        source: str,
        key: str,
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
            return self._refusal("calendar_missing")
        refid = records.make_refid(tenant, source, key)
        new = NewPayment(
            refid,
            "withdrawal",
            tenant,
            asset,
            amount_minor,
            "requested",
            method,
            withdraw_key,
            key_address,
            trace_id=trace_id,
        )
        opened = await self.blocking(
            self.store.open_payment,
            claim.key_id,
            new,
            limit,
            records.payment_event(self.ins, self._opening(new, now)),
            now,
        )
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

    # -- recovery and the sandbox's auto-settle ----------------------------------------------
    async def reconcile(self) -> int:
        """Finish what a crash left between a committed status and its engine effect."""
        fixed = 0
        for p in await self.blocking(self.store.unsettled):
            if any(gate for gate in self._in_flight if records.make_refid(*gate) == p.refid):
                continue
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

    async def stop(self) -> None:
        if self._settler is not None:
            self._settler.cancel()
            await asyncio.gather(self._settler, return_exceptions=True)
        if self._work:
            await asyncio.gather(*self._work, return_exceptions=True)

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
