"""Bad commands are refused with their named reason and change nothing: the full state digest
(balances, holds, orders, book, tombstones, trigger heaps, timers, counters) is identical."""

from __future__ import annotations

from typing import Any

import pytest
from tests.core.enginedsl import parse, run
from tests.core.enginekit import (
    INSTRUMENTS,
    USD,
    XBT,
    Harness,
    accepted,
    digest,
    lots,
    of_type,
    px,
    toy_instruments,
    usd,
)

from abyssal.core.instruments import UNITS_MAX
from abyssal.core.messages import (
    AmendOrder,
    CancelOrders,
    Command,
    Deposit,
    EditOrder,
    Event,
    Fill,
    OrderType,
    PlaceBatch,
    PlaceOrder,
    PriceKind,
    Reject,
    Rejected,
    SetMode,
    Withdraw,
    events_encoder,
)

BUSY = """
    3 sell limit 0.1 @ 100.0          // #1, #2: last price 100
    4 buy limit 0.1 @ 100.0
    1 buy limit 1 @ 99.0 cl=bid       // #3
    1 buy iceberg 3 @ 98.0 display 1  // #4
    2 sell limit 1 @ 101.0 ref=5      // #5
    2 sell limit 1 @ 101.0            // #6
    1 sell stop-loss 1 @ 95.0         // #7
    1 buy limit 1 @ 97.0 start=100    // #8 scheduled
    1 buy limit 1 @ 96.0 gtd=100      // #9
    2 cancel #6                       // leaves a tombstone behind #5
    1 dms 1000
"""


@pytest.fixture
def busy() -> Harness:
    h = Harness()
    for account in (1, 2, 3, 4):
        h.fund(account, "1000", "10")
    run(h, BUSY)
    return h


def _place_command(ts_ns: int, kw: dict[str, Any]) -> PlaceOrder:
    base: dict[str, Any] = {
        "account": 1,
        "pair": 0,
        "side": 0,
        "ordertype": 1,
        "volume_lots": lots("0.1"),
        "price_ticks": px("99.5"),
    }
    base.update(kw)
    return PlaceOrder(ts_ns=ts_ns, **base)


BAD_ORDERS: list[tuple[str, dict[str, Any], Reject]] = [
    ("unknown pair", {"pair": 99}, Reject.unknown_pair),
    ("negative pair", {"pair": -1}, Reject.unknown_pair),
    ("zero volume", {"volume_lots": 0}, Reject.invalid_volume),
    ("negative volume", {"volume_lots": -5}, Reject.invalid_volume),
    ("below ordermin", {"volume_lots": lots("0.00004999")}, Reject.volume_below_minimum),
    ("below costmin", {"volume_lots": lots("0.005"), "price_ticks": px("99.9")}, Reject.cost_below_minimum),
    (
        "viqc below costmin",
        {"ordertype": 0, "flags": 16, "volume_lots": usd("0.4999")},
        Reject.cost_below_minimum,
    ),
    ("zero price", {"price_ticks": 0}, Reject.invalid_price),
    ("negative price", {"price_ticks": -10}, Reject.invalid_price),
    (
        "relative limit price below zero",
        {"price_kind": int(PriceKind.minus), "price_ticks": px("150")},
        Reject.invalid_price,
    ),
    ("unknown limit price kind", {"price_kind": 9}, Reject.invalid_arguments),
    ("negative stop price", {"ordertype": 3, "side": 1, "price_ticks": -10}, Reject.invalid_price),
    ("zero stop price", {"ordertype": 3, "side": 1, "price_ticks": 0}, Reject.invalid_price),
    ("stop-limit without a limit", {"ordertype": 5, "side": 1, "price_ticks": 900}, Reject.invalid_price),
    ("trailing stop with an absolute price", {"ordertype": 7, "side": 1}, Reject.invalid_price),
    ("insufficient quote", {"volume_lots": lots("20")}, Reject.insufficient_funds),
    (
        "insufficient base",
        {"side": 1, "volume_lots": lots("9.5"), "price_ticks": px("150")},
        Reject.insufficient_funds,
    ),
    ("no account at all", {"account": 77}, Reject.insufficient_funds),
    ("duplicate cl_ord_id", {"cl_ord_id": "bid"}, Reject.duplicate_cl_ord_id),
    ("fcib with fciq", {"flags": 2 | 4}, Reject.invalid_arguments),
    ("post-only market", {"ordertype": 0, "flags": 1}, Reject.invalid_arguments),
    ("viqc sell", {"ordertype": 0, "side": 1, "flags": 16}, Reject.invalid_arguments),
    ("GTD already expired", {"tif": 2, "expire_ns": 1}, Reject.invalid_arguments),
    ("iceberg display zero", {"ordertype": 2, "display_lots": 0}, Reject.invalid_arguments),
    ("iceberg display above volume", {"ordertype": 2, "display_lots": lots("0.2")}, Reject.invalid_arguments),
    ("unknown order type", {"ordertype": 42}, Reject.invalid_arguments),
    ("unknown side", {"side": 2}, Reject.invalid_arguments),
    ("unknown time in force", {"tif": 9}, Reject.invalid_arguments),
    ("unknown STP mode (would loop forever)", {"stp": 7, "price_ticks": px("101")}, Reject.invalid_arguments),
    ("unknown price kind", {"ordertype": 3, "side": 1, "price_kind": 9}, Reject.invalid_arguments),
]


