"""Time: expiries, scheduled starts and dead man's switches that fall due as commands arrive.

A scheduled order (``starttm``) coming due meets the market mode of *that* moment, as a new order
would. Kraken refuses new orders by mode, and an order that starts trading is new to the book, so:

- ``maintenance`` or ``cancel_only``: the order is cancelled (``CloseReason.mode_refused``) and its
  hold released; it does not wait, because nothing tells its owner when (or whether) the market
  reopens, and an order that springs to life hours later is worse than a clear cancellation;
- ``limit_only``: market and stop orders are cancelled the same way; limit and iceberg go on;
- ``post_only``: market and stop orders are cancelled the same way; a limit or iceberg order is
  treated as post-only: it rests if it would not take, otherwise it is cancelled with reason
  ``post_only`` (as a post-only order is), so it never takes liquidity.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from abyssal.core.book import Order
from abyssal.core.matching import close_order, would_take
from abyssal.core.messages import CloseReason, Event, Mode, OrderStarted, OrderStatus, TimerArmed
from abyssal.core.placement import LIMIT_PRICED

if TYPE_CHECKING:
    from abyssal.core.engine import Engine

_MODE_ONLINE: Final = int(Mode.online)
_MODE_POST_ONLY: Final = int(Mode.post_only)
_MODE_LIMIT_ONLY: Final = int(Mode.limit_only)


def advance(engine: Engine, ts_ns: int, events: list[Event]) -> None:
    """Fire, in time order, everything due at or before ``ts_ns`` (each at its own time)."""
    s = engine.s
    while True:
        t_exp = s.expiries[0][0] if s.expiries else None
        t_start = s.starts[0][0] if s.starts else None
        dms_key = min(s.dms, key=lambda k: (s.dms[k], k)) if s.dms else None
        t_dms = s.dms[dms_key] if dms_key is not None else None
        due = [t for t in (t_exp, t_start, t_dms) if t is not None and t <= ts_ns]
        if not due:
            return
        first = min(due)
        assert first <= ts_ns, "fired something not yet due"
        if t_exp == first:
            _, no = heapq.heappop(s.expiries)
            o = s.orders.get(no)
            if o is not None and o.expire_ns == first:
                close_order(s, o, OrderStatus.expired, CloseReason.expired, first, events)
        elif t_start == first:
            _, no = heapq.heappop(s.starts)
            o = s.orders.get(no)
            if o is not None and o.start_ns == first:
                start(engine, o, first, events)
        else:
            assert dms_key is not None
            del s.dms[dms_key]
            events.append(TimerArmed(dms_key[0], dms_key[1], 0, first))
            engine._close_all(dms_key[0], CloseReason.dead_mans_switch, first, events)


def start(engine: Engine, o: Order, ts_ns: int, events: list[Event]) -> None:
    """A scheduled order's start time has come: it goes live, unless the market mode refuses it."""
    assert o.start_ns == ts_ns, "started at another time than its own"
    s = engine.s
    o.start_ns = 0
    events.append(OrderStarted(o.order_no, o.account, ts_ns))
    refusal = start_refusal(engine, o)
    if refusal is not None:
        close_order(s, o, OrderStatus.canceled, refusal, ts_ns, events)
        assert o.order_no not in s.orders, "a refused start left the order live"
        return
    engine._activate(o, ts_ns, events)


def start_refusal(engine: Engine, o: Order) -> int | None:
    """Why the current mode refuses this order going live now (a CloseReason), or None."""
    s = engine.s
    mode = s.mode_of(o.pair)
    if mode == _MODE_ONLINE:
        return None
    limit_priced = o.ordertype in LIMIT_PRICED
    if mode == _MODE_LIMIT_ONLY:
        return None if limit_priced else int(CloseReason.mode_refused)
    if mode == _MODE_POST_ONLY:
        if not limit_priced:
            return int(CloseReason.mode_refused)
        return int(CloseReason.post_only) if would_take(s, o, o.limit_ticks) else None
    return int(CloseReason.mode_refused)  # cancel_only, maintenance
