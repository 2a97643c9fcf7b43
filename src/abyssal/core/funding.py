"""Withdrawals as pending transfers: hold on request, then post (to the world) or void (release).

Each hold is keyed by the payment's refid and resolves at most once (TigerBeetle's pending
transfers): a second hold under a pending ref, or a post/void of a ref that is not pending, is a
``Rejected`` event that changes nothing. Deposits need no pending state: they go through
``Deposit``. Pure: time arrives in the command.
"""

from __future__ import annotations

from abyssal.core.instruments import UNITS_MAX
from abyssal.core.messages import (
    Deposit,
    Deposited,
    Event,
    Reject,
    Rejected,
    Withdraw,
    WithdrawHeld,
    WithdrawHold,
    Withdrawn,
    WithdrawPost,
    WithdrawPosted,
    WithdrawVoid,
    WithdrawVoided,
)
from abyssal.core.state import EngineState

REF_CHARS_MAX = 64


def on_withdraw_hold(s: EngineState, c: WithdrawHold, events: list[Event]) -> None:
    if not 0 <= c.asset < len(s.instruments.assets):
        events.append(Rejected(c.account, int(Reject.unknown_asset)))
        return
    if c.amount_minor <= 0:
        events.append(Rejected(c.account, int(Reject.invalid_amount)))
        return
    if not 0 < len(c.ref) <= REF_CHARS_MAX:
        events.append(Rejected(c.account, int(Reject.invalid_arguments), "ref"))
        return
    if c.ref in s.withdrawals:
        events.append(Rejected(c.account, int(Reject.duplicate_reference)))
        return
    acct = s.accounts.get(c.account)  # a refusal must not create an empty account
    if acct is None or acct.available(c.asset) < c.amount_minor:
        events.append(Rejected(c.account, int(Reject.insufficient_funds)))
        return
    held_before = acct.bal[c.asset].held
    acct.hold(c.asset, c.amount_minor)
    s.withdrawals[c.ref] = (c.account, c.asset, c.amount_minor)
    assert acct.bal[c.asset].held == held_before + c.amount_minor
    events.append(WithdrawHeld(c.account, c.asset, c.amount_minor, c.ref, c.ts_ns))


def _pending(s: EngineState, account: int, ref: str, events: list[Event]) -> tuple[int, int, int] | None:
    pending = s.withdrawals.get(ref)
    if pending is None or pending[0] != account:
        events.append(Rejected(account, int(Reject.unknown_reference)))
        return None
    return pending


def on_withdraw_post(s: EngineState, c: WithdrawPost, events: list[Event]) -> None:
    pending = _pending(s, c.account, c.ref, events)
    if pending is None:
        return
    account, asset, amount = pending
    acct = s.accounts[account]
    assert acct.bal[asset].held >= amount, "a pending withdrawal beyond the account's held"
    total_before = acct.bal[asset].total
    acct.debit_held(asset, amount)
    s.supply[asset] -= amount
    del s.withdrawals[c.ref]
    assert acct.bal[asset].total == total_before - amount
    events.append(WithdrawPosted(account, asset, amount, c.ref, c.ts_ns))


def on_withdraw_void(s: EngineState, c: WithdrawVoid, events: list[Event]) -> None:
    pending = _pending(s, c.account, c.ref, events)
    if pending is None:
        return
    account, asset, amount = pending
    acct = s.accounts[account]
    total_before = acct.bal[asset].total
    acct.release(asset, amount)
    del s.withdrawals[c.ref]
    assert acct.bal[asset].total == total_before, "a void moves no money out"
    events.append(WithdrawVoided(account, asset, amount, c.ref, c.ts_ns))


# -- immediate movements: deposits (the sandbox faucet) and direct withdrawals ----------------
def on_deposit(s: EngineState, c: Deposit, events: list[Event]) -> None:
    if not 0 <= c.asset < len(s.instruments.assets):
        events.append(Rejected(c.account, int(Reject.unknown_asset)))
        return
    if not 0 < c.amount_minor <= UNITS_MAX - s.supply[c.asset]:  # every sum of it fits 64 bits
        events.append(Rejected(c.account, int(Reject.invalid_amount)))
        return
    s.account(c.account).credit(c.asset, c.amount_minor)
    s.supply[c.asset] += c.amount_minor
    events.append(Deposited(c.account, c.asset, c.amount_minor, c.ref, c.ts_ns))


def on_withdraw(s: EngineState, c: Withdraw, events: list[Event]) -> None:
    if not 0 <= c.asset < len(s.instruments.assets):
        events.append(Rejected(c.account, int(Reject.unknown_asset)))
        return
    acct = s.accounts.get(c.account)  # a refusal must not create an empty account
    if c.amount_minor <= 0:
        events.append(Rejected(c.account, int(Reject.invalid_amount)))
        return
    if acct is None or acct.available(c.asset) < c.amount_minor:
        events.append(Rejected(c.account, int(Reject.insufficient_funds)))
        return
    acct.debit_available(c.asset, c.amount_minor)
    s.supply[c.asset] -= c.amount_minor
    events.append(Withdrawn(c.account, c.asset, c.amount_minor, c.ref, c.ts_ns))
