"""Settlement: the money of one fill (both sides, fees, house rounding) and what a hold must cover.

Rounding is in favour of the house and never lets a hold run short: a buyer pays the
*cumulative* ceiling of its order's raw cost (so the total never exceeds the ceiling its hold
was computed from), a seller receives the floor of each fill, and the difference (0 or 1 minor
unit) goes to the fee account. A fee paid out of a hold is rounded the same cumulative way;
a fee taken from proceeds is the ceiling of that fill's fee, capped at the proceeds.
"""

from __future__ import annotations

from typing import Final

from abyssal.core.accounts import DAY_NS, FEE_ACCOUNT
from abyssal.core.book import Order
from abyssal.core.instruments import COMPILED, PPM, Pair, ceil_div, times_ppm
from abyssal.core.messages import FLAG_FCIB, Event, Fill, OrderType
from abyssal.core.state import USD_SAME, EngineState

_TYPE_LIMIT: Final = int(OrderType.limit)
_FILL: Final = Fill  # compiled, a Final is a C static; an imported name is a dict lookup per use


def fee_from_hold(order: Order) -> bool:
    """Buyers pay a quote fee out of their hold; sellers pay a base fee (fcib) out of theirs."""
    return order.is_buy != bool(order.flags & FLAG_FCIB)


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
    """Move money for one fill and emit the Fill event. Holds shrink by exactly what is paid.

    Any fill; matching calls ``settle_quote_fees`` instead when neither side pays its fee in base.
    """
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


def settle_quote_fees(
    s: EngineState,
    taker: Order,
    maker: Order,
    price_ticks: int,
    qty_lots: int,
    ts_ns: int,
    events: list[Event],
) -> None:
    """``settle_fill`` when neither side pays its fee in base (no fcib), written out flat.

    Then the buyer pays a quote fee out of its hold (cumulative rounding) and the seller a quote
    fee out of the proceeds: the very amounts, balances and event of the general code, with the
    fee asset known and the per-side choices made once. When raw cost units are finer than the
    quote's minor unit (``cost_shift >= 0``), a fee's two roundings are one:
    ceil(ceil(x / PPM) / scale) == ceil(x / (PPM * scale)) for integers.
    """
    pair = s.pairs[taker.pair]
    taker_buys = taker.is_buy
    buyer, seller = (taker, maker) if taker_buys else (maker, taker)
    accounts = s.accounts
    taker_acct = accounts[taker.account]
    maker_acct = accounts[maker.account]
    assert taker_acct is not maker_acct, "a fill between two orders of one account"
    # 30-day volumes as of this fill (Account.volume_at), then the tiers' rates
    day = ts_ns // DAY_NS
    if maker_acct.cur_day != day:
        maker_acct.roll(day)
    if taker_acct.cur_day != day:
        taker_acct.roll(day)
    fees = pair.fees
    m_ppm = fees.rates[maker_acct.tier_of(fees)][0]
    t_ppm = fees.rates[taker_acct.tier_of(fees)][1]
    b_ppm, s_ppm = (t_ppm, m_ppm) if taker_buys else (m_ppm, t_ppm)
    raw = price_ticks * qty_lots
    cost_before = buyer.cost_raw
    cost_after = cost_before + raw
    fee_num_before = buyer.fee_num
    fee_num_after = fee_num_before + (times_ppm(raw, b_ppm) if COMPILED else raw * b_ppm)
    scale = pair.cost_scale
    if pair.cost_shift >= 0:
        unit = PPM * scale
        buyer_pays = ((-cost_before) // scale) - ((-cost_after) // scale)
        seller_gets = raw // scale
        b_fee = ((-fee_num_before) // unit) - ((-fee_num_after) // unit)
        s_fee = -(-(times_ppm(raw, s_ppm) if COMPILED else raw * s_ppm) // unit)
    else:
        buyer_pays = seller_gets = raw * scale
        b_fee = (ceil_div(fee_num_after, PPM) - ceil_div(fee_num_before, PPM)) * scale
        s_fee = ceil_div(raw * s_ppm, PPM) * scale
    if s_fee > seller_gets:
        s_fee = seller_gets
    assert buyer_pays >= seller_gets >= 0, "house rounding must be non-negative"
    assert b_fee >= 0, "a negative buyer fee"
    assert s_fee >= 0, "a negative seller fee"
    base_minor = qty_lots * pair.base_lot_factor
    quote, base = pair.quote.index, pair.base.index
    b_acct, s_acct = (taker_acct, maker_acct) if taker_buys else (maker_acct, taker_acct)
    # buyer: price and fee out of the hold, base in
    b_out = buyer_pays + b_fee
    bal = b_acct.bal[quote]
    assert b_out <= bal.held, "a fill overdrew the buyer's held quote"
    assert b_out <= buyer.hold_minor, "a fill overdrew the buy order's hold"
    bal.held -= b_out
    bal.total -= b_out
    b_acct.bal[base].total += base_minor
    buyer.cost_raw = cost_after
    buyer.fee_num = fee_num_after
    buyer.hold_minor -= b_out
    buyer.paid_minor += buyer_pays
    buyer.fee_paid_minor += b_fee
    # seller: base out of the hold, quote in less the fee
    bal = s_acct.bal[base]
    assert base_minor <= bal.held, "a fill overdrew the seller's held base"
    assert base_minor <= seller.hold_minor, "a fill overdrew the sell order's hold"
    bal.held -= base_minor
    bal.total -= base_minor
    s_acct.bal[quote].total += seller_gets - s_fee
    seller.cost_raw += raw
    seller.hold_minor -= base_minor
    seller.paid_minor += base_minor
    seller.fee_paid_minor += s_fee
    accounts[FEE_ACCOUNT].bal[quote].total += buyer_pays - seller_gets + b_fee + s_fee
    # quantities
    taker.remaining_lots -= qty_lots
    taker.visible_lots = taker.remaining_lots
    taker.filled_lots += qty_lots
    maker.remaining_lots -= qty_lots
    maker.visible_lots -= qty_lots
    maker.filled_lots += qty_lots
    # fee volume (Account.add_volume; both accounts are on this day already)
    index = pair.index
    volume = buyer_pays if s.usd_via[index] == USD_SAME else s.fee_volume(pair, buyer_pays)
    today = taker_acct.vol_today
    taker_acct.vol_today = volume if today < 0 else today + volume
    taker_acct.vol30 += volume
    today = maker_acct.vol_today
    maker_acct.vol_today = volume if today < 0 else today + volume
    maker_acct.vol30 += volume
    s.last_price[index] = price_ticks
    trade_no = s.trade_no[index] + 1
    s.trade_no[index] = trade_no
    t_fee, m_fee = (b_fee, s_fee) if taker_buys else (s_fee, b_fee)
    events.append(
        _FILL(
            trade_no, index, price_ticks, qty_lots, 0 if taker_buys else 1, taker.order_no,
            taker.account, maker.order_no, maker.account,
            taker.ordertype != _TYPE_LIMIT and taker.limit_ticks == 0, raw, buyer_pays,
            seller_gets, base_minor, buyer_pays - seller_gets, quote, t_fee, quote, m_fee,
            taker_buys, not taker_buys, ts_ns,
        )
    )  # fmt: skip


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