@pytest.mark.parametrize(
    ("kw", "reason"), [(k, r) for _, k, r in BAD_ORDERS], ids=[n for n, _, _ in BAD_ORDERS]
)
def test_bad_order_is_refused_and_changes_nothing(busy: Harness, kw: dict[str, Any], reason: Reject) -> None:
    for validate in (False, True):
        before = digest(busy.engine)
        events = busy.apply(_place_command(busy.tick_ns(), {**kw, "validate": validate}))
        assert len(events) == 1 and isinstance(events[0], Rejected), events
        assert (events[0].account, Reject(events[0].reason)) == (kw.get("account", 1), reason)
        assert digest(busy.engine) == before


BAD_COMMANDS: list[tuple[str, str, Reject]] = [
    ("cancel an unknown order number", "1 cancel #999", Reject.unknown_order),
    ("cancel another account's order", "2 cancel #3", Reject.unknown_order),
    ("cancel an unknown cl_ord_id", "1 cancel cl=nope", Reject.unknown_order),
    ("cancel an unknown userref", "1 cancel ref=404", Reject.unknown_order),
    ("cancel for an account with no orders", "9 cancel #3", Reject.unknown_order),
    ("amend an unknown order", "1 amend #999 qty=0.5", Reject.unknown_order),
    ("amend a closed order", "1 amend #6 qty=0.5", Reject.unknown_order),
    ("amend an unknown cl_ord_id", "1 amend cl=nope qty=0.5", Reject.unknown_order),
    ("amend a zero limit price", "1 amend #3 price=0", Reject.invalid_price),
    ("amend a zero trigger", "1 amend #7 trigger=0", Reject.invalid_price),
    ("amend beyond the funds", "1 amend #3 qty=9", Reject.insufficient_funds),
    ("amend an iceberg's display above its volume", "1 amend #4 display=4", Reject.invalid_arguments),
    ("post-only amend that would take", "1 amend #3 price=101.0 post", Reject.post_only_would_take),
    # an amend is held to the pair's minimums as a placed order is (ordermin 0.00005, costmin 0.5 USD)
    ("amend below ordermin", "1 amend #3 qty=0.00004", Reject.volume_below_minimum),
    ("amend by cl_ord_id below ordermin", "1 amend cl=bid qty=0.00001", Reject.volume_below_minimum),
    (
        "amend an iceberg below ordermin",
        "1 amend #4 qty=0.00004 display=0.00004",
        Reject.volume_below_minimum,
    ),
    ("amend a scheduled order below ordermin", "1 amend #8 qty=0.00001", Reject.volume_below_minimum),
    ("amend a stop below ordermin", "1 amend #7 qty=0.00001", Reject.volume_below_minimum),
    ("amend the size below costmin", "1 amend #3 qty=0.005", Reject.cost_below_minimum),  # 0.495 USD
    ("amend the price below costmin", "1 amend #3 price=0.4", Reject.cost_below_minimum),
    ("amend a relative price below costmin", "1 amend #3 price=-99.6", Reject.cost_below_minimum),  # 0.4
    (
        "amend size and price, each fine, below costmin",
        "1 amend #3 qty=0.01 price=40.0",
        Reject.cost_below_minimum,
    ),
    ("amend a stop's trigger below costmin", "1 amend #7 trigger=0.4", Reject.cost_below_minimum),
    ("edit an unknown order", "1 edit #999 price=99.0", Reject.unknown_order),
    ("edit a stop (not a limit)", "1 edit #7 price=94.0", Reject.not_amendable),
    ("edit below the filled volume", "1 edit #3 qty=0", Reject.invalid_volume),
    ("edit below ordermin", "1 edit #3 qty=0.00001", Reject.volume_below_minimum),
    ("edit beyond the funds", "1 edit #3 qty=50", Reject.insufficient_funds),
    ("edit to a zero price", "1 edit #3 price=0", Reject.invalid_price),
    ("deposit an unknown asset", "", Reject.unknown_asset),
    ("deposit zero", "", Reject.invalid_amount),
    ("withdraw more than available", "1 withdraw USD 800", Reject.insufficient_funds),
    ("withdraw from an unknown account", "", Reject.insufficient_funds),
    ("withdraw a negative amount", "", Reject.invalid_amount),
    ("withdraw an unknown asset", "", Reject.unknown_asset),
    ("set the mode of an unknown pair", "", Reject.unknown_pair),
]


