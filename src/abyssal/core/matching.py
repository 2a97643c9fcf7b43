"""Matching: walk the opposite side in price-time priority, settle each fill, close orders.

Rounding is in favour of the house and never lets a hold run short: a buyer pays the
*cumulative* ceiling of its order's raw cost (so the total never exceeds the ceiling its hold
was computed from), a seller receives the floor of each fill, and the difference (0 or 1 minor
unit) goes to the fee account. A fee paid out of a hold is rounded the same cumulative way;
a fee taken from proceeds is the ceiling of that fill's fee, capped at the proceeds.
"""

from __future__ import annotations

from typing import Final

from abyssal.core.accounts import FEE_ACCOUNT
from abyssal.core.book import BookSide, Order
from abyssal.core.instruments import PPM, Pair, ceil_div
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_VIQC,
    CloseReason,
    Event,
    Fill,
    OrderClosed,
    OrderStatus,
    OrderType,
    Stp,
)
from abyssal.core.state import EngineState

# Enum members used for every order, bound once: on CPython 3.11 each ``OrderStatus.closed``
# goes through EnumType.__getattr__ (a method-wrapper per access, ~0.1 us; gone in 3.12).
_REASON_FILLED: Final = CloseReason.filled
_STATUS_CLOSED: Final = OrderStatus.closed


