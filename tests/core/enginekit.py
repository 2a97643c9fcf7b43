"""Test kit for the engine: units, a harness that checks every invariant after every command."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from abyssal.config import load_config
from abyssal.core.accounts import FEE_ACCOUNT
from abyssal.core.book import Order
from abyssal.core.engine import Engine
from abyssal.core.instruments import Asset, FeeSchedule, FeeTier, Instruments, Pair
from abyssal.core.messages import (
    FLAG_VIQC,
    TRIGGERED_TYPES,
    Command,
    Deposit,
    Deposited,
    Event,
    Fill,
    OrderAccepted,
    OrderClosed,
    OrderType,
    PlaceOrder,
    Rejected,
    Side,
    Withdrawn,
)
from abyssal.core.order import ORDER_FIELDS
from abyssal.core.postings import AVAILABLE, HELD, is_balanced, lines_for
from abyssal.core.settlement import required_hold

INSTRUMENTS = load_config(None).instruments  # open_orders_per_pair_max 225, as the default config
# for scenarios that need thousands of one account's orders on one pair
UNLIMITED = replace(INSTRUMENTS, open_orders_per_pair_max=0)
XBTUSD = INSTRUMENTS.pair("XBTUSD")
ETHUSD = INSTRUMENTS.pair("ETHUSD")
ETHXBT = INSTRUMENTS.pair("ETHXBT")
USD = INSTRUMENTS.asset("USD")
XBT = INSTRUMENTS.asset("XBT")
ETH = INSTRUMENTS.asset("ETH")
assert XBTUSD is not None and ETHUSD is not None and ETHXBT is not None
assert USD is not None and XBT is not None and ETH is not None

BUY, SELL = int(Side.buy), int(Side.sell)

# Hypothesis budgets: "engine-quick" keeps tests/core well under a minute on two cores;
# ABYSSAL_ENGINE_PROFILE=engine-deep runs the same properties for much longer.
_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("engine-quick", max_examples=60, deadline=None, suppress_health_check=_RELAXED)
settings.register_profile("engine-deep", max_examples=2_000, deadline=None, suppress_health_check=_RELAXED)
ENGINE_PROFILE = settings.get_profile(os.environ.get("ABYSSAL_ENGINE_PROFILE", "engine-quick"))
T0_NS = 1_700_000_000 * 10**9  # a fixed epoch for every scenario
SECOND_NS = 10**9

E = TypeVar("E", bound=Event)


# ------------------------------------------------------------------ units
def _scaled(text: str, decimals: int) -> int:
    value = Decimal(text).scaleb(decimals)
    assert value == value.to_integral_value(), f"{text} has more than {decimals} decimals"
    return int(value)


def px(text: str, pair: Pair = XBTUSD) -> int:
    """A price as written ("50000.1") in the pair's ticks."""
    return _scaled(text, pair.pair_decimals)


def lots(text: str, pair: Pair = XBTUSD) -> int:
    """A base volume as written ("0.5") in the pair's lots."""
    return _scaled(text, pair.lot_decimals)


def usd(text: str) -> int:
    return _scaled(text, USD.decimals)


def xbt(text: str) -> int:
    return _scaled(text, XBT.decimals)


def eth(text: str) -> int:
    return _scaled(text, ETH.decimals)


def toy_instruments(
    tick_ticks: int = 1,
    ordermin_lots: int = 1,
    costmin_raw: int = 1,
    taker_ppm: int = 0,
    maker_ppm: int = 0,
    mpp_band_ppm: int = 10_000,
) -> Instruments:
    """A market with whole-number units (price 1 tick = 1 minor unit of quote, 1 lot = 1 minor
    unit of base) so that reference-book arithmetic is plain integers."""
    quote = Asset(0, "QQQ", "QQQ", "QQQ", 0, 0)
    base = Asset(1, "BBB", "BBB", "BBB", 0, 0)
    fees = FeeSchedule((FeeTier(0, taker_ppm, maker_ppm),))
    pair = Pair(
        index=0,
        id="BBBQQQ",
        altname="BBBQQQ",
        wsname="BBB/QQQ",
        symbol="BBB/QQQ",
        base=base,
        quote=quote,
        pair_decimals=0,
        lot_decimals=0,
        cost_decimals=0,
        tick_ticks=tick_ticks,
        ordermin_lots=ordermin_lots,
        costmin_raw=costmin_raw,
        fees=fees,
        mpp_band_ppm=mpp_band_ppm,
    )
    return Instruments(assets=(quote, base), pairs=(pair,), fee_volume_asset=quote)