def _command(name: str, line: str, ts_ns: int) -> Command:
    special: dict[str, Command] = {
        "deposit an unknown asset": Deposit(ts_ns, 1, 99, 5, "d"),
        "deposit zero": Deposit(ts_ns, 1, USD.index, 0, "d"),
        "withdraw from an unknown account": Withdraw(ts_ns, 55, USD.index, 1, "w"),
        "withdraw a negative amount": Withdraw(ts_ns, 1, XBT.index, -1, "w"),
        "withdraw an unknown asset": Withdraw(ts_ns, 1, -1, 1, "w"),
        "set the mode of an unknown pair": SetMode(ts_ns, 99, 1),
    }
    return special[name] if name in special else parse(line, ts_ns)


@pytest.mark.parametrize(("name", "line", "reason"), BAD_COMMANDS, ids=[n for n, _, _ in BAD_COMMANDS])
def test_bad_command_is_refused_and_changes_nothing(
    busy: Harness, name: str, line: str, reason: Reject
) -> None:
    before = digest(busy.engine)
    events = busy.apply(_command(name, line, busy.tick_ns()))
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    assert Reject(events[0].reason) == reason
    assert digest(busy.engine) == before


def test_refused_edit_and_amend_by_cl_ord_id_keep_the_order() -> None:
    h = Harness()
    h.fund(1, "1000", "10")
    run(h, "1 buy limit 1 @ 99.0 cl=x")
    before = digest(h.engine)
    h.apply(AmendOrder(h.tick_ns(), 1, cl_ord_id="x", order_qty_lots=lots("20")))
    h.apply(EditOrder(h.tick_ns(), 1, 1, volume_lots=lots("20")))
    assert digest(h.engine) == before


def test_cancel_with_some_unknown_targets_cancels_the_known_ones() -> None:
    h = Harness()
    h.fund(1)
    run(h, "1 buy limit 1 @ 99.0")
    events = h.apply(CancelOrders(h.tick_ns(), 1, order_nos=[1, 999], cl_ord_ids=["nope"]))
    assert not any(isinstance(e, Rejected) for e in events)
    assert h.s.orders == {}


def test_batch_refuses_each_bad_order_by_position() -> None:
    h = Harness()
    h.fund(1)
    good = _place_command(0, {})
    events = h.apply(
        PlaceBatch(
            h.tick_ns(),
            [
                good,
                _place_command(0, {"volume_lots": 0}),
                _place_command(0, {"price_ticks": px("98")}),
                _place_command(0, {"pair": 99}),
            ],
        )
    )
    rejected = [(e.batch_index, Reject(e.reason)) for e in events if isinstance(e, Rejected)]
    assert rejected == [(1, Reject.invalid_volume), (3, Reject.unknown_pair)]
    assert sorted(h.s.orders) == [1, 2]


