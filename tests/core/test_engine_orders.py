"""Scenario tables for every order type, flag, time in force, cancel, amend, edit and mode.

Each row: commands in (enginedsl); trades, book, closes, rejects and live orders out. Accounts
1-4 start with 1,000,000 USD and 100 XBT; the harness checks conservation, holds, the book's
structure and the projected ledger after every command.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.core.enginedsl import Scenario, book_text, run
from tests.core.enginekit import UNLIMITED, Harness, accepted, digest, of_type, px, toy_instruments

from abyssal.core.messages import (
    FLAG_VIQC,
    CloseReason,
    Event,
    Fill,
    OrderAccepted,
    OrderClosed,
    OrderStarted,
    OrderStatus,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    PriceKind,
    Reject,
    Rejected,
    TimerArmed,
)

F = "closed:filled"
LAST_100 = """
    3 sell limit 0.1 @ 100.0     // #1 and #2 print a trade at 100: the last price
    4 buy limit 0.1 @ 100.0
"""
SETUP_TRADE = "0.1 @ 100 #1<-#2"


def table(*rows: Scenario) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("scenario", rows, ids=[r.name for r in rows])


# ------------------------------------------------------------------ limit and market
@table(
    Scenario("limit rests on an empty book", "1 buy limit 1 @ 100.0", bids=["100 x 1"], open=[1]),
    Scenario(
        "crossing limit fills at the maker's price",
        """2 sell limit 1 @ 100.0
           1 buy limit 1 @ 101.0""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: F},
        open=[],
    ),
    Scenario(
        "partial fills across levels, the rest rests at the limit",
        """2 sell limit 1 @ 100.0
           3 sell limit 1 @ 101.0
           2 sell limit 1 @ 102.0
           1 buy limit 2.5 @ 101.0""",
        trades=["1 @ 100 #1<-#4", "1 @ 101 #2<-#4"],
        bids=["101 x 0.5"],
        asks=["102 x 1"],
        closes={1: F, 2: F},
        open=[3, 4],
    ),
    Scenario(
        "price priority, then time priority",
        """2 sell limit 1 @ 100.0
           3 sell limit 1 @ 100.0
           4 sell limit 1 @ 99.5
           1 buy limit 2.5 @ 100.0""",
        trades=["1 @ 99.5 #3<-#4", "1 @ 100 #1<-#4", "0.5 @ 100 #2<-#4"],
        asks=["100 x 0.5"],
        closes={3: F, 1: F, 4: F},
        open=[2],
    ),
    Scenario(
        "IOC fills what crosses and cancels the rest",
        """2 sell limit 1 @ 100.0
           1 buy limit 2 @ 100.0 ioc""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: "canceled:ioc_remainder"},
        open=[],
    ),
    Scenario(
        "IOC that crosses nothing never rests",
        "1 buy limit 1 @ 100.0 ioc",
        closes={1: "canceled:ioc_remainder"},
        open=[],
    ),
    Scenario(
        "market buy walks levels up to the 1 % protection band",
        """2 sell limit 1 @ 100.0
           2 sell limit 1 @ 101.0
           2 sell limit 1 @ 101.1
           1 buy market 3""",
        trades=["1 @ 100 #1<-#4", "1 @ 101 #2<-#4"],
        asks=["101.1 x 1"],
        closes={1: F, 2: F, 4: "canceled:market_protection"},
        open=[3],
    ),
    Scenario(
        "nompp market buy has no protection band",
        """2 sell limit 1 @ 100.0
           2 sell limit 1 @ 101.0
           2 sell limit 1 @ 101.1
           1 buy market 3 nompp""",
        trades=["1 @ 100 #1<-#4", "1 @ 101 #2<-#4", "1 @ 101.1 #3<-#4"],
        closes={1: F, 2: F, 3: F, 4: F},
        open=[],
    ),
    Scenario(
        "market sell walks down to the band",
        """2 buy limit 1 @ 100.0
           2 buy limit 1 @ 99.0
           2 buy limit 1 @ 98.9
           1 sell market 3""",
        trades=["1 @ 100 #1<-#4", "1 @ 99 #2<-#4"],
        bids=["98.9 x 1"],
        closes={1: F, 2: F, 4: "canceled:market_protection"},
    ),
    Scenario("market order on an empty book", "1 buy market 1", closes={1: "canceled:no_liquidity"}),
    Scenario(
        "market order that empties the book",
        """2 sell limit 1 @ 100.0
           1 buy market 2""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: "canceled:no_liquidity"},
    ),
    Scenario(
        "viqc market buy is sized in quote",
        """2 sell limit 10 @ 100.0
           1 buy market 250 viqc""",
        trades=["2.5 @ 100 #1<-#2"],
        asks=["100 x 7.5"],
        closes={2: F},
    ),
    Scenario(
        "viqc market buy across levels spends exactly its budget",
        """2 sell limit 1 @ 100.0
           2 sell limit 1 @ 100.5
           1 buy market 150.25 viqc""",
        trades=["1 @ 100 #1<-#3", "0.5 @ 100.5 #2<-#3"],
        asks=["100.5 x 0.5"],
        closes={1: F, 3: F},
    ),
    Scenario(
        "viqc market buy stopped by the protection band with budget left is canceled, as a plain one",
        """2 sell limit 1 @ 100.0
           2 sell limit 1 @ 102.0
           1 buy market 150 viqc""",
        trades=["1 @ 100 #1<-#3"],
        asks=["102 x 1"],
        closes={1: F, 3: "canceled:market_protection"},
    ),
    Scenario(
        "viqc market buy that empties the book with budget left is canceled for lack of liquidity",
        """2 sell limit 1 @ 100.0
           1 buy market 150 viqc""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: "canceled:no_liquidity"},
    ),
    Scenario(
        "viqc market buy whose leftover cannot buy one more lot at the last price is filled",
        """2 sell limit 1 @ 60000.0
           1 buy market 60000.0004 viqc   // 0.0004 USD left; a lot (1e-8) costs 0.0006""",
        trades=["1 @ 60000 #1<-#2"],
        closes={1: F, 2: F},
    ),
    Scenario(
        "a scheduled market buy holds what the book cost when placed; at its start the hold caps it",
        """1 buy market 1 start=5          // #1: the book is empty, it holds nothing
           2 sell limit 1 @ 100.0          // #2
           tick 5""",
        asks=["100 x 1"],
        closes={1: "canceled:insufficient_funds"},
        open=[2],
    ),
    Scenario(
        "a scheduled market buy fills as far as its hold pays",
        """2 sell limit 0.5 @ 100.0        // #1
           1 buy market 1 start=5          // #2 holds 0.5 at 100.0 + fee
           3 sell limit 1 @ 100.0          // #3
           tick 5""",
        trades=["0.5 @ 100 #1<-#2"],
        asks=["100 x 1"],
        closes={1: F, 2: "canceled:insufficient_funds"},
        open=[3],
    ),
    Scenario(
        "validate-only places nothing",
        "1 buy limit 1 @ 100.0 validate",
        open=[],
    ),
)
def test_limit_and_market(scenario: Scenario) -> None:
    scenario.check()


