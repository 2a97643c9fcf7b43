"""Relative limit prices (``-5.0``, ``+1%``, ``#2.5``) on limit and iceberg orders, and on AmendOrder.

The engine resolves them against the pair's last trade price in its own state: before the first
trade they are refused (``no_last_price``); a result of zero or less is ``invalid_price``; a
percentage is rounded to the tick on the passive side (down for a buy, up for a sell); an
absolute offset that lands off the tick is ``tick_size``, as the same absolute price would be.
Rows read as in test_engine_orders.py: commands in (enginedsl); trades, book, closes, rejects and
live orders out; the harness checks conservation, holds and the book after every command.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.core.enginedsl import Scenario, run
from tests.core.enginekit import Harness, accepted, digest, of_type, px, toy_instruments

from abyssal.core.messages import (
    AmendOrder,
    Event,
    OrderAccepted,
    OrderAmended,
    PlaceOrder,
    PriceKind,
    Reject,
    Rejected,
    events_encoder,
)

F = "closed:filled"
LAST_100 = """
    3 sell limit 0.1 @ 100.0     // #1 and #2 print a trade at 100: the last price
    4 buy limit 0.1 @ 100.0
"""
SETUP_TRADE = "0.1 @ 100 #1<-#2"
PLUS, MINUS, HASH = int(PriceKind.plus), int(PriceKind.minus), int(PriceKind.hash)


def table(*rows: Scenario) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("scenario", rows, ids=[r.name for r in rows])


def traded(name: str, script: str, **out: Any) -> Scenario:
    """A row that starts after the trade at 100 (orders #1 and #2, both filled)."""
    out.setdefault("closes", {})
    out["closes"] = {1: F, 2: F, **out["closes"]}
    return Scenario(name, LAST_100 + script, trades=[SETUP_TRADE, *out.pop("trades", [])], **out)


# ------------------------------------------------------------------ placing
@table(
    traded("minus on a buy: last trade less the offset", "1 buy limit 1 @ -5.0", bids=["95 x 1"], open=[3]),
    traded("plus on a sell: last trade plus the offset", "2 sell limit 1 @ +5.0", asks=["105 x 1"], open=[3]),
    traded("'#' on a buy goes below the market", "1 buy limit 1 @ #2.5", bids=["97.5 x 1"]),
    traded("'#' on a sell goes above the market", "2 sell limit 1 @ #2.5", asks=["102.5 x 1"]),
    traded("a percentage buy", "1 buy limit 1 @ -1%", bids=["99 x 1"]),
    traded("a percentage sell", "2 sell limit 1 @ +2%", asks=["102 x 1"]),
    traded("a relative iceberg shows its display", "1 buy iceberg 3 @ -2.0 display 1", bids=["98 x 1"]),
    traded("a relative iceberg sell", "2 sell iceberg 3 @ #1% display 1", asks=["101 x 1"]),
    traded(
        "a relative buy above the market takes",
        """2 sell limit 1 @ 101.0         // #3
           1 buy limit 1 @ +1.0          // #4 at 101: takes #3""",
        trades=["1 @ 101 #3<-#4"],
        closes={3: F, 4: F},
        open=[],
    ),
    traded(
        "the offset is from the latest trade",
        """2 sell limit 0.1 @ 101.0       // #3
           4 buy limit 0.1 @ 101.0       // #4: the last trade is now 101
           1 buy limit 1 @ -1.0          // #5 at 100""",
        trades=["0.1 @ 101 #3<-#4"],
        closes={3: F, 4: F},
        bids=["100 x 1"],
        open=[5],
    ),
    traded(
        "post-only relative that would take is canceled",
        """2 sell limit 1 @ 101.0         // #3
           1 buy limit 1 @ +2.0 post     // #4 at 102 would take""",
        asks=["101 x 1"],
        closes={4: "canceled:post_only"},
        open=[3],
    ),
    traded("a sell percentage over 100 is just a high price", "2 sell limit 1 @ +150%", asks=["250 x 1"]),
)
def test_relative_limits_resolve_against_the_last_trade(scenario: Scenario) -> None:
    scenario.check()


@table(
    Scenario("no last trade: a limit", "1 buy limit 1 @ -5.0", rejects=["no_last_price"], open=[]),
    Scenario("no last trade: a percentage", "2 sell limit 1 @ +1%", rejects=["no_last_price"], open=[]),
    Scenario(
        "no last trade: an iceberg", "1 sell iceberg 1 @ #2.0 display 0.1", rejects=["no_last_price"], open=[]
    ),
    traded("an offset that reaches zero", "1 buy limit 1 @ -100.0", rejects=["invalid_price"], open=[]),
    traded("an offset below zero", "2 sell limit 1 @ -150.0", rejects=["invalid_price"], open=[]),
    traded("a buy percentage of 100 below", "1 buy limit 1 @ -100%", rejects=["invalid_price"], open=[]),
    traded("a buy percentage over 100 below", "1 buy limit 1 @ -150%", rejects=["invalid_price"], open=[]),
    traded(
        "'#' on a buy over 100 % is below zero",
        "1 buy iceberg 1 @ #120% display 0.1",
        rejects=["invalid_price"],
    ),
)
def test_relative_limits_that_are_no_price_are_refused(scenario: Scenario) -> None:
    scenario.check()


@pytest.mark.parametrize(
    ("side", "price", "expected"),
    [
        ("buy", "-0.33%", "99.6"),  # 996.7 ticks: a buy rounds down
        ("sell", "-0.33%", "99.7"),  # a sell rounds up
        ("buy", "+0.33%", "100.3"),  # 1003.3 ticks
        ("sell", "+0.33%", "100.4"),
        ("buy", "#0.05%", "99.9"),  # 999.5 ticks, below for a buy
        ("sell", "#0.05%", "100.1"),  # 1000.5 ticks, above for a sell
        ("sell", "-99.99999%", "0.1"),  # 0.0001 ticks: a sell still asks one tick
    ],
)
def test_a_percentage_is_rounded_to_the_tick_on_the_passive_side(
    side: str, price: str, expected: str
) -> None:
    events = _events_of(LAST_100 + f"1 {side} limit 10 @ {price}    // #3")
    (placed,) = [e for e in of_type(events, OrderAccepted) if e.order_no == 3]
    assert placed.price_ticks == px(expected)


def test_a_buy_percentage_that_rounds_to_zero_is_refused() -> None:
    h = _funded()
    run(h, LAST_100)
    before = digest(h.engine)
    (reply,) = run(h, "1 buy limit 1 @ -99.99999%")  # 0.0001 ticks, rounded down: 0
    assert isinstance(reply, Rejected) and (reply.reason, reply.detail) == (Reject.invalid_price, "price")
    assert digest(h.engine) == before


def test_a_trade_on_another_pair_is_no_last_trade_here() -> None:
    h = _funded()
    run(h, "3 sell limit 1 @ 2000.00 pair=ETHUSD\n 4 buy limit 1 @ 2000.00 pair=ETHUSD")
    (reply,) = run(h, "1 buy limit 1 @ -5.0")
    assert isinstance(reply, Rejected) and reply.reason == Reject.no_last_price


def _toy() -> Harness:
    """A market whose tick is 5 price units, with a last trade at 100."""
    h = Harness(toy_instruments(tick_ticks=5))
    quote, base = h.instruments.assets
    for account in (1, 2):
        h.deposit(account, quote, 10**9)
        h.deposit(account, base, 10**9)
    _toy_apply(h, account=2, side=1, volume_lots=1, price_ticks=100)
    _toy_apply(h, volume_lots=1, price_ticks=100)
    assert h.s.last_price[0] == 100
    return h


def _toy_apply(h: Harness, **kw: Any) -> list[Event]:
    args: dict[str, Any] = {"account": 1, "pair": 0, "side": 0, "ordertype": 1, "volume_lots": 2}
    args.update(kw)
    return h.apply(PlaceOrder(ts_ns=h.tick_ns(), **args))


def test_off_tick_results_on_a_coarse_tick() -> None:
    h = _toy()
    # 7 % of 100 is 7: 93 goes down to 90 for a buy, up to 95 for a sell ('#' goes the passive way)
    buy = accepted(_toy_apply(h, price_kind=MINUS, price_pct_ppm=7_000_000))
    sell = accepted(_toy_apply(h, side=1, price_kind=PLUS, price_pct_ppm=7_000_000))
    hash_buy = accepted(_toy_apply(h, price_kind=HASH, price_pct_ppm=7_000_000))
    assert (buy.price_ticks, sell.price_ticks, hash_buy.price_ticks) == (90, 110, 90)
    # an absolute offset is exact: off the tick it is refused as the same absolute price is
    before = digest(h.engine)
    limit_97 = {"price_kind": MINUS, "price_ticks": 3}
    iceberg_112 = {"ordertype": 2, "display_lots": 1, "price_kind": PLUS, "price_ticks": 12}
    for kw in (limit_97, iceberg_112):
        (reply,) = _toy_apply(h, **kw)
        assert isinstance(reply, Rejected) and reply.reason == Reject.tick_size, kw
    assert digest(h.engine) == before
    assert accepted(_toy_apply(h, price_kind=MINUS, price_ticks=15)).price_ticks == 85


@pytest.mark.parametrize("kind", [PLUS, MINUS, HASH])
def test_a_refused_relative_limit_changes_nothing(kind: int) -> None:
    h = Harness()
    h.fund(1)
    before = digest(h.engine)
    for pct in (-1, 1_000_000):  # no last trade yet: an offset in ticks or in percent
        cmd = PlaceOrder(h.tick_ns(), 1, 0, 0, 1, 10**8, price_kind=kind, price_ticks=50, price_pct_ppm=pct)
        (reply,) = h.apply(cmd)
        assert isinstance(reply, Rejected) and reply.reason == Reject.no_last_price
    (reply,) = h.apply(PlaceOrder(h.tick_ns(), 1, 0, 0, 1, 10**8, price_kind=9, price_ticks=50))
    assert isinstance(reply, Rejected) and reply.reason == Reject.invalid_arguments
    assert digest(h.engine) == before


def test_the_resolved_price_is_in_the_events_and_a_replay_gives_the_same_bytes() -> None:
    """Commands carry only the offset: the engine resolves it from its own state, so the same
    commands on a fresh engine give byte-identical events and the same state."""
    script = (
        LAST_100
        + """
        1 buy limit 1 @ -0.33%              // #3 at 99.6
        2 sell iceberg 2 @ #1.5 display 1   // #4 at 101.5
        2 sell limit 0.1 @ 99.0             // #5 takes #3: the last trade is 99.6
        1 buy limit 1 @ +1%                 // #6 at 100.5 (100.596 rounded down)
        1 amend #3 price=-1.0               // 98.6
        1 amend #6 price=+1.9               // 101.5: takes #4's shown 1
    """
    )
    first, again = _funded(), _funded()
    events = run(first, script)
    assert events_encoder.encode(events) == events_encoder.encode(run(again, script))
    assert digest(first.engine) == digest(again.engine)
    placed = {e.order_no: e.price_ticks for e in of_type(events, OrderAccepted)}
    assert (placed[3], placed[4], placed[6]) == (px("99.6"), px("101.5"), px("100.5"))
    assert [e.price_ticks for e in of_type(events, OrderAmended)] == [px("98.6"), px("101.5")]
    assert first.s.last_price[0] == px("101.5")


def _funded() -> Harness:
    h = Harness()
    for account in (1, 2, 3, 4):
        h.fund(account)
    return h


def _events_of(script: str) -> list[Event]:
    return run(_funded(), script)


# ------------------------------------------------------------------ amending
@table(
    traded(
        "a relative amend moves a resting buy",
        """1 buy limit 1 @ 95.0          // #3
           1 amend #3 price=-2.0""",
        bids=["98 x 1"],
        open=[3],
    ),
    traded(
        "a percentage amend of a buy rounds down",
        """1 buy limit 1 @ 95.0
           1 amend #3 price=-0.33%""",
        bids=["99.6 x 1"],
    ),
    traded(
        "a percentage amend of a sell rounds up",
        """2 sell limit 1 @ 105.0
           2 amend #3 price=+0.33%""",
        asks=["100.4 x 1"],
    ),
    traded(
        "a relative amend of an iceberg",
        """1 buy iceberg 3 @ 95.0 display 1
           1 amend #3 price=-3.0""",
        bids=["97 x 1"],
    ),
    traded(
        "a relative amend that crosses trades",
        """2 sell limit 1 @ 101.0        // #3
           1 buy limit 1 @ 99.0          // #4
           1 amend #4 price=+1.0         // 101: takes #3""",
        trades=["1 @ 101 #3<-#4"],
        closes={3: F, 4: F},
        open=[],
    ),
    traded(
        "a relative amend that would take, post-only, is refused",
        """2 sell limit 1 @ 101.0
           1 buy limit 1 @ 99.0
           1 amend #4 price=+1.0 post""",
        bids=["99 x 1"],
        asks=["101 x 1"],
        rejects=["post_only_would_take"],
    ),
    traded(
        "a relative amend to zero or below is refused",
        """1 buy limit 1 @ 95.0
           1 amend #3 price=-100.0
           1 amend #3 price=-150%""",
        bids=["95 x 1"],
        rejects=["invalid_price", "invalid_price"],
    ),
    Scenario(
        "a relative amend before any trade is refused",
        """1 buy limit 1 @ 95.0
           1 amend #1 price=-1.0
           1 amend #1 price=+1%""",
        bids=["95 x 1"],
        rejects=["no_last_price", "no_last_price"],
        open=[1],
    ),
)
def test_relative_amends(scenario: Scenario) -> None:
    scenario.check()


def test_relative_amend_triggers_resolve_as_placed_stops_do() -> None:
    h = _funded()
    events = run(
        h,
        LAST_100
        + """1 sell stop-loss 1 @ 90.0                  // #3
             1 buy stop-loss-limit 1 @ 110.0 limit 111.0  // #4
             1 amend #3 trigger=-3.0                     // 97
             1 amend #4 trigger=+2%                       // 102
             1 amend #4 trigger=#1.0 price=+5.0          // '#' goes the stop's way: 101, limit 105
             1 amend #3 trigger=-100.0                   // refused: no price""",
    )
    amended = [(e.order_no, e.stop_ticks, e.price_ticks) for e in of_type(events, OrderAmended)]
    assert amended == [(3, px("97"), 0), (4, px("102"), px("111")), (4, px("101"), px("105"))]
    rejected = of_type(events, Rejected)
    assert [(r.reason, r.detail) for r in rejected] == [(Reject.invalid_price, "trigger_price")]
    assert h.s.orders[3].stop_ticks == px("97")


def test_relative_amend_on_a_coarse_tick() -> None:
    h = _toy()
    order = accepted(_toy_apply(h, price_ticks=50)).order_no
    before = digest(h.engine)
    off_tick = AmendOrder(h.tick_ns(), 1, order, limit_price_ticks=3, limit_price_kind=MINUS)  # 97
    (reply,) = h.apply(off_tick)
    assert isinstance(reply, Rejected) and reply.reason == Reject.tick_size
    (reply,) = h.apply(AmendOrder(h.tick_ns(), 1, order, limit_price_ticks=5, limit_price_kind=9))
    assert isinstance(reply, Rejected)
    assert (reply.reason, reply.detail) == (Reject.invalid_arguments, "price_kind")
    assert digest(h.engine) == before
    minus_7_pct = {"limit_price_ticks": 0, "limit_price_kind": MINUS, "limit_price_pct_ppm": 7_000_000}
    (amended,) = of_type(h.apply(AmendOrder(h.tick_ns(), 1, order, **minus_7_pct)), OrderAmended)
    assert amended.price_ticks == 90  # 93 rounded down to the tick for a buy