# ------------------------------------------------------------------ state digest
def _order_row(o: Order) -> tuple[Any, ...]:
    return tuple(getattr(o, name) for name in ORDER_FIELDS)


def digest(engine: Engine) -> tuple[Any, ...]:
    """Every bit of engine state, in a comparable form (tombstones and heap layouts included)."""
    s = engine.s
    accounts = tuple(
        (
            n,
            tuple(a.total),
            tuple(a.held),
            tuple(sorted(a.open)),
            tuple(a.open_per_pair),
            tuple(sorted(a.cl_ids.items())),
            tuple(sorted(a.vol_days.items())),
            a.vol30,
            a.cur_day,
        )
        for n, a in sorted(s.accounts.items())
    )
    orders = tuple((n, _order_row(o)) for n, o in sorted(s.orders.items()))
    books = tuple(
        tuple(
            (
                tuple(side.prices),
                tuple(
                    (p, lvl.visible_lots, tuple((o.order_no, o.resting) for o in lvl.orders))
                    for p, lvl in sorted(side.levels.items())
                ),
            )
            for side in (book.bids, book.asks)
        )
        for book in s.books
    )
    return (
        accounts,
        orders,
        books,
        tuple(s.last_price),
        tuple(s.trade_no),
        tuple(s.modes),
        s.system_mode,
        s.next_order_no,
        s.amend_no,
        tuple(tuple(h) for h in s.rise),
        tuple(tuple(h) for h in s.fall),
        tuple(tuple(sorted(t)) for t in s.trailing),
        tuple(s.expiries),
        tuple(s.starts),
        tuple(sorted(s.dms.items())),
    )


# ------------------------------------------------------------------ invariants
def check_book(engine: Engine) -> None:
    """The book's structure: sorted index, level sums, one live entry per resting order."""
    s = engine.s
    for book in s.books:
        for side in (book.bids, book.asks):
            keys = [p if side.is_bid else -p for p in side.levels]
            assert sorted(keys) == side.prices, "sorted price index disagrees with the levels"
            for price, level in side.levels.items():
                assert level.price_ticks == price
                live = [o for o in level.orders if o.resting]
                assert live, f"empty level {price} left in the book"
                ids = [o.order_no for o in live]
                assert len(ids) == len(set(ids)), f"order listed twice at level {price}: {ids}"
                assert level.visible_lots == sum(o.visible_lots for o in live), "level sum"
                for o in live:
                    assert o.visible_lots > 0, "a resting order must show at least one lot"
                    assert o.visible_lots <= o.remaining_lots
                    assert o.limit_ticks == price and o.pair == book.pair
                    assert o.is_buy == side.is_bid
                    assert price > 0 and price % s.pairs[book.pair].tick_ticks == 0, f"bad price {price}"
                    assert s.orders.get(o.order_no) is o, "resting order not live"
        assert not book.is_crossed(), "the book stayed crossed"
    resting = {
        o.order_no
        for book in s.books
        for side in (book.bids, book.asks)
        for lvl in side.levels.values()
        for o in lvl.orders
        if o.resting
    }
    assert resting == {n for n, o in s.orders.items() if o.resting}, "resting flag out of step"


