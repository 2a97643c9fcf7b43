"""The payments service: idempotent deposit captures and withdrawals, through the engine.

The database is the gate (``PaymentStore.claim``: first write of (tenant, source, key) wins);
the engine is the balance (``Deposit``; ``WithdrawHold`` then ``WithdrawPost`` or
``WithdrawVoid``). The order of every step is chosen so a crash anywhere converges:

- a payment row is opened (status ``pending``/``requested``) before its engine command, and
  its refid is the engine ref, so a resumed request can tell whether the effect happened;
- a resolution (completed, failed, canceled) commits in the database *before* the engine posts
  or voids the hold, and ``reconcile`` finishes whatever a crash left between the two;
- the answer is stored with the transition that produced it; a retry replays those bytes.

A deposit capture is two commits of its own (claim + open; capture + answer + outbox) around the
engine batch it shares with trading. The envelope is idempotency_gate.py, withdrawals are
payments_withdrawals.py, recovery and the background loops payments_recovery.py.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from abyssal.core.instruments import Instruments
from abyssal.core.messages import Command, Deposit, Event, Reject, Rejected
from abyssal.ports import IdempotencyClaim, NewPayment, PaymentRecord
from abyssal.runtime import faults
from abyssal.runtime import payment_records as records
from abyssal.runtime.idempotency_gate import (
    IN_FLIGHT_WAIT_S,
    STALE_LOCK_NS,
    Answer,
    EngineRefused,
    KeyGate,
    refusal,
)
from abyssal.runtime.idempotency_reaper import RETENTION_S, KeyReaper
from abyssal.runtime.payments_group_commit import GroupCommit
from abyssal.runtime.payments_recovery import Recovery
from abyssal.runtime.payments_withdrawals import Withdrawals

if TYPE_CHECKING:
    from abyssal.adapters.sqlite_payments import SqlitePaymentStore

__all__ = ["IN_FLIGHT_WAIT_S", "STALE_LOCK_NS", "Answer", "EngineRefused", "PaymentService"]

Execute = Callable[[Command], Awaitable[list[Event]]]
Blocking = Callable[..., Awaitable[Any]]


def rejection(events: list[Event]) -> Rejected | None:
    return next((e for e in events if isinstance(e, Rejected)), None)


class PaymentService(Withdrawals, Recovery):
    def __init__(
        self,
        store: SqlitePaymentStore,
        instruments: Instruments,
        execute: Execute,
        blocking: Blocking,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        in_flight_wait_s: float = IN_FLIGHT_WAIT_S,
        key_retention_s: float = RETENTION_S,
    ) -> None:
        self.store = store
        self.ins = instruments
        self.execute = execute
        self.blocking = blocking  # runs a blocking store call off the event loop
        self.clock_ns = clock_ns
        self.owner = secrets.token_hex(8)  # this process instance: other owners' in-flight keys are orphans
        self.gate = KeyGate(store, blocking, in_flight_wait_s)
        self.reaper = KeyReaper(store, blocking, retention_s=key_retention_s, clock_ns=clock_ns)
        # SQLite: the request path's writes share commits (payments_group_commit.py)
        self.group = GroupCommit(store.store, blocking) if store.one_writer else None
        self._init_recovery()

    @property
    def in_flight_wait_s(self) -> float:
        return self.gate.in_flight_wait_s

    @in_flight_wait_s.setter
    def in_flight_wait_s(self, seconds: float) -> None:
        self.gate.in_flight_wait_s = seconds

    # -- helpers shared by deposits, withdrawals and recovery --------------------------------
    def _claim(
        self, tenant: int, source: str, key: str, fp: str, now_ns: int
    ) -> Callable[[], Awaitable[IdempotencyClaim]]:
        async def claim() -> IdempotencyClaim:
            got: IdempotencyClaim = await self.blocking(
                self.store.claim, tenant, source, key, fp, self.owner, now_ns, STALE_LOCK_NS
            )
            return got

        return claim

    async def _refid(self, claim: IdempotencyClaim, tenant: int, source: str, key: str, now_ns: int) -> str:
        """The refid of the payment a key names: salted with the key's claim time (see reaper)."""
        created_ns = (
            now_ns if claim.outcome == "new" else await self.blocking(self.store.key_created_ns, claim.key_id)
        )
        return records.make_refid(tenant, source, key, created_ns)

    async def _run(self, command: Command) -> list[Event]:
        from abyssal.runtime.sequencer import Busy, Unavailable

        try:
            return await self.execute(command)
        except Busy:
            raise EngineRefused("busy") from None
        except Unavailable:
            raise EngineRefused("unavailable") from None

    async def _finish_refused(self, key_id: int, code: str) -> Answer:
        answer = refusal(code)
        await self.blocking(self.store.finish_key, key_id, answer.status, answer.body, self.clock_ns())
        return answer

    async def _move(
        self, p: PaymentRecord, to: str, reason: str = "", key_id: int | None = None, refused: str = ""
    ) -> tuple[PaymentRecord, Answer]:
        """One guarded transition; the answer stored with it (when ``key_id``) is rendered first."""
        now = self.clock_ns()
        nxt = records.after(p, to, now, reason)
        if refused:
            answer = Answer(records.REFUSALS[refused][0], records.refusal_body(refused, self.ins, nxt))
        else:
            answer = Answer(201, records.success_body(self.ins, nxt))
        finish = None if key_id is None else (key_id, answer.status, answer.body)
        event = records.payment_event(self.ins, nxt)
        moved: PaymentRecord | None
        if self.group is None:
            moved = await self.blocking(self.store.transition, p.id, p.status, to, reason, event, now, finish)
        else:
            moved = await self.group.run(
                lambda c: self.store.transition_in(c, p.id, p.status, to, reason, event, now, finish)
            )
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

    async def _existing(self, claim: IdempotencyClaim) -> PaymentRecord | None:
        if claim.payment_id is None:
            return None
        p = await self.blocking(self.store.payment, claim.payment_id)
        assert p is not None, "an idempotency key links a payment that does not exist"
        return p  # type: ignore[no-any-return]

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
        method = self.deposit_method(asset)

        def new_at(refid: str) -> NewPayment:
            return NewPayment(refid, "deposit", tenant, asset, amount_minor, "pending", method,
                              reference=reference, trace_id=trace_id)  # fmt: skip

        claimed_at = self.clock_ns()
        opening = new_at(records.make_refid(tenant, source, key, claimed_at))
        opened_here: list[PaymentRecord] = []

        async def claim_and_open() -> IdempotencyClaim:
            """The first request claims its key and opens its payment in one transaction."""
            event = records.payment_event(self.ins, records.opened(opening, claimed_at))
            args = (tenant, source, key, fp, self.owner, claimed_at, STALE_LOCK_NS, opening, event)
            if self.group is None:
                claim, opened = await self.blocking(self.store.claim_and_open, *args)
            else:  # a replay needs only a read; a first request joins the next group commit
                seen = await self.blocking(self.store.existing_key, tenant, source, key, fp)
                got = (seen, None) if seen is not None else await self.group.run(
                    lambda c: self.store.claim_and_open_in(c, *args)
                )  # fmt: skip
                assert got is not None, "one writer: a key cannot vanish inside its transaction"
                claim, opened = got
            if opened is not None:
                opened_here.append(opened)
            return claim  # type: ignore[no-any-return]

        async def work(claim: IdempotencyClaim) -> Answer:
            p = opened_here[0] if opened_here else await self._existing(claim)
            if p is None:  # a key a crash left claimed without its payment (an older version)
                now = self.clock_ns()
                new = new_at(await self._refid(claim, tenant, source, key, now))
                event = records.payment_event(self.ins, records.opened(new, now))
                opened = await self.blocking(self.store.open_payment, claim.key_id, new, None, event, now)
                assert isinstance(opened, PaymentRecord)
                p = opened
            elif p.status != "pending":
                return await self._answer_for(p, claim.key_id)
            elif not opened_here and await self.blocking(self.store.ledger_has_deposit, p.refid):
                return (await self._move(p, "captured", "", claim.key_id))[1]  # resumed after the effect
            await faults.apoint("payments.before_engine")
            events = await self._run(Deposit(self.clock_ns(), p.account, p.asset, p.amount_minor, p.refid))
            rejected = rejection(events)
            if rejected is not None:
                code = "unknown_asset" if rejected.reason == Reject.unknown_asset else "invalid_amount"
                return (await self._move(p, "failed", code, claim.key_id, refused=code))[1]
            await faults.apoint("payments.after_engine")
            return (await self._move(p, "captured", "", claim.key_id))[1]

        return await self.gate.run((tenant, source, key), claim_and_open, work)

    def deposit_method(self, asset: int) -> str:
        return records.method_of(self.ins.assets[asset])
