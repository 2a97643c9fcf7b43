"""An account's open orders are found through its own list of numbers, never by a scan of every order.

One account's request must not cost time in proportion to the other accounts' orders. These
tests check the structure, not the time: an account's list stays within twice its open orders
(plus a constant) through many places, fills and cancels, and the requests that read an
account's open orders succeed when every other account's entry in the engine's index is
poisoned (an object that is not an order: a scan of the index would fail on the first one).
"""

from __future__ import annotations

import random

from tests.core.enginekit import BUY, SECOND_NS, SELL, T0_NS, UNLIMITED, USD, XBT, XBTUSD, lots, px

from abyssal.core.accounts import PRUNE_SLACK, Account
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    CancelAll,
    CancelAllAfter,
    CancelCount,
    CancelOrders,
    Deposit,
    Event,
    OrderClosed,
    OrderType,
    PlaceOrder,
    Rejected,
    Tick,
)

assert XBTUSD is not None and USD is not None and XBT is not None
PAIR, ASSETS = XBTUSD.index, (USD.index, XBT.index)
MID = px("10000")
OTHERS = 2_000  # the other account's resting orders


def _engine(*accounts: int) -> Engine:
    engine = Engine(UNLIMITED)  # thousands of one account's orders on one pair
    for account in accounts:
        for asset in ASSETS:
            engine.apply(Deposit(T0_NS, account, asset, 10**18, "d"))
    return engine


def _place(engine: Engine, ts_ns: int, account: int, side: int, price: int, userref: int = 0) -> list[Event]:
    command = PlaceOrder(
        ts_ns, account, PAIR, side, int(OrderType.limit), lots("0.01"), price_ticks=price, userref=userref
    )
    events = engine.apply(command)
    assert not any(isinstance(e, Rejected) for e in events), events
    return events


def _check_index(acct: Account, engine: Engine) -> None:
    mine = sorted(no for no, o in engine.s.orders.items() if o.account == acct.number)
    assert list(acct.open) == mine
    assert len(acct.open_nos) <= 2 * len(mine) + PRUNE_SLACK


def test_an_accounts_list_stays_within_twice_its_open_orders() -> None:
    engine = _engine(1, 2)
    rng = random.Random(11)
    ts = T0_NS
    for step in range(3_000):
        ts += 1_000
        r = rng.random()
        mine = [no for no, o in engine.s.orders.items() if o.account == 1]
        if mine and r < 0.45:  # cancel one of account 1's orders
            engine.apply(CancelOrders(ts, 1, [rng.choice(mine)]))
        elif r < 0.5:  # account 2 sells into account 1's bids: fills close orders too
            _place(engine, ts, 2, SELL, MID - 5)
        else:
            _place(engine, ts, 1, BUY, MID - rng.randint(1, 20))
        if step % 20 == 0 or len(mine) < 3:
            _check_index(engine.s.accounts[1], engine)
    _check_index(engine.s.accounts[1], engine)
    engine.apply(CancelAll(ts + 1_000, 1))
    acct = engine.s.accounts[1]
    assert not acct.open and len(acct.open_nos) <= PRUNE_SLACK


class _Poison:
    """Stands for another account's order: reading anything from it fails."""

    __slots__ = ()


def _poisoned_engine() -> tuple[Engine, dict[int, object], int]:
    """Account 2 rests OTHERS orders, then account 1 one order (userref 7) below them all."""
    engine = _engine(1, 2)
    ts = T0_NS
    for i in range(OTHERS):
        ts += 1_000
        _place(engine, ts, 2, SELL, MID + 1 + i % 50)
    ts += 1_000
    _place(engine, ts, 1, BUY, MID - 1, userref=7)
    mine = engine.s.next_order_no - 1
    live: dict[int, object] = engine.s.orders  # type: ignore[assignment]
    for no in list(live):
        if no != mine:
            live[no] = _Poison()
    return engine, live, mine


def _closed_mine(events: list[Event], mine: int) -> None:
    assert [e.order_no for e in events if isinstance(e, OrderClosed)] == [mine]
    assert [e.count for e in events if isinstance(e, CancelCount)] in ([1], [])


def test_reading_one_accounts_orders_reads_none_of_the_others() -> None:
    engine, live, mine = _poisoned_engine()
    acct = engine.s.accounts[1]
    assert list(acct.open) == [mine] and acct.open_nos == [mine]
    ts = T0_NS + SECOND_NS
    _closed_mine(engine.apply(CancelAll(ts, 1)), mine)
    assert len(live) == OTHERS and not acct.open


def test_a_cancel_by_userref_reads_none_of_the_others() -> None:
    engine, live, mine = _poisoned_engine()
    _closed_mine(engine.apply(CancelOrders(T0_NS + SECOND_NS, 1, [], [], [7])), mine)
    assert len(live) == OTHERS


def test_a_dead_mans_switch_reads_none_of_the_others() -> None:
    engine, live, mine = _poisoned_engine()
    ts = T0_NS + SECOND_NS
    engine.apply(CancelAllAfter(ts, 1, 0, 5))
    _closed_mine(engine.apply(Tick(ts + 6 * SECOND_NS)), mine)
    assert len(live) == OTHERS
