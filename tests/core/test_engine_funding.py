"""Withdrawals as pending transfers in the engine: hold, then post or void, each at most once.

Scenario tables (command -> expected event and balances), then hypothesis for conservation,
replay determinism and snapshot round trips with pending withdrawals (ledger-notes 6.1 L1, L5-L7, L10).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st
from tests.core.enginekit import INSTRUMENTS, USD, XBT, accepted, lots, px, usd, xbt

from abyssal.core.accounts import WORLD_ACCOUNT
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    Command,
    Deposit,
    Event,
    PlaceOrder,
    Reject,
    Rejected,
    Side,
    WithdrawHeld,
    WithdrawHold,
    WithdrawPost,
    WithdrawPosted,
    WithdrawVoid,
    WithdrawVoided,
    command_decoder,
    command_encoder,
    events_encoder,
)
from abyssal.core.postings import is_balanced, lines_for
from abyssal.core.snapshot import restore, snapshot, state_hash

A, B = 1, 2


def funded(amount_minor: int = usd("100")) -> Engine:
    e = Engine(INSTRUMENTS)
    e.apply(Deposit(1, A, USD.index, amount_minor, "d1"))
    return e


def balance(e: Engine, account: int = A, asset: int = USD.index) -> tuple[int, int]:
    acct = e.s.accounts.get(account)
    return (0, 0) if acct is None else (acct.total[asset], acct.held[asset])


@dataclass(frozen=True)
class Step:
    command: Command
    event: type[Event]
    reason: Reject | None
    total_held: tuple[int, int]  # account A's USD after the step


SCENARIOS: dict[str, list[Step]] = {
    "hold then post": [
        Step(WithdrawHold(2, A, USD.index, usd("30"), "w1"), WithdrawHeld, None, (usd("100"), usd("30"))),
        Step(WithdrawPost(3, A, "w1"), WithdrawPosted, None, (usd("70"), 0)),
        Step(WithdrawPost(4, A, "w1"), Rejected, Reject.unknown_reference, (usd("70"), 0)),  # at most once
        Step(WithdrawVoid(5, A, "w1"), Rejected, Reject.unknown_reference, (usd("70"), 0)),
    ],
    "hold then void": [
        Step(WithdrawHold(2, A, USD.index, usd("30"), "w1"), WithdrawHeld, None, (usd("100"), usd("30"))),
        Step(WithdrawVoid(3, A, "w1"), WithdrawVoided, None, (usd("100"), 0)),
        Step(WithdrawPost(4, A, "w1"), Rejected, Reject.unknown_reference, (usd("100"), 0)),
    ],
    "held funds cannot be held twice": [
        Step(WithdrawHold(2, A, USD.index, usd("80"), "w1"), WithdrawHeld, None, (usd("100"), usd("80"))),
        Step(
            WithdrawHold(3, A, USD.index, usd("30"), "w2"),
            Rejected,
            Reject.insufficient_funds,
            (usd("100"), usd("80")),
        ),
        Step(WithdrawHold(4, A, USD.index, usd("20"), "w2"), WithdrawHeld, None, (usd("100"), usd("100"))),
    ],
    "duplicate pending reference": [
        Step(WithdrawHold(2, A, USD.index, usd("10"), "w1"), WithdrawHeld, None, (usd("100"), usd("10"))),
        Step(
            WithdrawHold(3, A, USD.index, usd("10"), "w1"),
            Rejected,
            Reject.duplicate_reference,
            (usd("100"), usd("10")),
        ),
    ],
    "refusals change nothing": [
        Step(WithdrawHold(2, A, USD.index, 0, "w1"), Rejected, Reject.invalid_amount, (usd("100"), 0)),
        Step(WithdrawHold(3, A, 99, 1, "w1"), Rejected, Reject.unknown_asset, (usd("100"), 0)),
        Step(
            WithdrawHold(4, A, USD.index, usd("100") + 1, "w1"),
            Rejected,
            Reject.insufficient_funds,
            (usd("100"), 0),
        ),
        Step(WithdrawHold(5, A, USD.index, 1, ""), Rejected, Reject.invalid_arguments, (usd("100"), 0)),
    ],
    "another account cannot resolve the hold": [
        Step(WithdrawHold(2, A, USD.index, usd("10"), "w1"), WithdrawHeld, None, (usd("100"), usd("10"))),
        Step(WithdrawPost(3, B, "w1"), Rejected, Reject.unknown_reference, (usd("100"), usd("10"))),
        Step(WithdrawVoid(4, A, "w1"), WithdrawVoided, None, (usd("100"), 0)),
    ],
}


def test_funding_scenarios() -> None:
    for name, steps in SCENARIOS.items():
        e = funded()
        for i, step in enumerate(steps):
            events = e.apply(step.command)
            assert len(events) == 1 and isinstance(events[0], step.event), (name, i, events)
            if step.reason is not None:
                assert isinstance(events[0], Rejected) and events[0].reason == step.reason, (name, i)
            assert balance(e) == step.total_held, (name, i)
            assert is_balanced(lines_for(events[0], INSTRUMENTS)), (name, i)
        assert B not in e.s.accounts, f"{name}: a refusal created an account"


def test_a_withdrawal_hold_and_an_order_share_one_balance() -> None:
    e = Engine(INSTRUMENTS)
    e.apply(Deposit(1, A, USD.index, usd("1000"), "d1"))
    e.apply(WithdrawHold(2, A, USD.index, usd("900"), "w1"))
    buy = PlaceOrder(
        3, A, INSTRUMENTS.pair("XBTUSD").index, Side.buy, 1, lots("0.01"), price_ticks=px("50000")
    )
    assert isinstance(e.apply(buy)[0], Rejected)  # 500 USD + fee do not fit in the 100 left
    e.apply(WithdrawVoid(4, A, "w1"))
    assert accepted(e.apply(buy)).hold_minor > 0


def test_post_lines_go_from_held_to_the_world() -> None:
    e = funded()
    e.apply(WithdrawHold(2, A, USD.index, usd("30"), "w1"))
    (posted,) = e.apply(WithdrawPost(3, A, "w1"))
    lines = lines_for(posted, INSTRUMENTS)
    assert {(ln.account, ln.bucket, ln.amount_minor) for ln in lines} == {
        (A, 1, -usd("30")),
        (WORLD_ACCOUNT, 0, usd("30")),
    }


def test_snapshot_keeps_pending_withdrawals() -> None:
    e = funded()
    e.apply(WithdrawHold(2, A, USD.index, usd("30"), "w1"))
    e.apply(WithdrawHold(3, A, USD.index, usd("5"), "w0"))
    blob = snapshot(e)
    again = restore(INSTRUMENTS, blob)
    assert again.s.withdrawals == e.s.withdrawals and state_hash(again) == state_hash(e)
    assert isinstance(again.apply(WithdrawPost(4, A, "w1"))[0], WithdrawPosted)
    assert balance(again) == (usd("70"), usd("5"))


def test_snapshot_without_withdrawals_is_the_old_format() -> None:
    e = funded()
    assert restore(INSTRUMENTS, snapshot(e)).s.withdrawals == {}


OPS = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "hold", "post", "void"]),
        st.sampled_from([A, B]),
        st.integers(1, 5),  # ref number
        st.integers(1, 50),  # amount in whole XBT minor multiples
    ),
    max_size=40,
)


def _commands(ops: list[tuple[str, int, int, int]]) -> list[Command]:
    out: list[Command] = []
    for ts, (op, account, ref, amount) in enumerate(ops, start=1):
        minor = amount * xbt("0.1")
        if op == "deposit":
            out.append(Deposit(ts, account, XBT.index, minor, f"d{ts}"))
        elif op == "hold":
            out.append(WithdrawHold(ts, account, XBT.index, minor, f"w{ref}"))
        elif op == "post":
            out.append(WithdrawPost(ts, account, f"w{ref}"))
        else:
            out.append(WithdrawVoid(ts, account, f"w{ref}"))
    return out


@given(OPS)
def test_conservation_holds_and_replay(ops: list[tuple[str, int, int, int]]) -> None:
    e = Engine(INSTRUMENTS)
    log: list[bytes] = []
    deposited = posted = 0
    for c in _commands(ops):
        events = e.apply(c)
        log.append(events_encoder.encode(events))
        for ev in events:
            assert is_balanced(lines_for(ev, INSTRUMENTS))
            deposited += getattr(ev, "amount_minor", 0) if type(ev).__name__ == "Deposited" else 0
            posted += ev.amount_minor if isinstance(ev, WithdrawPosted) else 0
        pending: dict[int, int] = {}
        for account, _, amount in e.s.withdrawals.values():
            pending[account] = pending.get(account, 0) + amount
        for number, acct in e.s.accounts.items():  # L5: held is exactly the pending withdrawals
            assert acct.held[XBT.index] == pending.get(number, 0)
            assert 0 <= acct.held[XBT.index] <= acct.total[XBT.index]
    assert sum(a.total[XBT.index] for a in e.s.accounts.values()) == deposited - posted  # L1
    replay = Engine(INSTRUMENTS)  # L10: the same commands give byte-identical events
    for c, expected in zip(_commands(ops), log, strict=True):
        decoded = command_decoder.decode(command_encoder.encode(c))
        assert events_encoder.encode(replay.apply(decoded)) == expected
    assert state_hash(replay) == state_hash(e)
    assert state_hash(restore(INSTRUMENTS, snapshot(e))) == state_hash(e)