# ------------------------------------------------------------------ icebergs
@table(
    Scenario(
        "iceberg shows only its display volume",
        "2 sell iceberg 3 @ 100.0 display 1",
        asks=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "iceberg refresh loses time priority",
        """2 sell iceberg 3 @ 100.0 display 1
           3 sell limit 1 @ 100.0
           1 buy limit 1.5 @ 100.0""",
        trades=["1 @ 100 #1<-#3", "0.5 @ 100 #2<-#3"],
        asks=["100 x 1.5"],
        closes={3: F},
        open=[1, 2],
    ),
    Scenario(
        "a large taker takes one iceberg chunk per fill",
        """2 sell iceberg 3 @ 100.0 display 1
           1 buy limit 2.5 @ 100.0""",
        trades=["1 @ 100 #1<-#2", "1 @ 100 #1<-#2", "0.5 @ 100 #1<-#2"],
        asks=["100 x 0.5"],
        closes={2: F},
        open=[1],
    ),
    Scenario(
        "an iceberg taker rests showing its display volume",
        """2 sell limit 0.5 @ 100.0
           1 buy iceberg 3 @ 100.0 display 1""",
        trades=["0.5 @ 100 #1<-#2"],
        bids=["100 x 1"],
        closes={1: F},
        open=[2],
    ),
    Scenario(
        "an amend may not take displayvol below 1/15 of the volume either",
        """1 buy iceberg 3 @ 100.0 display 1
           1 amend #1 display=0.1
           1 amend #1 qty=16""",
        rejects=["invalid_arguments", "invalid_arguments"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "displayvol below 1/15 of the volume is refused",
        "1 buy iceberg 16 @ 100.0 display 1",
        rejects=["invalid_arguments"],
        open=[],
    ),
)
def test_iceberg(scenario: Scenario) -> None:
    scenario.check()


def test_iceberg_refresh_queues_behind_later_orders() -> None:
    h, _ = Scenario(
        "",
        """2 sell iceberg 3 @ 100.0 display 1
           3 sell limit 1 @ 100.0
           1 buy limit 1 @ 100.0""",
    ).play()
    assert h.queue(px("100.0"), is_bid=False) == [2, 1]


# ------------------------------------------------------------------ triggered orders
@table(
    Scenario(
        "stop-loss sell fires when a trade prints at or below its trigger",
        LAST_100
        + """4 buy limit 1 @ 99.0          // #3
             4 buy limit 1 @ 98.0          // #4
             1 sell stop-loss 1 @ 99.0     // #5 waits
             3 sell limit 0.1 @ 99.0       // #6 prints 99: #5 fires""",
        trades=[SETUP_TRADE, "0.1 @ 99 #3<-#6", "0.9 @ 99 #3<-#5", "0.1 @ 98 #4<-#5"],
        bids=["98 x 0.9"],
        closes={1: F, 2: F, 6: F, 3: F, 5: F},
        open=[4],
    ),
    Scenario(
        "a stop ignores quotes; only trades fire it",
        LAST_100
        + """4 buy limit 1 @ 90.0
             1 sell stop-loss 1 @ 95.0
             3 sell limit 1 @ 94.0""",
        trades=[SETUP_TRADE],
        bids=["90 x 1"],
        asks=["94 x 1"],
        closes={1: F, 2: F},
        open=[3, 4, 5],
    ),
    Scenario(
        "take-profit sell fires when a trade prints at or above its trigger",
        LAST_100
        + """1 sell take-profit 1 @ 105.0   // #3
             3 sell limit 0.1 @ 105.0       // #4
             4 buy limit 2 @ 105.0          // #5 prints 105: #3 fires""",
        trades=[SETUP_TRADE, "0.1 @ 105 #4<-#5", "1 @ 105 #5<-#3"],
        bids=["105 x 0.9"],
        closes={1: F, 2: F, 4: F, 3: F},
        open=[5],
    ),
    Scenario(
        "stop-loss buy fires on a rise",
        LAST_100
        + """2 sell limit 1 @ 102.0          // #3
             1 buy stop-loss 1 @ 101.0       // #4
             2 sell limit 0.1 @ 101.0        // #5
             4 buy limit 0.1 @ 101.0         // #6 prints 101: #4 fires, buys at 102""",
        trades=[SETUP_TRADE, "0.1 @ 101 #5<-#6", "1 @ 102 #3<-#4"],
        closes={1: F, 2: F, 5: F, 6: F, 3: F, 4: F},
        open=[],
    ),
    Scenario(
        "stop-loss-limit rests as a limit once triggered",
        LAST_100
        + """1 sell stop-loss-limit 1 @ 99.0 limit 99.5   // #3
             4 buy limit 0.1 @ 99.0                     // #4
             3 sell limit 0.1 @ 99.0                    // #5 prints 99""",
        trades=[SETUP_TRADE, "0.1 @ 99 #4<-#5"],
        asks=["99.5 x 1"],
        closes={1: F, 2: F, 4: F, 5: F},
        open=[3],
    ),
    Scenario(
        "take-profit-limit buy fires on a fall, takes up to its limit, rests the rest",
        LAST_100
        + """2 sell limit 1 @ 96.0                          // #3
             1 buy take-profit-limit 2 @ 95.0 limit 96.0   // #4
             4 buy limit 0.1 @ 95.0                        // #5
             3 sell limit 0.1 @ 95.0                       // #6 prints 95""",
        trades=[SETUP_TRADE, "0.1 @ 95 #5<-#6", "1 @ 96 #3<-#4"],
        bids=["96 x 1"],
        closes={1: F, 2: F, 5: F, 6: F, 3: F},
        open=[4],
    ),
    Scenario(
        "trailing stop (absolute offset) follows the price up and fires on the pull-back",
        LAST_100
        + """1 sell trailing-stop 1 @ +5.0   // #3: trigger 95
             3 sell limit 0.1 @ 110.0        // #4
             4 buy limit 0.1 @ 110.0         // #5 prints 110: trigger 105
             4 buy limit 0.1 @ 105.1         // #6
             3 sell limit 0.1 @ 105.1        // #7 prints 105.1: not yet
             4 buy limit 2 @ 105.0           // #8
             3 sell limit 0.1 @ 105.0        // #9 prints 105: fires""",
        trades=[
            SETUP_TRADE,
            "0.1 @ 110 #4<-#5",
            "0.1 @ 105.1 #6<-#7",
            "0.1 @ 105 #8<-#9",
            "1 @ 105 #8<-#3",
        ],
        bids=["105 x 0.9"],
        closes={1: F, 2: F, 4: F, 5: F, 6: F, 7: F, 9: F, 3: F},
        open=[8],
    ),
    Scenario(
        "trailing stop with a percentage offset",
        LAST_100
        + """1 sell trailing-stop 1 @ +5%    // #3: trigger 95
             3 sell limit 0.1 @ 120.0        // #4
             4 buy limit 0.1 @ 120.0         // #5 prints 120: trigger 114
             4 buy limit 0.1 @ 114.1         // #6
             3 sell limit 0.1 @ 114.1        // #7 prints 114.1: not yet
             4 buy limit 2 @ 114.0           // #8
             3 sell limit 0.1 @ 114.0        // #9 prints 114: fires""",
        trades=[SETUP_TRADE, "0.1 @ 120 #4<-#5", "0.1 @ 114.1 #6<-#7", "0.1 @ 114 #8<-#9", "1 @ 114 #8<-#3"],
        bids=["114 x 0.9"],
        closes={1: F, 2: F, 4: F, 5: F, 6: F, 7: F, 9: F, 3: F},
        open=[8],
    ),
    Scenario(
        "trailing-stop-limit keeps its limit at an offset from the moving trigger",
        LAST_100
        + """1 sell trailing-stop-limit 1 @ +5.0 limit -1.0   // #3: trigger 95, limit 94
             3 sell limit 0.1 @ 110.0                         // #4
             4 buy limit 0.1 @ 110.0                          // #5 prints 110: trigger 105
             4 buy limit 0.1 @ 105.0                          // #6
             3 sell limit 0.1 @ 105.0                         // #7 prints 105: rests at 104""",
        trades=[SETUP_TRADE, "0.1 @ 110 #4<-#5", "0.1 @ 105 #6<-#7"],
        asks=["104 x 1"],
        closes={1: F, 2: F, 4: F, 5: F, 6: F, 7: F},
        open=[3],
    ),
    Scenario(
        "trailing-stop-limit with percentage offsets",
        LAST_100
        + """1 buy trailing-stop-limit 1 @ +10% limit +1%   // #3: trigger 110, limit 111.1
             2 sell limit 2 @ 112.0                         // #4
             4 buy limit 0.1 @ 90.0                         // #5
             3 sell limit 0.1 @ 90.0                        // #6 prints 90: trigger 99
             3 sell limit 0.1 @ 99.0                        // #7
             4 buy limit 0.1 @ 99.0                         // #8 prints 99: limit 98.9 + 1.1""",
        trades=[SETUP_TRADE, "0.1 @ 90 #5<-#6", "0.1 @ 99 #7<-#8"],
        bids=["100.1 x 1"],
        asks=["112 x 2"],
        closes={1: F, 2: F, 5: F, 6: F, 7: F, 8: F},
        open=[3, 4],
    ),
    Scenario(
        "cascade: one stop's trades fire the next",
        LAST_100
        + """4 buy limit 0.5 @ 99.0       // #3
             4 buy limit 1 @ 98.0         // #4
             4 buy limit 1 @ 97.0         // #5
             1 sell stop-loss 1 @ 99.0    // #6
             2 sell stop-loss 1 @ 98.0    // #7
             3 sell limit 0.1 @ 99.0      // #8 prints 99: #6 fires, prints 98: #7 fires""",
        trades=[
            SETUP_TRADE,
            "0.1 @ 99 #3<-#8",
            "0.4 @ 99 #3<-#6",
            "0.6 @ 98 #4<-#6",
            "0.4 @ 98 #4<-#7",
            "0.6 @ 97 #5<-#7",
        ],
        bids=["97 x 0.4"],
        closes={1: F, 2: F, 8: F, 3: F, 6: F, 4: F, 7: F},
        open=[5],
    ),
    Scenario(
        "a stop whose condition already holds fires at once",
        LAST_100
        + """4 buy limit 1 @ 99.0
             1 sell stop-loss 1 @ 101.0""",
        trades=[SETUP_TRADE, "1 @ 99 #3<-#4"],
        closes={1: F, 2: F, 3: F, 4: F},
        open=[],
    ),
    Scenario(
        "a relative trigger needs a last trade",
        "1 sell stop-loss 1 @ -5.0",
        rejects=["no_last_price"],
        open=[],
    ),
    Scenario(
        "a trailing stop needs a last trade",
        "1 sell trailing-stop 1 @ +5.0",
        rejects=["no_last_price"],
        open=[],
    ),
    Scenario(
        "a triggered stop-market buy stays within the band above its trigger",
        LAST_100
        + """2 sell limit 1 @ 103.0          // #3 beyond 1 % above the trigger
             1 buy stop-loss 1 @ 101.0       // #4
             2 sell limit 0.1 @ 101.0        // #5
             4 buy limit 0.1 @ 101.0         // #6 prints 101: #4 fires, nothing within 102.01""",
        trades=[SETUP_TRADE, "0.1 @ 101 #5<-#6"],
        asks=["103 x 1"],
        closes={1: F, 2: F, 5: F, 6: F, 4: "canceled:market_protection"},
        open=[3],
    ),
)
def test_triggered(scenario: Scenario) -> None:
    scenario.check()


def test_relative_trigger_prices_resolve_against_the_last_trade() -> None:
    _, events = Scenario(
        "",
        LAST_100
        + """1 sell stop-loss 1 @ -5.0            // #3: 95
             1 buy stop-loss 1 @ +2%              // #4: 102
             1 sell take-profit 1 @ #3.0          // #5: '#' goes the order's way: 103
             1 sell stop-loss-limit 1 @ 98.0 limit -0.5""",
    ).play()
    stops = {a.order_no: (a.stop_ticks, a.price_ticks) for a in of_type(events, OrderAccepted)}
    assert stops[3] == (px("95.0"), 0)
    assert stops[4][0] == px("102.0")
    assert stops[5] == (px("103.0"), 0)
    assert stops[6] == (px("98.0"), px("97.5"))


def test_triggered_event_reports_the_price_and_the_limit() -> None:
    _, events = Scenario(
        "",
        LAST_100
        + """1 sell stop-loss-limit 1 @ 99.0 limit 99.5
             4 buy limit 0.1 @ 99.0
             3 sell limit 0.1 @ 99.0""",
    ).play()
    (trig,) = of_type(events, OrderTriggered)
    assert (trig.order_no, trig.price_ticks, trig.limit_ticks) == (3, px("99.0"), px("99.5"))


def test_long_cascade_runs_in_constant_stack_depth() -> None:
    """1,500 stops one tick apart, each fired by the previous one's trade (a recursion would
    overflow Python's stack)."""
    h = Harness(UNLIMITED)  # 1,500 bids of one account on one pair
    h.checking = False  # the invariants are checked once, at the end
    n = 1_500
    for account in (1, 2, 3):
        h.fund(account, "100000000", "1000")
    for i in range(n):
        h.limit(2, 0, 10**6, px("1000.0") - i)  # 0.01 XBT bids from 1000.0 down, one tick apart
    run(h, "3 sell limit 0.01 @ 1000.1\n 3 buy limit 0.01 @ 1000.1")  # last = 1000.1
    for i in range(n - 1):
        h.place(1, 1, 3, 10**6, price_ticks=px("1000.0") - i)  # sell stop-loss at each bid
    events = run(h, "3 sell limit 0.01 @ 1000.0")
    assert len(of_type(events, OrderTriggered)) == n - 1
    assert h.book()[0] == []  # every bid was taken, the last one by the last stop
    h.check()


# ------------------------------------------------------------------ flags
@table(
    Scenario(
        "post-only rests when it would not take",
        """2 sell limit 1 @ 101.0
           1 buy limit 1 @ 100.0 post""",
        bids=["100 x 1"],
        asks=["101 x 1"],
        open=[1, 2],
    ),
    Scenario(
        "post-only at the touch is cancelled, it never takes",
        """2 sell limit 1 @ 101.0
           1 buy limit 1 @ 101.0 post""",
        asks=["101 x 1"],
        closes={2: "canceled:post_only"},
        open=[1],
    ),
    Scenario(
        "post-only joining the bid rests behind it",
        """2 buy limit 1 @ 100.0
           2 sell limit 1 @ 101.0
           1 buy limit 1 @ 100.0 post""",
        bids=["100 x 2"],
        asks=["101 x 1"],
        open=[1, 2, 3],
    ),
    Scenario("post-only market order is refused", "1 buy market 1 post", rejects=["invalid_arguments"]),
    Scenario(
        "fcib and fciq together are refused",
        "1 buy limit 1 @ 100.0 fcib fciq",
        rejects=["invalid_arguments"],
    ),
    Scenario("viqc on a sell is refused", "1 sell market 100 viqc", rejects=["invalid_arguments"]),
    Scenario("viqc on a limit is refused", "1 buy limit 100 @ 100.0 viqc", rejects=["invalid_arguments"]),
)
def test_flags(scenario: Scenario) -> None:
    scenario.check()


# ------------------------------------------------------------------ time in force and start
@table(
    Scenario(
        "GTD is alive until its expiry time",
        """1 buy limit 1 @ 100.0 gtd=5
           tick 4.999999999""",
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "GTD expires when a command with ts_ns == expire_ns arrives",
        """1 buy limit 1 @ 100.0 gtd=5
           tick 5""",
        closes={1: "expired:expired"},
        open=[],
    ),
    Scenario(
        "GTD expiry runs before the command that carries the time",
        """1 buy limit 1 @ 100.0 gtd=5
           tick 4.999999999
           2 sell market 1                  // runs at exactly 5 s""",
        closes={1: "expired:expired", 2: "canceled:no_liquidity"},
        open=[],
    ),
    Scenario(
        "GTD at or before now is refused",
        """tick 4.999999999
           1 buy limit 1 @ 100.0 gtd=5      // placed at exactly 5 s""",
        rejects=["invalid_arguments"],
        open=[],
    ),
    Scenario(
        "GTD on a partly filled order expires the rest",
        """1 buy limit 2 @ 100.0 gtd=5
           2 sell limit 0.5 @ 100.0
           tick 5""",
        trades=["0.5 @ 100 #1<-#2"],
        closes={2: F, 1: "expired:expired"},
    ),
    Scenario(
        "GTD on an untriggered stop",
        LAST_100
        + """1 sell stop-loss 1 @ 90.0 gtd=5
             tick 5""",
        trades=[SETUP_TRADE],
        closes={1: F, 2: F, 3: "expired:expired"},
        open=[],
    ),
    Scenario(
        "a scheduled order stays off the book until its start",
        """1 buy limit 1 @ 100.0 start=5
           tick 4.999999999""",
        open=[1],
    ),
    Scenario(
        "a scheduled order joins the book at its start",
        """1 buy limit 1 @ 100.0 start=5
           tick 5""",
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "a scheduled order that crosses trades at its start",
        """2 sell limit 1 @ 100.0
           1 buy limit 1 @ 100.0 start=5
           tick 5""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: F},
    ),
    Scenario(
        "a scheduled stop is armed only at its start",
        LAST_100
        + """4 buy limit 1 @ 99.0
             1 sell stop-loss 1 @ 101.0 start=5   // would fire at once if it were live
             tick 5""",
        trades=[SETUP_TRADE, "1 @ 99 #3<-#4"],
        closes={1: F, 2: F, 3: F, 4: F},
    ),
    Scenario(
        "a scheduled order can be cancelled before it starts",
        """1 buy limit 1 @ 100.0 start=5
           1 cancel #1
           tick 5""",
        closes={1: "canceled:user_requested"},
        open=[],
    ),
    Scenario(
        "expiry before start: the order never trades",
        """2 sell limit 1 @ 100.0
           1 buy limit 1 @ 100.0 start=6 gtd=5
           tick 6""",
        asks=["100 x 1"],
        closes={2: "expired:expired"},
        open=[1],
    ),
)
def test_time_in_force_and_start(scenario: Scenario) -> None:
    scenario.check()


def test_started_event_at_the_start_time() -> None:
    _, events = Scenario("", "1 buy limit 1 @ 100.0 start=5\n tick 7").play()
    (started,) = of_type(events, OrderStarted)
    assert started.ts_ns == accepted(events).start_ns  # fired at its own time, not the tick's
    assert accepted(events).status == OrderStatus.pending


# ------------------------------------------------------------------ ids, cancels, dead man's switch
@table(
    Scenario(
        "cl_ord_id is unique among an account's open orders",
        """1 buy limit 1 @ 100.0 cl=abc
           1 buy limit 1 @ 99.0 cl=abc""",
        rejects=["duplicate_cl_ord_id"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "a closed order's cl_ord_id may be used again",
        """1 buy limit 1 @ 100.0 cl=abc
           1 cancel cl=abc
           1 buy limit 1 @ 99.0 cl=abc""",
        bids=["99 x 1"],
        closes={1: "canceled:user_requested"},
        open=[2],
    ),
    Scenario(
        "cl_ord_id is per account",
        """1 buy limit 1 @ 100.0 cl=abc
           2 buy limit 1 @ 99.0 cl=abc""",
        bids=["100 x 1", "99 x 1"],
        open=[1, 2],
    ),
    Scenario(
        "cancel by userref cancels every order carrying it",
        """1 buy limit 1 @ 100.0 ref=7
           1 buy limit 1 @ 99.0 ref=7
           1 buy limit 1 @ 98.0 ref=8
           2 buy limit 1 @ 97.0 ref=7
           1 cancel ref=7""",
        bids=["98 x 1", "97 x 1"],
        closes={1: "canceled:user_requested", 2: "canceled:user_requested"},
        open=[3, 4],
    ),
    Scenario(
        "cancel by order number",
        """1 buy limit 1 @ 100.0
           1 buy limit 1 @ 99.0
           1 cancel #1""",
        bids=["99 x 1"],
        closes={1: "canceled:user_requested"},
        open=[2],
    ),
    Scenario(
        "another account's order is an unknown order",
        """1 buy limit 1 @ 100.0
           2 cancel #1""",
        rejects=["unknown_order"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "cancel-all cancels the account's orders of every kind",
        LAST_100
        + """1 buy limit 1 @ 99.0
             1 sell stop-loss 1 @ 90.0
             1 buy limit 1 @ 98.0 start=9
             2 buy limit 1 @ 97.0
             1 cancel-all""",
        trades=[SETUP_TRADE],
        bids=["97 x 1"],
        closes={1: F, 2: F, 3: "canceled:user_requested", 4: "canceled:user_requested"}
        | {5: "canceled:user_requested"},
        open=[6],
    ),
    Scenario(
        "dead man's switch: quiet until its deadline",
        """1 buy limit 1 @ 100.0
           tick 1
           1 dms 10                // armed at 1 s + 1 ns
           tick 11""",
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "dead man's switch fires on a Tick at its deadline",
        """1 buy limit 1 @ 100.0
           2 buy limit 1 @ 99.0
           tick 1
           1 dms 10
           tick 11.000000001""",
        bids=["99 x 1"],
        closes={1: "canceled:dead_mans_switch"},
        open=[2],
    ),
    Scenario(
        "re-arming the dead man's switch moves its deadline",
        """1 buy limit 1 @ 100.0
           tick 1
           1 dms 10
           tick 5
           1 dms 10
           tick 14""",
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "a zero timeout disarms the dead man's switch",
        """1 buy limit 1 @ 100.0
           tick 1
           1 dms 10
           1 dms 0
           tick 20""",
        bids=["100 x 1"],
        open=[1],
    ),
)
def test_ids_and_cancels(scenario: Scenario) -> None:
    scenario.check()


def test_dead_mans_switch_deadline_is_announced() -> None:
    h = Harness()
    h.fund(1)
    events = run(h, "tick 1\n 1 dms 10")
    (armed,) = of_type(events, TimerArmed)
    assert armed.trigger_ns == armed.ts_ns + 10 * 10**9
    assert h.engine.next_deadline_ns() == armed.trigger_ns


# ------------------------------------------------------------------ self-trade prevention
@table(
    Scenario(
        "STP cancel-newest (default): the arriving order is cancelled",
        """1 sell limit 1 @ 100.0
           1 buy limit 1 @ 100.0""",
        asks=["100 x 1"],
        closes={2: "canceled:self_trade"},
        open=[1],
    ),
    Scenario(
        "STP cancel-oldest: the resting order goes, the taker trades on",
        """1 sell limit 1 @ 100.0
           2 sell limit 1 @ 100.5
           1 buy limit 1 @ 100.5 stp=oldest""",
        trades=["1 @ 100.5 #2<-#3"],
        closes={1: "canceled:self_trade", 2: F, 3: F},
        open=[],
    ),
    Scenario(
        "STP cancel-both",
        """1 sell limit 1 @ 100.0
           2 sell limit 1 @ 100.5
           1 buy limit 1 @ 100.5 stp=both""",
        asks=["100.5 x 1"],
        closes={1: "canceled:self_trade", 3: "canceled:self_trade"},
        open=[2],
    ),
    Scenario(
        "STP acts when the own order is reached; earlier fills stand",
        """2 sell limit 1 @ 100.0
           1 sell limit 1 @ 100.5
           1 buy limit 2 @ 101.0""",
        trades=["1 @ 100 #1<-#3"],
        asks=["100.5 x 1"],
        closes={1: F, 3: "canceled:self_trade"},
        open=[2],
    ),
    Scenario(
        "STP cancel-oldest market buy goes on to dearer levels, and its hold covers them",
        """1 sell limit 1 @ 100.0
           2 sell limit 1 @ 100.5
           1 buy market 1 stp=oldest""",
        trades=["1 @ 100.5 #2<-#3"],
        closes={1: "canceled:self_trade", 2: F, 3: F},
        open=[],
    ),
    Scenario(
        "STP cancel-oldest removes every own order in the way",
        """1 sell limit 1 @ 100.0
           1 sell iceberg 3 @ 100.0 display 1
           2 sell limit 1 @ 100.0
           1 buy limit 0.5 @ 100.0 stp=oldest""",
        trades=["0.5 @ 100 #3<-#4"],
        asks=["100 x 0.5"],
        closes={1: "canceled:self_trade", 2: "canceled:self_trade", 4: F},
        open=[3],
    ),
)
def test_self_trade_prevention(scenario: Scenario) -> None:
    scenario.check()


# ------------------------------------------------------------------ amend and edit
@table(
    Scenario(
        "amend: a size cut keeps time priority",
        """1 buy limit 1 @ 100.0
           2 buy limit 1 @ 100.0
           1 amend #1 qty=0.5
           3 sell limit 0.5 @ 100.0""",
        trades=["0.5 @ 100 #1<-#3"],
        bids=["100 x 1"],
        closes={1: F, 3: F},
        open=[2],
    ),
    Scenario(
        "amend: a price change loses time priority, even back at the old price",
        """2 buy limit 1 @ 100.0
           1 buy limit 1 @ 100.0
           3 buy limit 1 @ 100.0
           1 amend #2 price=99.0
           1 amend #2 price=100.0
           4 sell limit 1.5 @ 100.0""",
        trades=["1 @ 100 #1<-#4", "0.5 @ 100 #3<-#4"],
        bids=["100 x 1.5"],
        closes={1: F, 4: F},
        open=[2, 3],
    ),
    Scenario(
        "amend: a size increase loses time priority",
        """1 buy limit 1 @ 100.0
           2 buy limit 1 @ 100.0
           3 buy limit 1 @ 100.0
           2 amend #2 qty=2
           4 sell limit 1.5 @ 100.0""",
        trades=["1 @ 100 #1<-#4", "0.5 @ 100 #3<-#4"],
        bids=["100 x 2.5"],
        closes={1: F, 4: F},
        open=[2, 3],
    ),
    Scenario(
        "amend below the filled quantity cancels the rest",
        """1 buy limit 2 @ 100.0
           2 sell limit 1 @ 100.0
           1 amend #1 qty=1""",
        trades=["1 @ 100 #1<-#2"],
        closes={2: F, 1: "canceled:amended_below_filled"},
        open=[],
    ),
    Scenario(
        "amend at or below the filled quantity cancels the rest, whatever the minimums",
        """1 buy limit 2 @ 100.0
           2 sell limit 1 @ 100.0
           1 amend #1 qty=0.00001""",
        trades=["1 @ 100 #1<-#2"],
        closes={2: F, 1: "canceled:amended_below_filled"},
        open=[],
    ),
    Scenario(
        "an amend below ordermin is refused and changes nothing (AddOrder would refuse it too)",
        """1 buy limit 0.01 @ 20000.0
           1 amend #1 qty=0.00001""",
        rejects=["volume_below_minimum"],
        bids=["20000 x 0.01"],
        open=[1],
    ),
    Scenario(
        "an amend whose price takes the cost below costmin is refused",
        """1 buy limit 0.001 @ 1000.0
           1 amend #1 price=400.0""",
        rejects=["cost_below_minimum"],
        bids=["1000 x 0.001"],
        open=[1],
    ),
    Scenario(
        "the minimums hold an amend's total quantity, not what is left of it",
        """1 buy limit 1 @ 100.0
           2 sell limit 0.006 @ 100.0
           1 amend #1 qty=0.00602 price=99.0""",
        trades=["0.006 @ 100 #1<-#2"],
        bids=["99 x 0.00002"],
        closes={2: F},
        open=[1],
    ),
    Scenario(
        "post-only amend that would take is refused and changes nothing",
        """2 sell limit 1 @ 101.0
           1 buy limit 1 @ 100.0
           1 amend #2 price=101.0 post""",
        rejects=["post_only_would_take"],
        bids=["100 x 1"],
        asks=["101 x 1"],
        open=[1, 2],
    ),
    Scenario(
        "an amend that crosses without post-only trades",
        """2 sell limit 1 @ 101.0
           1 buy limit 1 @ 100.0
           1 amend #2 price=101.0""",
        trades=["1 @ 101 #1<-#2"],
        closes={1: F, 2: F},
        open=[],
    ),
    Scenario(
        "amend an iceberg's display volume",
        """1 buy iceberg 3 @ 100.0 display 1
           1 amend #1 display=0.5""",
        bids=["100 x 0.5"],
        open=[1],
    ),
    Scenario(
        "a size cut does not refill a partly taken iceberg chunk",
        """1 buy iceberg 3 @ 100.0 display 1
           2 buy limit 1 @ 100.0
           3 sell limit 0.4 @ 100.0
           1 amend #1 qty=2.9""",
        trades=["0.4 @ 100 #1<-#3"],
        bids=["100 x 1.6"],
        closes={3: F},
        open=[1, 2],
    ),
    Scenario(
        "amend a stop's trigger",
        LAST_100
        + """4 buy limit 1 @ 97.0            // #3
             1 sell stop-loss 1 @ 95.0       // #4
             1 amend #4 trigger=98.0
             4 buy limit 0.1 @ 98.0          // #5
             3 sell limit 0.1 @ 98.0         // #6 prints 98: #4 fires""",
        trades=[SETUP_TRADE, "0.1 @ 98 #5<-#6", "1 @ 97 #3<-#4"],
        closes={1: F, 2: F, 5: F, 6: F, 3: F, 4: F},
        open=[],
    ),
    Scenario(
        "amend a stop-market buy's trigger moves the band its hold covers",
        LAST_100
        + """1 buy stop-loss 1 @ 101.0       // #3
             1 amend #3 trigger=110.0
             2 sell limit 2 @ 110.0          // #4
             4 buy limit 0.1 @ 110.0         // #5 prints 110: #3 fires""",
        trades=[SETUP_TRADE, "0.1 @ 110 #4<-#5", "1 @ 110 #4<-#3"],
        asks=["110 x 0.9"],
        closes={1: F, 2: F, 5: F, 3: F},
        open=[4],
    ),
    Scenario(
        "amend by cl_ord_id",
        """1 buy limit 1 @ 100.0 cl=x
           1 amend cl=x qty=0.5""",
        bids=["100 x 0.5"],
        open=[1],
    ),
    Scenario(
        "amend of a scheduled order leaves it off the book until its start",
        """1 buy limit 1 @ 100.0 start=5
           1 amend #1 qty=0.5 price=99.0
           tick 4""",
        open=[1],
    ),
    Scenario(
        "an amended scheduled order starts as amended",
        """1 buy limit 1 @ 100.0 start=5
           1 amend #1 qty=0.5 price=99.0
           tick 5""",
        bids=["99 x 0.5"],
        open=[1],
    ),
    Scenario(
        "an amended scheduled stop is armed at its start with its new trigger",
        LAST_100
        + """1 sell stop-loss 1 @ 90.0 start=5
             1 amend #3 trigger=95.0
             4 buy limit 1 @ 94.0
             tick 5
             4 buy limit 0.1 @ 95.0          // #5
             3 sell limit 0.1 @ 95.0         // #6 prints 95: #3 fires""",
        trades=[SETUP_TRADE, "0.1 @ 95 #5<-#6", "1 @ 94 #4<-#3"],
        closes={1: F, 2: F, 5: F, 6: F, 4: F, 3: F},
        open=[],
    ),
    Scenario(
        "trailing stops are not amendable",
        LAST_100
        + """1 sell trailing-stop 1 @ +5.0
             1 amend #3 qty=0.5""",
        trades=[SETUP_TRADE],
        closes={1: F, 2: F},
        rejects=["not_amendable"],
        open=[3],
    ),
    Scenario(
        "edit is cancel-replace: the new order gets a new number",
        """1 buy limit 1 @ 100.0
           1 edit #1 price=99.0""",
        bids=["99 x 1"],
        closes={1: "canceled:replaced"},
        open=[2],
    ),
    Scenario(
        "a refused edit leaves the old order as it was",
        """1 buy limit 1 @ 100.0
           1 edit #1 qty=0.00001""",
        rejects=["volume_below_minimum"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "validate-only edit changes nothing",
        """1 buy limit 1 @ 100.0
           1 edit #1 price=99.0 validate""",
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "edit of a partly filled order: the new order is for what is left",
        """1 buy limit 2 @ 100.0
           2 sell limit 0.5 @ 100.0
           1 edit #1 qty=3 price=99.0""",
        trades=["0.5 @ 100 #1<-#2"],
        bids=["99 x 2.5"],
        closes={2: F, 1: "canceled:replaced"},
        open=[3],
    ),
    Scenario(
        "edit that would need more funds than the account has is refused",
        """1 buy limit 1 @ 100.0
           1 edit #1 qty=1000000""",
        rejects=["insufficient_funds"],
        bids=["100 x 1"],
        open=[1],
    ),
)
def test_amend_and_edit(scenario: Scenario) -> None:
    scenario.check()


# ------------------------------------------------------------------ pair and system modes
@table(
    Scenario(
        "cancel_only: no new orders, cancels still work",
        """1 buy limit 1 @ 100.0
           mode XBTUSD cancel_only
           1 buy limit 1 @ 99.0
           1 cancel #1""",
        rejects=["market_cancel_only"],
        closes={1: "canceled:user_requested"},
        open=[],
    ),
    Scenario(
        "post_only mode: only post-only limit orders",
        """mode XBTUSD post_only
           1 buy limit 1 @ 100.0
           1 buy market 1
           1 buy limit 1 @ 100.0 post""",
        rejects=["market_post_only", "market_post_only"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "limit_only mode: no market or stop orders",
        """mode XBTUSD limit_only
           1 buy market 1
           1 sell stop-loss 1 @ 90.0
           1 buy limit 1 @ 100.0""",
        rejects=["market_limit_only", "market_limit_only"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "maintenance: nothing is accepted",
        """mode XBTUSD maintenance
           1 buy limit 1 @ 100.0""",
        rejects=["market_unavailable"],
    ),
    Scenario(
        "the stricter of the system and the pair mode applies",
        """mode system cancel_only
           mode XBTUSD post_only
           1 buy limit 1 @ 100.0 post""",
        rejects=["market_cancel_only"],
    ),
    Scenario(
        "the system mode covers every pair",
        """mode system limit_only
           1 buy market 1 pair=ETHUSD""",
        rejects=["market_limit_only"],
    ),
    Scenario(
        "back online",
        """mode XBTUSD cancel_only
           mode XBTUSD online
           1 buy limit 1 @ 100.0""",
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "amend is refused in cancel_only",
        """1 buy limit 1 @ 100.0
           mode XBTUSD cancel_only
           1 amend #1 qty=0.5""",
        rejects=["market_cancel_only"],
        bids=["100 x 1"],
        open=[1],
    ),
    Scenario(
        "post_only mode refuses an amend that would take",
        """2 sell limit 1 @ 101.0
           1 buy limit 1 @ 100.0
           mode XBTUSD post_only
           1 amend #2 price=101.0""",
        rejects=["post_only_would_take"],
        bids=["100 x 1"],
        asks=["101 x 1"],
        open=[1, 2],
    ),
)
def test_modes(scenario: Scenario) -> None:
    scenario.check()


def test_validate_only_changes_no_state() -> None:
    h = Harness()
    h.fund(1)
    run(h, "1 buy limit 1 @ 100.0")
    before = digest(h.engine)
    events = run(h, "1 buy limit 1 @ 99.0 validate cl=v\n 1 sell stop-loss 1 @ 90.0 validate")
    assert [e.validate_only for e in of_type(events, OrderAccepted)] == [True, True]
    assert digest(h.engine) == before
    assert book_text(h) == (["100 x 1"], [])


def _toy(tick_ticks: int = 1) -> tuple[Harness, Any]:
    h = Harness(toy_instruments(tick_ticks=tick_ticks))
    quote, base = h.instruments.assets
    for account in (1, 2, 3):
        h.deposit(account, quote, 10**9)
        h.deposit(account, base, 10**9)

    def place(account: int, side: int, t: OrderType, volume: int, **kw: Any) -> list[Event]:
        return h.apply(PlaceOrder(h.tick_ns(), account, 0, side, int(t), volume, **kw))

    return h, place


def test_trailing_stop_limit_buy_limit_never_falls_below_one_tick() -> None:
    """Trigger 5 above the low, limit 10 below the trigger: after a fall to 3 the trigger is 8
    and trigger + offset would be -2; the limit is clamped to one tick."""
    h, place = _toy()
    place(2, 1, OrderType.limit, 1, price_ticks=100)
    place(3, 0, OrderType.limit, 1, price_ticks=100)
    minus_10 = {"price2_kind": int(PriceKind.minus), "price2_ticks": 10}
    trailing = accepted(
        place(
            1, 0, OrderType.trailing_stop_limit, 1, price_kind=int(PriceKind.plus), price_ticks=5, **minus_10
        )
    ).order_no
    for price in (50, 3, 8):  # the trigger trails the low (3 -> 8) and fires at 8
        place(2, 1, OrderType.limit, 1, price_ticks=price)
        events = place(3, 0, OrderType.limit, 1, price_ticks=price)
    (trig,) = of_type(events, OrderTriggered)
    assert (trig.order_no, trig.price_ticks, trig.limit_ticks) == (trailing, 8, 1)
    assert h.book() == ([(1, 1)], [])


def test_trailing_stop_limit_offset_must_be_on_the_tick() -> None:
    _, place = _toy(tick_ticks=5)
    place(2, 1, OrderType.limit, 1, price_ticks=100)
    place(3, 0, OrderType.limit, 1, price_ticks=100)
    plus_5 = {"price_kind": int(PriceKind.plus), "price_ticks": 5}
    events = place(
        1, 1, OrderType.trailing_stop_limit, 1, price2_kind=int(PriceKind.minus), price2_ticks=3, **plus_5
    )
    assert [Reject(e.reason) for e in of_type(events, Rejected)] == [Reject.tick_size]
    events = place(
        1, 1, OrderType.trailing_stop_limit, 1, price2_kind=int(PriceKind.minus), price2_ticks=5, **plus_5
    )
    assert accepted(events).stop_ticks == 95


def test_quote_budget_too_small_for_one_lot_buys_nothing() -> None:
    _, place = _toy()
    place(2, 1, OrderType.limit, 5, price_ticks=100)
    events = place(1, 0, OrderType.market, 99, flags=FLAG_VIQC)  # 99 quote units, 100 per lot
    assert not of_type(events, Fill)
    (close,) = of_type(events, OrderClosed)
    assert (close.status, close.reason, close.released_minor) == (
        OrderStatus.canceled,
        CloseReason.insufficient_funds,
        99,
    )
