"""Scenarios for two engine gaps: edit keeps the client order id, and scheduled orders meet the mode
of their start time. (Relative limit prices, once refused here, are test_engine_relative_prices.py's.)

Rows read as in test_engine_orders.py: commands in (enginedsl); trades, book, closes, rejects and
live orders out; the harness checks conservation, holds and the book after every command.
"""

from __future__ import annotations

import pytest
from tests.core.enginedsl import Scenario, run
from tests.core.enginekit import Harness, accepted, of_type

from abyssal.core.messages import (
    CloseReason,
    OrderAccepted,
    OrderClosed,
    OrderStarted,
)

F = "closed:filled"
REFUSED = "canceled:mode_refused"


def table(*rows: Scenario) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("scenario", rows, ids=[r.name for r in rows])


# ------------------------------------------------------------------ edit keeps cl_ord_id
@table(
    Scenario(
        "the replacement answers to the old client order id",
        """1 buy limit 1 @ 100.0 cl=abc
           1 edit #1 price=99.0
           1 cancel cl=abc""",
        closes={1: "canceled:replaced", 2: "canceled:user_requested"},
        open=[],
    ),
    Scenario(
        "the id stays taken after an edit",
        """1 buy limit 1 @ 100.0 cl=abc
           1 edit #1 price=99.0
           1 buy limit 1 @ 98.0 cl=abc""",
        rejects=["duplicate_cl_ord_id"],
        bids=["99 x 1"],
        closes={1: "canceled:replaced"},
        open=[2],
    ),
    Scenario(
        "a validate-only edit is not refused as a duplicate of itself, and changes nothing",
        """1 buy limit 1 @ 100.0 cl=abc
           1 edit #1 price=99.0 validate
           1 cancel cl=abc""",
        closes={1: "canceled:user_requested"},
        open=[],
    ),
    Scenario(
        "a refused edit leaves the id with the old order",
        """1 buy limit 1 @ 100.0 cl=abc
           1 edit #1 qty=0.00001
           1 cancel cl=abc""",
        rejects=["volume_below_minimum"],
        closes={1: "canceled:user_requested"},
        open=[],
    ),
    Scenario(
        "a replacement that fills at once frees the id",
        """1 buy limit 1 @ 100.0 cl=abc
           2 sell limit 1 @ 101.0
           1 edit #1 price=101.0
           1 buy limit 1 @ 90.0 cl=abc""",
        trades=["1 @ 101 #2<-#3"],
        bids=["90 x 1"],
        closes={1: "canceled:replaced", 2: F, 3: F},
        open=[4],
    ),
)
def test_edit_keeps_the_client_order_id(scenario: Scenario) -> None:
    scenario.check()


def test_edit_event_carries_the_client_order_id() -> None:
    h = Harness()
    h.fund(1)
    events = run(h, "1 buy limit 1 @ 100.0 cl=abc\n 1 edit #1 price=99.0 ref=7")
    new = of_type(events, OrderAccepted)[-1]
    assert (new.order_no, new.cl_ord_id, new.userref) == (2, "abc", 7)
    assert h.s.accounts[1].cl_ids == {"abc": 2}


# ------------------------------------------------------------------ scheduled orders and modes
SELL_100 = "2 sell limit 1 @ 100.0   // #1: what a crossing start would take\n"


@table(
    Scenario(
        "cancel_only at the start: cancelled, nothing trades",
        SELL_100
        + """1 buy limit 1 @ 100.0 start=5
             mode XBTUSD cancel_only
             tick 5""",
        asks=["100 x 1"],
        closes={2: REFUSED},
        open=[1],
    ),
    Scenario(
        "maintenance of the whole system at the start: cancelled",
        SELL_100
        + """1 buy limit 1 @ 100.0 start=5
             mode system maintenance
             tick 5""",
        asks=["100 x 1"],
        closes={2: REFUSED},
        open=[1],
    ),
    Scenario(
        "a resting order is not refused: only what starts meets the mode",
        """1 buy limit 1 @ 99.0 start=5
           1 buy limit 1 @ 98.0
           mode XBTUSD cancel_only
           tick 5""",
        bids=["98 x 1"],
        closes={1: REFUSED},
        open=[2],
    ),
    Scenario(
        "back online before the start: it trades as usual",
        SELL_100
        + """1 buy limit 1 @ 100.0 start=5
             mode XBTUSD cancel_only
             mode XBTUSD online
             tick 5""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: F},
        open=[],
    ),
    Scenario(
        "limit_only: a scheduled market order does not take",
        SELL_100
        + """1 buy market 1 start=5
             mode XBTUSD limit_only
             tick 5""",
        asks=["100 x 1"],
        closes={2: REFUSED},
        open=[1],
    ),
    Scenario(
        "limit_only: a scheduled stop is not armed",
        SELL_100
        + """1 sell stop-loss 1 @ 90.0 start=5
             mode system limit_only
             tick 5""",
        asks=["100 x 1"],
        closes={2: REFUSED},
        open=[1],
    ),
    Scenario(
        "limit_only: a scheduled limit order trades",
        SELL_100
        + """1 buy limit 1 @ 100.0 start=5
             mode XBTUSD limit_only
             tick 5""",
        trades=["1 @ 100 #1<-#2"],
        closes={1: F, 2: F},
        open=[],
    ),
    Scenario(
        "post_only: a scheduled limit order that would take is cancelled as post-only",
        SELL_100
        + """1 buy limit 1 @ 100.0 start=5
             mode XBTUSD post_only
             tick 5""",
        asks=["100 x 1"],
        closes={2: "canceled:post_only"},
        open=[1],
    ),
    Scenario(
        "post_only: a scheduled limit order that would not take rests",
        SELL_100
        + """1 buy limit 1 @ 99.0 start=5
             mode XBTUSD post_only
             tick 5""",
        bids=["99 x 1"],
        asks=["100 x 1"],
        open=[1, 2],
    ),
    Scenario(
        "post_only: a scheduled market order is cancelled",
        SELL_100
        + """1 buy market 1 start=5
             mode XBTUSD post_only
             tick 5""",
        asks=["100 x 1"],
        closes={2: REFUSED},
        open=[1],
    ),
)
def test_scheduled_orders_meet_the_mode_of_their_start(scenario: Scenario) -> None:
    scenario.check()


def test_a_refused_start_is_announced_then_closed_with_its_hold_released() -> None:
    h = Harness()
    h.fund(1)
    events = run(h, "1 buy limit 1 @ 100.0 start=5\n mode XBTUSD cancel_only\n tick 7")
    held = accepted(events).hold_minor
    started, closed = of_type(events, OrderStarted)[0], of_type(events, OrderClosed)[0]
    assert events.index(started) < events.index(closed)
    assert started.ts_ns == closed.ts_ns == accepted(events).start_ns  # at its own time, not the tick's
    assert (closed.reason, closed.released_minor) == (CloseReason.mode_refused, held)
    assert h.s.accounts[1].held == [0] * len(h.s.accounts[1].held)