def check_accounts(engine: Engine, net_minor: list[int]) -> None:
    """Conservation per asset, no negative balance, holds equal to the sum of order holds, open
    orders per pair as counted and within the limit."""
    s = engine.s
    n_assets = len(s.instruments.assets)
    totals = [0] * n_assets
    for number, acct in s.accounts.items():
        held = [0] * n_assets
        per_pair = [0] * len(s.pairs)
        for no, o in acct.open.items():
            per_pair[o.pair] += 1
            assert s.orders.get(no) is o, "account lists an order the engine does not"
            assert o.account == number
            assert o.hold_minor >= 0, "negative order hold"
            pair = s.pairs[o.pair]
            held[pair.quote.index if o.is_buy else pair.base.index] += o.hold_minor
            _check_order_hold(engine, o)
        limit = s.instruments.open_orders_per_pair_max
        assert acct.open_per_pair == (per_pair if limit else []), f"account {number}: open orders per pair"
        assert not limit or max(per_pair) <= limit, f"account {number}: over the open-orders limit"
        for cl, no in acct.cl_ids.items():
            assert acct.open[no].cl_ord_id == cl
        for a in range(n_assets):
            assert acct.total[a] >= 0, f"account {number} total negative"
            assert acct.held[a] >= 0, f"account {number} held negative"
            assert acct.total[a] >= acct.held[a], f"account {number} available negative"
            assert acct.held[a] == held[a], f"account {number} asset {a}: held != sum of order holds"
            totals[a] += acct.total[a]
    assert sum(len(a.open) for a in s.accounts.values()) == len(s.orders)
    assert totals == net_minor, f"not conserved: {totals} != deposits - withdrawals {net_minor}"
    assert s.supply == totals, f"supply {s.supply} != the sum of balances {totals}"


def _check_order_hold(engine: Engine, o: Order) -> None:
    """A live order always holds enough for the rest of it at its worst price."""
    pair = engine.s.pairs[o.pair]
    if o.flags & FLAG_VIQC or o.ordertype == OrderType.market:
        return
    if o.ordertype in TRIGGERED_TYPES and not o.triggered:
        if o.ordertype == OrderType.trailing_stop_limit:
            price = o.stop_ticks + o.price2_ticks
        else:
            price = o.price2_ticks
    else:
        price = o.limit_ticks
    if not o.is_buy or price:
        assert o.hold_minor >= required_hold(pair, o, o.remaining_lots, price), (
            f"order {o.order_no} holds {o.hold_minor}, needs more"
        )


@dataclass
class Ledger:
    """The ledger a projector would build from the events: must match the engine's balances."""

    buckets: dict[tuple[int, int, int], int] = field(default_factory=dict)

    def post(self, events: Iterable[Event], instruments: Instruments) -> None:
        for ev in events:
            lines = lines_for(ev, instruments)
            assert is_balanced(lines), f"unbalanced postings for {ev}"
            for line in lines:
                key = (line.account, line.asset, line.bucket)
                self.buckets[key] = self.buckets.get(key, 0) + line.amount_minor

    def check(self, engine: Engine) -> None:
        for number, acct in engine.s.accounts.items():
            for a in range(len(acct.total)):
                avail = self.buckets.get((number, a, AVAILABLE), 0)
                held = self.buckets.get((number, a, HELD), 0)
                assert held == acct.held[a], f"ledger held of {number}/{a}: {held} != {acct.held[a]}"
                assert avail == acct.total[a] - acct.held[a], f"ledger available of {number}/{a}"