def fee_from_hold(order: Order) -> bool:
    """Buyers pay a quote fee out of their hold; sellers pay a base fee (fcib) out of theirs."""
    return order.is_buy != bool(order.flags & FLAG_FCIB)


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
    if released:
        acct.release(hold_asset, released)
        order.hold_minor = 0
    s.orders.pop(order.order_no, None)
    acct.open.pop(order.order_no, None)
    if order.cl_ord_id:
        acct.cl_ids.pop(order.cl_ord_id, None)
    if not order.triggered:
        s.trailing[order.pair].pop(order.order_no, None)  # heaps drop it lazily
    order.remaining_lots = 0
    events.append(
        OrderClosed(
            order.order_no,
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


def _fee_hold_part(pair: Pair, order: Order, ppm: int, raw: int, base_minor: int) -> int:
    """Cumulative fee increment for a fee paid from the hold."""
    if order.is_buy:
        before = pair.raw_to_quote_ceil(ceil_div(order.fee_num, PPM))
        order.fee_num += raw * ppm
        return pair.raw_to_quote_ceil(ceil_div(order.fee_num, PPM)) - before
    before = ceil_div(order.fee_num, PPM)
    order.fee_num += base_minor * ppm
    return ceil_div(order.fee_num, PPM) - before


def settle_fill(
    s: EngineState,
    taker: Order,
    maker: Order,
    price_ticks: int,
    qty_lots: int,
    ts_ns: int,
    events: list[Event],
) -> None:
    """Move money for one fill and emit the Fill event. Holds shrink by exactly what is paid."""
    pair = s.pairs[taker.pair]
    raw = price_ticks * qty_lots
    buyer, seller = (taker, maker) if taker.is_buy else (maker, taker)
    before = pair.raw_to_quote_ceil(buyer.cost_raw)
    buyer.cost_raw += raw
    buyer_pays = pair.raw_to_quote_ceil(buyer.cost_raw) - before
    seller.cost_raw += raw
    seller_gets = pair.raw_to_quote_floor(raw)
    base_minor = pair.lots_to_base_minor(qty_lots)
    assert buyer_pays >= seller_gets >= 0, "house rounding must be non-negative"
    taker_acct = s.accounts[taker.account]
    maker_acct = s.accounts[maker.account]
    m_ppm = pair.fees.rates_ppm(maker_acct.volume_at(ts_ns))[0]
    t_ppm = pair.fees.rates_ppm(taker_acct.volume_at(ts_ns))[1]
    fees: list[tuple[int, int, bool]] = []  # (asset, amount, from_hold) for taker, maker
    for order, ppm in ((taker, t_ppm), (maker, m_ppm)):
        fcib = bool(order.flags & FLAG_FCIB)
        asset = pair.base.index if fcib else pair.quote.index
        if fee_from_hold(order):
            fees.append((asset, _fee_hold_part(pair, order, ppm, raw, base_minor), True))
        elif order.is_buy:  # base fee out of the bought base
            fees.append((asset, min(ceil_div(base_minor * ppm, PPM), base_minor), False))
        else:  # quote fee out of the sale's proceeds
            fee = pair.raw_to_quote_ceil(ceil_div(raw * ppm, PPM))
            fees.append((asset, min(fee, seller_gets), False))
    quote, base = pair.quote.index, pair.base.index
    b_acct, s_acct = s.accounts[buyer.account], s.accounts[seller.account]
    b_fee = fees[0] if buyer is taker else fees[1]
    s_fee = fees[1] if buyer is taker else fees[0]
    # buyer: quote out of the hold, base in (less a base fee from proceeds)
    b_acct.debit_held(quote, buyer_pays)
    buyer.hold_minor -= buyer_pays
    buyer.paid_minor += buyer_pays
    if b_fee[2]:
        b_acct.debit_held(quote, b_fee[1])
        buyer.hold_minor -= b_fee[1]
        b_acct.credit(base, base_minor)
    else:
        b_acct.credit(base, base_minor - b_fee[1])
    # seller: base out of the hold, quote in (less a quote fee from proceeds)
    s_acct.debit_held(base, base_minor)
    seller.hold_minor -= base_minor
    seller.paid_minor += base_minor
    if s_fee[2]:
        s_acct.debit_held(base, s_fee[1])
        seller.hold_minor -= s_fee[1]
        s_acct.credit(quote, seller_gets)
    else:
        s_acct.credit(quote, seller_gets - s_fee[1])
    assert buyer.hold_minor >= 0 and seller.hold_minor >= 0, "a fill overdrew its order's hold"
    house = s.accounts[FEE_ACCOUNT]
    house.credit(quote, buyer_pays - seller_gets)
    house.credit(fees[0][0], fees[0][1])
    house.credit(fees[1][0], fees[1][1])
    buyer.fee_paid_minor += b_fee[1]
    seller.fee_paid_minor += s_fee[1]
    # quantities
    taker.remaining_lots -= qty_lots
    taker.visible_lots = taker.remaining_lots
    taker.filled_lots += qty_lots
    maker.remaining_lots -= qty_lots
    maker.visible_lots -= qty_lots
    maker.filled_lots += qty_lots
    volume = s.fee_volume(pair, buyer_pays)
    taker_acct.add_volume(ts_ns, volume)
    maker_acct.add_volume(ts_ns, volume)
    s.last_price[pair.index] = price_ticks
    s.trade_no[pair.index] += 1
    events.append(
        Fill(
            s.trade_no[pair.index],
            pair.index,
            price_ticks,
            qty_lots,
            0 if taker.is_buy else 1,
            taker.order_no,
            taker.account,
            maker.order_no,
            maker.account,
            taker.ordertype != OrderType.limit and taker.limit_ticks == 0,
            raw,
            buyer_pays,
            seller_gets,
            base_minor,
            buyer_pays - seller_gets,
            fees[0][0],
            fees[0][1],
            fees[1][0],
            fees[1][1],
            fees[0][2],
            fees[1][2],
            ts_ns,
        )
    )


def viqc_lots(pair: Pair, taker: Order, price_ticks: int) -> int:
    """How many lots a quote-sized market buy can still afford at this price."""
    budget_raw = pair.quote_minor_to_raw(taker.volume_lots) - taker.cost_raw
    return max(0, budget_raw // price_ticks)


def required_hold(pair: Pair, o: Order, remaining_lots: int, price_ticks: int) -> int:
    """What an order must hold to cover ``remaining_lots`` more at worst ``price_ticks``,
    given the cumulative rounding state of what it has filled so far."""
    max_ppm = pair.fees.max_ppm
    if o.is_buy:
        raw = price_ticks * remaining_lots
        q = pair.raw_to_quote_ceil(o.cost_raw + raw) - pair.raw_to_quote_ceil(o.cost_raw)
        if fee_from_hold(o):
            after = pair.raw_to_quote_ceil(ceil_div(o.fee_num + raw * max_ppm, PPM))
            q += after - pair.raw_to_quote_ceil(ceil_div(o.fee_num, PPM))
        return q
    base = pair.lots_to_base_minor(remaining_lots)
    if fee_from_hold(o):
        base += ceil_div(o.fee_num + base * max_ppm, PPM) - ceil_div(o.fee_num, PPM)
    return base


def affordable_lots(pair: Pair, buyer: Order, price_ticks: int, qty_max: int) -> int:
    """The most lots, up to ``qty_max``, a market buy can still pay for out of its hold.

    A market buy's hold is an estimate (the book walked when it was placed); the book may have
    changed since (a scheduled start, a self-trade that cancelled a resting order), so each fill
    is capped here rather than letting the hold run short.
    """
    if required_hold(pair, buyer, qty_max, price_ticks) <= buyer.hold_minor:
        return qty_max
    low, high = 0, qty_max  # invariant: low is affordable, high + 1 is not
    while low < high:
        mid = (low + high + 1) // 2
        if required_hold(pair, buyer, mid, price_ticks) <= buyer.hold_minor:
            low = mid
        else:
            high = mid - 1
    assert required_hold(pair, buyer, low, price_ticks) <= buyer.hold_minor
    return low


def match(s: EngineState, taker: Order, limit_ticks: int, ts_ns: int, events: list[Event]) -> bool:
    """Fill ``taker`` against the book up to ``limit_ticks`` (0: no limit).

    Returns False when self-trade prevention cancelled the taker (it is then closed).
    """
    book = s.books[taker.pair]
    opp: BookSide = book.asks if taker.is_buy else book.bids
    pair = s.pairs[taker.pair]
    is_buy = taker.is_buy
    viqc = bool(taker.flags & FLAG_VIQC)
    capped = is_buy and not viqc and taker.limit_ticks == 0  # a market buy: its hold is the cap
    while taker.remaining_lots > 0:
        level = opp.best_level()
        if level is None:
            break
        price = level.price_ticks
        if limit_ticks and (price > limit_ticks if is_buy else price < limit_ticks):
            break
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
            settle_fill(s, taker, maker, price, qty, ts_ns, events)
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