# ------------------------------------------------------------------ tick size
def _toy_place(h: Harness, **kw: Any) -> list[Event]:
    args: dict[str, Any] = {"account": 1, "pair": 0, "side": 0, "ordertype": 1, "volume_lots": 2}
    args.update(kw)
    return h.apply(PlaceOrder(ts_ns=h.tick_ns(), **args))


def test_price_off_tick_is_refused() -> None:
    """A market whose tick is 5 price units: every price must be a multiple of 5."""
    h = Harness(toy_instruments(tick_ticks=5))
    quote, base = h.instruments.assets
    for account in (1, 2):
        h.deposit(account, quote, 10**9)
        h.deposit(account, base, 10**9)
    run_toy = [
        {"account": 2, "side": 1, "volume_lots": 1, "price_ticks": 100},
        {"account": 2, "volume_lots": 1, "price_ticks": 50},
        {"volume_lots": 1, "price_ticks": 100},  # trades: last price 100
    ]
    for kw in run_toy:
        _toy_place(h, **kw)
    assert h.s.last_price[0] == 100
    off_tick: list[dict[str, Any]] = [
        {"price_ticks": 101},  # limit
        {"ordertype": 3, "side": 1, "price_ticks": 93},  # stop trigger
        {"ordertype": 5, "side": 1, "price_ticks": 90, "price2_ticks": 89},  # stop-limit's limit
        {"ordertype": 3, "side": 1, "price_kind": int(PriceKind.minus), "price_ticks": 3},  # 100 - 3
    ]
    before = digest(h.engine)
    for kw in off_tick:
        events = _toy_place(h, **kw)
        assert [Reject(e.reason) for e in of_type(events, Rejected)] == [Reject.tick_size], kw
    assert digest(h.engine) == before
    order = accepted(_toy_place(h, price_ticks=45)).order_no
    before = digest(h.engine)
    for cmd in (
        lambda ts: AmendOrder(ts, 1, order, limit_price_ticks=47),
        lambda ts: EditOrder(ts, 1, order, price_ticks=46),
    ):
        events = h.apply(cmd(h.tick_ns()))
        assert [Reject(e.reason) for e in of_type(events, Rejected)] == [Reject.tick_size]
        assert digest(h.engine) == before
    # a percentage offset is rounded down to the tick: 7 % of 100 is 7, on the tick 5
    stop = accepted(
        _toy_place(h, ordertype=3, side=1, price_kind=int(PriceKind.minus), price_pct_ppm=7_000_000)
    )
    assert stop.stop_ticks == 95


def test_an_order_whose_raw_cost_passes_64_bits_is_refused_before_it_trades() -> None:
    """USDTUSD's raw cost unit is 10^-12 USD: 30M USDT at 1.0 is 3e19 raw, beyond UNITS_MAX. Such
    an order once traded, and its Fill could not be journaled (the batch failed, trading stopped)."""
    usdt = INSTRUMENTS.pair("USDTUSD")
    assert usdt is not None
    h = Harness(pair=usdt)
    h.deposit(1, usdt.quote, 10**8 * 10**usdt.quote.decimals)
    h.deposit(2, usdt.base, 10**8 * 10**usdt.base.decimals)
    one = 10**usdt.pair_decimals  # 1.0000 USD in ticks
    edge = UNITS_MAX // one  # the most lots whose raw cost at 1.0 fits
    before = digest(h.engine)
    for account, side in ((2, 1), (1, 0)):
        events = h.place(account, side, OrderType.limit, edge + 1, price_ticks=one)
        assert [Reject(e.reason) for e in of_type(events, Rejected)] == [Reject.invalid_volume]
    assert digest(h.engine) == before
    sell = h.limit(2, 1, edge, one)  # at the bound: accepted, and its fill is journaled
    fills = of_type(h.place(1, 0, OrderType.limit, edge, price_ticks=one), Fill)
    assert [f.cost_raw for f in fills] == [edge * one]
    events_encoder.encode(h.log)
    small = h.limit(2, 1, 10**usdt.lot_decimals * 100, one)  # 100 USDT
    assert small != sell
    events = h.apply(AmendOrder(h.tick_ns(), 2, small, order_qty_lots=edge + 1))
    assert [Reject(e.reason) for e in of_type(events, Rejected)] == [Reject.invalid_volume]