# ------------------------------------------------------------------ harness
class Harness:
    """An engine plus a clock; checks every invariant and the ledger after each command."""

    def __init__(self, instruments: Instruments = INSTRUMENTS, pair: Pair = XBTUSD) -> None:
        self.engine = Engine(instruments)
        self.instruments = instruments
        self.pair = pair
        self.ts_ns = T0_NS
        self.net_minor = [0] * len(instruments.assets)
        self.ledger = Ledger()
        self.log: list[Event] = []
        self.checking = True  # check every invariant after every command (off for bulk set-ups)

    @property
    def s(self) -> Any:
        return self.engine.s

    def tick_ns(self) -> int:
        self.ts_ns += 1
        return self.ts_ns

    def apply(self, command: Command) -> list[Event]:
        assert command.ts_ns >= self.ts_ns, "time runs forwards"
        self.ts_ns = command.ts_ns
        events = self.engine.apply(command)
        for ev in events:
            if isinstance(ev, Deposited):
                self.net_minor[ev.asset] += ev.amount_minor
            elif isinstance(ev, Withdrawn):
                self.net_minor[ev.asset] -= ev.amount_minor
        self.log.extend(events)
        self.ledger.post(events, self.instruments)
        if self.checking:
            self.check()
        return events

    def check(self) -> None:
        check_book(self.engine)
        check_accounts(self.engine, self.net_minor)
        self.ledger.check(self.engine)

    def deposit(self, account: int, asset: Asset, amount_minor: int) -> None:
        ev = self.apply(Deposit(self.tick_ns(), account, asset.index, amount_minor, "dep"))
        assert isinstance(ev[-1], Deposited)

    def fund(self, account: int, usd_text: str = "1000000", xbt_text: str = "100") -> None:
        self.deposit(account, USD, usd(usd_text))
        self.deposit(account, XBT, xbt(xbt_text))

    def place(
        self, account: int, side: int, ordertype: OrderType | int, volume_lots: int, **kw: Any
    ) -> list[Event]:
        ts = kw.pop("ts_ns", None) or self.tick_ns()
        pair = kw.pop("pair", self.pair.index)
        return self.apply(
            PlaceOrder(
                ts_ns=ts,
                account=account,
                pair=pair,
                side=side,
                ordertype=int(ordertype),
                volume_lots=volume_lots,
                **kw,
            )
        )

    def limit(self, account: int, side: int, volume_lots: int, price_ticks: int, **kw: Any) -> int:
        """Place a limit order that must be accepted; returns its order number."""
        events = self.place(account, side, OrderType.limit, volume_lots, price_ticks=price_ticks, **kw)
        return accepted(events).order_no

    def book(self, pair: Pair | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        book = self.s.books[(pair or self.pair).index]
        return book.bids.depth(1000), book.asks.depth(1000)

    def queue(self, price_ticks: int, is_bid: bool, pair: Pair | None = None) -> list[int]:
        """Order numbers resting at one level, in time priority."""
        side = self.s.books[(pair or self.pair).index].side(is_bid)
        level = side.levels.get(price_ticks)
        return [] if level is None else [o.order_no for o in level.orders if o.resting]

    def balance(self, account: int, asset: Asset) -> tuple[int, int]:
        """(total, held) in minor units."""
        acct = self.s.accounts.get(account)
        if acct is None:
            return 0, 0
        return acct.total[asset.index], acct.held[asset.index]


# ------------------------------------------------------------------ event helpers
def of_type(events: Iterable[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def accepted(events: list[Event]) -> OrderAccepted:
    acc = of_type(events, OrderAccepted)
    assert len(acc) == 1, f"expected one acceptance, got {events}"
    return acc[0]


def rejected(events: list[Event]) -> Rejected:
    assert len(events) >= 1 and isinstance(events[-1], Rejected), f"expected a rejection, got {events}"
    return events[-1]


def fills(events: Iterable[Event]) -> list[tuple[int, int, int, int]]:
    """(price_ticks, volume_lots, maker_order, taker_order) of each fill."""
    return [(f.price_ticks, f.volume_lots, f.maker_order, f.taker_order) for f in of_type(events, Fill)]


def closed(events: Iterable[Event]) -> dict[int, tuple[int, int]]:
    """order_no -> (status, reason) of each close."""
    return {c.order_no: (c.status, c.reason) for c in of_type(events, OrderClosed)}


__all__ = [
    "BUY",
    "ENGINE_PROFILE",
    "ETH",
    "ETHUSD",
    "ETHXBT",
    "FEE_ACCOUNT",
    "INSTRUMENTS",
    "SECOND_NS",
    "SELL",
    "T0_NS",
    "UNLIMITED",
    "USD",
    "XBT",
    "XBTUSD",
    "Harness",
    "Ledger",
    "accepted",
    "check_accounts",
    "check_book",
    "closed",
    "digest",
    "eth",
    "fills",
    "lots",
    "of_type",
    "px",
    "rejected",
    "toy_instruments",
    "usd",
    "xbt",
]
