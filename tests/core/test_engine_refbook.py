"""The real engine and the list-based reference book, fed the same random streams of limit,
IOC, market and cancel commands (ample funds; buyers and sellers on distinct accounts, so no
self-trade prevention), must make the same fills and leave the same book after every command."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.core.enginekit import ENGINE_PROFILE, Harness, of_type, toy_instruments
from tests.core.refbook import RefBook, RefFill

from abyssal.core.messages import (
    FLAG_NOMPP,
    CancelCount,
    CancelOrders,
    Event,
    Fill,
    OrderType,
    PlaceOrder,
    Rejected,
    Side,
    TimeInForce,
)

TOY = toy_instruments(taker_ppm=2_600, maker_ppm=1_600)
BUYERS = (1, 2, 3, 4)
SELLERS = (5, 6, 7, 8)

TIF = {False: TimeInForce.gtc, True: TimeInForce.ioc}
Op = tuple[Any, ...]  # ("limit", buy, qty, price, ioc) | ("market", buy, qty, protect) | ("cancel", pick)


class Twin:
    """The engine and the reference book side by side; every command goes to both."""

    def __init__(self, checking: bool = True) -> None:
        self.h = Harness(TOY)
        self.h.checking = checking
        quote, base = TOY.assets
        for account in BUYERS + SELLERS:
            self.h.deposit(account, quote, 10**15)
            self.h.deposit(account, base, 10**12)
        self.ref = RefBook()
        self.owner: dict[int, int] = {}
        self.n = 0

    def apply(self, op: Op) -> None:
        self.n += 1
        kind = op[0]
        if kind == "cancel":
            self._cancel(op[1])
            return
        is_buy = bool(op[1])
        account = (BUYERS if is_buy else SELLERS)[self.n % 4]
        self.owner[self.ref.next_id] = account
        if kind == "limit":
            _, _, qty, price, ioc = op
            events = self._place(account, is_buy, OrderType.limit, qty, price_ticks=price, tif=int(TIF[ioc]))
            want = self.ref.limit(is_buy, qty, price, ioc)
        else:
            _, _, qty, protect = op
            events = self._place(account, is_buy, OrderType.market, qty, flags=0 if protect else FLAG_NOMPP)
            want = self.ref.market(is_buy, qty, protect)
        got = [
            RefFill(f.price_ticks, f.volume_lots, f.maker_order, f.taker_order) for f in of_type(events, Fill)
        ]
        assert got == want, f"command {self.n} {op}: engine {got} != reference {want}"
        self.compare_books()

    def _place(self, account: int, is_buy: bool, t: OrderType, qty: int, **kw: Any) -> list[Event]:
        side = int(Side.buy if is_buy else Side.sell)
        cmd = PlaceOrder(self.h.tick_ns(), account, 0, side, int(t), qty, **kw)
        events = self.h.apply(cmd)
        assert not of_type(events, Rejected), events
        return events

    def _cancel(self, pick: int) -> None:
        issued = self.ref.next_id - 1
        order_id = 1 + pick % issued if issued else 1
        account = self.owner.get(order_id, BUYERS[0])
        events = self.h.apply(CancelOrders(self.h.tick_ns(), account, order_nos=[order_id]))
        cancelled = bool(of_type(events, CancelCount))
        assert cancelled == self.ref.cancel(order_id), f"cancel #{order_id}"
        self.compare_books()

    def compare_books(self) -> None:
        book = self.h.s.books[0]
        for bids in (True, False):
            got = [
                (o.order_no, o.limit_ticks, o.remaining_lots) for o in book.side(bids).orders_in_priority()
            ]
            assert got == self.ref.side(bids), f"{'bids' if bids else 'asks'} differ after command {self.n}"


# ------------------------------------------------------------------ hypothesis streams
limits = st.tuples(
    st.just("limit"),
    st.booleans(),
    st.integers(1, 30),
    st.integers(90, 110),
    st.sampled_from([False, False, False, True]),
)
markets = st.tuples(st.just("market"), st.booleans(), st.integers(1, 60), st.booleans())
cancels = st.tuples(st.just("cancel"), st.integers(0, 10**6))
streams = st.lists(st.one_of(limits, limits, limits, markets, cancels), max_size=80)


@ENGINE_PROFILE
@given(streams)
def test_engine_matches_the_reference_book(ops: list[Op]) -> None:
    twin = Twin()
    for op in ops:
        twin.apply(op)


# ------------------------------------------------------------------ long seeded streams
def random_stream(seed: int, length: int) -> list[Op]:
    rnd = random.Random(seed)
    ops: list[Op] = []
    for _ in range(length):
        roll = rnd.random()
        is_buy = rnd.random() < 0.5
        if roll < 0.65:
            mid = 100 + rnd.randint(-3, 3)  # a drifting mid keeps the book crossing often
            ops.append(("limit", is_buy, rnd.randint(1, 40), mid + rnd.randint(-8, 8), rnd.random() < 0.15))
        elif roll < 0.8:
            ops.append(("market", is_buy, rnd.randint(1, 80), rnd.random() < 0.7))
        else:
            ops.append(("cancel", rnd.randint(0, 10**6)))
    return ops


@pytest.mark.parametrize("seed", range(4))
def test_long_random_stream_matches_the_reference_book(seed: int) -> None:
    twin = Twin(checking=False)
    for i, op in enumerate(random_stream(seed, 1_500)):
        twin.apply(op)
        if i % 250 == 0:
            twin.h.check()
    twin.h.check()
    assert twin.h.s.trade_no[0] > 300  # the stream really traded
