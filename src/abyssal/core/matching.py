"""Matching: walk the opposite side in price-time priority, settle each fill, close orders.

The money of each fill (holds, fees, rounding) is ``core/settlement.py``'s.
"""

from __future__ import annotations

from typing import Any, Final

from abyssal.core.book import BookSide, Order
from abyssal.core.instruments import Pair
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_VIQC,
    CloseReason,
    Event,
    OrderClosed,
    OrderStatus,
    Stp,
)
from abyssal.core.settlement import affordable_lots, settle_fill, settle_quote_fees, viqc_lots
from abyssal.core.state import EngineState

# Enum members used for every order, bound once: on CPython 3.11 each ``OrderStatus.closed``
# goes through EnumType.__getattr__ (a method-wrapper per access, ~0.1 us; gone in 3.12).
_REASON_FILLED: Final = CloseReason.filled
_CLOSED: Final = OrderClosed  # compiled, a Final is a C static; an imported name a dict lookup per use
_STATUS_CLOSED: Final = OrderStatus.closed


def close_order(
    s: EngineState, order: Order, status: int, reason: int, ts_ns: int, events: list[Event]
) -> None:
    """Take a live order out of every index, release what it still holds, emit OrderClosed."""
    if order.resting:
        s.books[order.pair].side(order.is_buy).unlink(order)
    pair = s.pairs[order.pair]
    acct = s.accounts[order.account]
    hold_asset = pair.quote.index if order.is_buy else pair.base.index
    released = order.hold_minor
    if released:  # Account.release, inlined
        bal = acct.bal[hold_asset]
        assert released <= bal.held, "release beyond held"
        bal.held -= released
        order.hold_minor = 0
    no: Any = order.order_no  # compiled: boxed once for the delete and the event
    # only a live order closes, so it is in the index (``del``: no generic method call compiled)
    del s.orders[no]
    counts = acct.open_per_pair
    if counts:  # kept under an open-orders limit only (Account.open_per_pair)
        left = counts[order.pair] - 1
        assert left >= 0, "more orders closed than were open on the pair"
        counts[order.pair] = left
    room = acct.stale_room - 2  # one live order less, one stale number more in acct.open_nos
    acct.stale_room = room
    if room < 0:
        acct.prune()
    cold = order.cold  # the cold fields without property calls: a plain order has no cold part
    if cold is not None:
        if cold.cl_ord_id:
            del acct.cl_ids[cold.cl_ord_id]
        if not cold.triggered:
            s.trailing[order.pair].pop(no, None)  # heaps drop it lazily
    order.remaining_lots = 0
    events.append(
        _CLOSED(
            no,
            order.account,
            status,
            reason,
            order.filled_lots,
            released,
            hold_asset,
            ts_ns,
            order.pair,
            order.limit_ticks,
        )
    )


def match(s: EngineState, taker: Order, limit_ticks: int, ts_ns: int, events: list[Event]) -> bool:
    """Fill ``taker`` against the book up to ``limit_ticks`` (0: no limit).

    Returns False when self-trade prevention cancelled the taker (it is then closed).
    """
    book = s.books[taker.pair]
    opp: BookSide = book.asks if taker.is_buy else book.bids
    pair = s.pairs[taker.pair]
    is_buy = taker.is_buy
    viqc = bool(taker.flags & FLAG_VIQC)
    taker_fcib = taker.flags & FLAG_FCIB
    capped = is_buy and not viqc and taker.limit_ticks == 0  # a market buy: its hold is the cap
    prices = opp.prices  # the best price is the last key (asks negated): no level lookup to stop
    while taker.remaining_lots > 0:
        if not prices:
            break
        price = -prices[-1] if is_buy else prices[-1]
        if limit_ticks and (price > limit_ticks if is_buy else price < limit_ticks):
            break
        level = opp.levels[price]
        orders = level.orders
        while taker.remaining_lots > 0 and orders:
            maker = orders[0]
            if not maker.resting:
                orders.popleft()
                continue
            if maker.account == taker.account:
                if not _self_trade(s, taker, maker, ts_ns, events):
                    return False
                continue
            if viqc:  # remaining_lots is the quote budget left, not lots: size by what it buys
                qty = min(maker.visible_lots, viqc_lots(pair, taker, price))
                if qty == 0:
                    taker.remaining_lots = 0
                    return True
            else:
                qty = maker.visible_lots
                if qty > taker.remaining_lots:
                    qty = taker.remaining_lots
                if capped:
                    qty = affordable_lots(pair, taker, price, qty)
                    if qty == 0:
                        return True  # the hold is spent; the caller closes the rest
            if taker_fcib or maker.flags & FLAG_FCIB:  # a fee paid in base
                settle_fill(s, taker, maker, price, qty, ts_ns, events)
            else:  # the common case, flat
                settle_quote_fees(s, taker, maker, price, qty, ts_ns, events)
            if viqc:
                taker.remaining_lots = taker.volume_lots - pair.raw_to_quote_ceil(taker.cost_raw)
                assert taker.remaining_lots >= 0, "a quote-sized buy overspent its budget"
            level.visible_lots -= qty
            if maker.visible_lots == 0:
                orders.popleft()
                if maker.remaining_lots > 0:  # iceberg refresh: a new chunk at the back
                    chunk = min(maker.display_lots, maker.remaining_lots)
                    maker.visible_lots = chunk
                    level.visible_lots += chunk
                    orders.append(maker)
                else:
                    maker.resting = False
                    close_order(s, maker, _STATUS_CLOSED, _REASON_FILLED, ts_ns, events)
        if level.visible_lots == 0 and opp.levels.get(price) is level:
            orders.clear()
            opp.remove_level(level)
    return True


def _self_trade(s: EngineState, taker: Order, maker: Order, ts_ns: int, events: list[Event]) -> bool:
    """Apply the taker's STP mode. Returns False when the taker itself was cancelled."""
    mode = taker.stp
    if mode in (Stp.cancel_oldest, Stp.cancel_both):
        close_order(s, maker, OrderStatus.canceled, CloseReason.self_trade, ts_ns, events)
    if mode in (Stp.cancel_newest, Stp.cancel_both):
        close_order(s, taker, OrderStatus.canceled, CloseReason.self_trade, ts_ns, events)
        return False
    return True


def would_take(s: EngineState, order: Order, limit_ticks: int) -> bool:
    """Would a limit order at this price cross the opposite best (post-only check)?"""
    book = s.books[order.pair]
    best = book.asks.best_price() if order.is_buy else book.bids.best_price()
    if not best:
        return False
    return best <= limit_ticks if order.is_buy else best >= limit_ticks


def walk_cost_raw(
    s: EngineState, pair: Pair, is_buy: bool, volume_lots: int, limit_ticks: int, account: int = -1
) -> int:
    """Raw cost of taking up to ``volume_lots`` from the book within ``limit_ticks`` (0: none).

    Orders of ``account`` are skipped: self-trade prevention never fills against them, and with
    cancel-oldest the taker goes on to deeper (dearer) levels instead.
    """
    side = s.books[pair.index].asks if is_buy else s.books[pair.index].bids
    left = volume_lots
    cost = 0
    for i in range(len(side.prices) - 1, -1, -1):
        key = side.prices[i]
        level = side.levels[key if side.is_bid else -key]
        price = level.price_ticks
        if limit_ticks and (price > limit_ticks if is_buy else price < limit_ticks):
            break
        # icebergs refresh at the back of the same level, so count hidden volume too
        available = sum(o.remaining_lots for o in level.orders if o.resting and o.account != account)
        take = available if available < left else left
        cost += take * price
        left -= take
        if left == 0:
            break
    return cost
