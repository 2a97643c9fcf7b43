"""Placing an order: checks, price resolution (absolute and relative) and the initial hold."""

from __future__ import annotations

from typing import Final

from abyssal.core.book import Order
from abyssal.core.instruments import PPM, UNITS_MAX, Pair, ceil_div
from abyssal.core.matching import walk_cost_raw
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_FCIQ,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    TRIGGERED_TYPES,
    CloseReason,
    Mode,
    OrderAccepted,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PriceKind,
    Reject,
    Side,
    Stp,
    TimeInForce,
)
from abyssal.core.settlement import fee_from_hold, required_hold
from abyssal.core.state import EngineState

# Enum members used for every order, bound once: on CPython 3.11 each ``OrderStatus.closed``
# goes through EnumType.__getattr__ (a method-wrapper per access, ~0.1 us; gone in 3.12).
_MODE_CANCEL_ONLY: Final = Mode.cancel_only
_MODE_LIMIT_ONLY: Final = Mode.limit_only
_MODE_MAINTENANCE: Final = Mode.maintenance
_MODE_POST_ONLY: Final = Mode.post_only
_PRICE_ABS: Final = PriceKind.abs
_PRICE_HASH: Final = PriceKind.hash
_PRICE_MINUS: Final = PriceKind.minus
_PRICE_PLUS: Final = PriceKind.plus
_REASON_FILLED: Final = CloseReason.filled
_REASON_IOC_REMAINDER: Final = CloseReason.ioc_remainder
_REASON_POST_ONLY: Final = CloseReason.post_only
_REASON_USER_REQUESTED: Final = CloseReason.user_requested
_SIDE_BUY: Final = Side.buy
_STATUS_CANCELED: Final = OrderStatus.canceled
_STATUS_CLOSED: Final = OrderStatus.closed
_STATUS_OPEN: Final = OrderStatus.open
_STATUS_PENDING: Final = OrderStatus.pending
_TIF_GTD: Final = TimeInForce.gtd
_TIF_IOC: Final = TimeInForce.ioc
_TYPE_ICEBERG: Final = OrderType.iceberg
_TYPE_MARKET: Final = OrderType.market
_TYPE_STOP_LOSS: Final = OrderType.stop_loss
_TYPE_STOP_LOSS_LIMIT: Final = OrderType.stop_loss_limit
_TYPE_TRAILING_STOP_LIMIT: Final = OrderType.trailing_stop_limit

LIMIT_PRICED: Final = (OrderType.limit, OrderType.iceberg)
STOP_LIMITS: Final = (OrderType.stop_loss_limit, OrderType.take_profit_limit, OrderType.trailing_stop_limit)
TRAILING: Final = (OrderType.trailing_stop, OrderType.trailing_stop_limit)
ICEBERG_DISPLAY_RATIO_MAX = 15  # displayvol must be at least volume / 15


def check_place(
    s: EngineState, c: PlaceOrder, pair: Pair, t: OrderType, is_buy: bool
) -> tuple[Reject, str] | None:
    mode = s.mode_of(c.pair)
    post = bool(c.flags & FLAG_POST)
    if mode == _MODE_MAINTENANCE:
        return Reject.market_unavailable, ""
    if mode == _MODE_CANCEL_ONLY:
        return Reject.market_cancel_only, ""
    if mode == _MODE_POST_ONLY and not (post and t in LIMIT_PRICED):
        return Reject.market_post_only, ""
    if mode == _MODE_LIMIT_ONLY and t not in LIMIT_PRICED:
        return Reject.market_limit_only, ""
    if c.volume_lots <= 0:
        return Reject.invalid_volume, "volume"
    if c.flags & FLAG_VIQC and not (is_buy and t == _TYPE_MARKET):
        return Reject.invalid_arguments, "viqc"
    if c.flags & FLAG_FCIB and c.flags & FLAG_FCIQ:
        return Reject.invalid_arguments, "oflags"
    if post and t not in LIMIT_PRICED and t not in STOP_LIMITS:
        return Reject.invalid_arguments, "oflags"
    if c.tif == _TIF_GTD and c.expire_ns <= c.ts_ns:
        return Reject.invalid_arguments, "expiretm"
    if t == _TYPE_ICEBERG and not (
        0 < c.display_lots <= c.volume_lots and c.display_lots * ICEBERG_DISPLAY_RATIO_MAX >= c.volume_lots
    ):
        return Reject.invalid_arguments, "displayvol"
    acct = s.accounts.get(c.account)
    if c.cl_ord_id and acct is not None and c.cl_ord_id in acct.cl_ids:
        return Reject.duplicate_cl_ord_id, ""
    limit = s.instruments.open_orders_per_pair_max
    if limit and acct is not None and acct.open_per_pair[c.pair] >= limit and may_stay_open(c, t):
        return Reject.orders_limit, ""
    return None


def may_stay_open(c: PlaceOrder, t: OrderType) -> bool:
    """Whether the order can outlive its command (rest, wait for its start or its trigger): only
    such an order counts against ``open_orders_per_pair_max``. A market or IOC order is done
    before the command is, so an account at the limit can still trade out of a position."""
    if c.start_ns > c.ts_ns or t in TRIGGERED_TYPES:
        return True
    return t != _TYPE_MARKET and c.tif != _TIF_IOC


def below_minimum(
    pair: Pair, volume_lots: int, ref_ticks: int, viqc: bool, top_ticks: int = 0
) -> Reject | None:
    """The pair's ``ordermin`` and ``costmin`` for an order of ``volume_lots`` at ``ref_ticks``,
    and the 64-bit rule at ``top_ticks``, the highest price it may rest or trade at (its limit,
    trigger or stop-limit price): a raw cost (ticks times lots) beyond ``UNITS_MAX`` would not fit
    the journal's integers, so the order is refused (``invalid_volume``) before it can trade.

    One rule for placing (``Engine._place``) and for amending (``amend.amend``, which passes the
    amended total and price). ``ref_ticks`` is the price the order is costed at: its limit, else
    its trigger, else the best opposite price (0 for a market order on an empty side: no cost
    check, as there is no price to cost it at). With ``viqc`` the volume is a quote amount in
    minor units, so only the cost minimum applies.
    """
    assert volume_lots > 0, "a volume of zero or less is refused by name before this"
    assert ref_ticks >= 0
    if viqc:
        return Reject.cost_below_minimum if pair.quote_minor_to_raw(volume_lots) < pair.costmin_raw else None
    if volume_lots < pair.ordermin_lots:
        return Reject.volume_below_minimum
    if ref_ticks and ref_ticks * volume_lots < pair.costmin_raw:
        return Reject.cost_below_minimum
    if max(ref_ticks, top_ticks) * volume_lots > UNITS_MAX:
        return Reject.invalid_volume
    return None


def resolve_prices(
    s: EngineState, c: PlaceOrder, pair: Pair, t: OrderType, is_buy: bool
) -> tuple[int, int, int, int, int] | tuple[Reject, str]:
    """(limit, stop, price2, trail_offset, trail_pct_ppm) in ticks, or a rejection."""
    last = s.last_price[c.pair]
    tick = pair.tick_ticks
    limit = stop = price2 = trail_off = 0
    trail_pct = -1
    if t == _TYPE_MARKET:
        return 0, 0, 0, 0, -1
    if t in LIMIT_PRICED:
        limit = c.price_ticks
        if c.price_kind != _PRICE_ABS:
            if c.price_ticks < 0:  # an offset is never negative: its sign is the kind
                return Reject.invalid_price, "price"
            resolved = resolve_limit(c.price_kind, c.price_ticks, c.price_pct_ppm, last, is_buy, tick)
            if resolved is None:
                return Reject.no_last_price, ""
            if resolved > UNITS_MAX:
                return Reject.invalid_price, "price"
            limit = resolved
        if limit <= 0:
            return Reject.invalid_price, "price"
    elif t in TRAILING:
        if c.price_kind != _PRICE_PLUS or c.price_ticks < 0:
            return Reject.invalid_price, "price"
        if not last:
            return Reject.no_last_price, ""
        trail_off, trail_pct = c.price_ticks, c.price_pct_ppm
        delta = offset(last, trail_off, trail_pct, tick)
        stop = last + delta if is_buy else last - delta
        if t == _TYPE_TRAILING_STOP_LIMIT:
            if c.price2_kind not in (_PRICE_PLUS, _PRICE_MINUS):
                return Reject.invalid_price, "price2"
            off2 = offset(stop, c.price2_ticks, c.price2_pct_ppm, tick)
            price2 = off2 if c.price2_kind == _PRICE_PLUS else -off2
            limit_at_trigger = stop + price2
            if limit_at_trigger <= 0:
                return Reject.invalid_price, "price2"
    else:
        up = (t in (_TYPE_STOP_LOSS, _TYPE_STOP_LOSS_LIMIT)) == is_buy
        resolved = resolve(c.price_kind, c.price_ticks, c.price_pct_ppm, last, up, tick)
        if resolved is None:
            return Reject.no_last_price, ""
        stop = resolved
        if t in STOP_LIMITS:
            r2 = resolve(c.price2_kind, c.price2_ticks, c.price2_pct_ppm, stop, is_buy, tick)
            if r2 is None or r2 <= 0:
                return Reject.invalid_price, "price2"
            price2 = r2
    for value in (limit, stop, price2 if t in STOP_LIMITS and t not in TRAILING else 0):
        if value < 0:
            return Reject.invalid_price, "price"
        if value % tick:
            return Reject.tick_size, ""
    if t == _TYPE_TRAILING_STOP_LIMIT and price2 % tick:  # a signed offset from the trigger
        return Reject.tick_size, ""
    if t not in LIMIT_PRICED and stop <= 0:
        return Reject.invalid_price, "price"
    return limit, stop, price2, trail_off, trail_pct


def best_opposite(s: EngineState, pair: Pair, is_buy: bool) -> int:
    book = s.books[pair.index]
    return book.asks.best_price() if is_buy else book.bids.best_price()


def initial_hold(s: EngineState, pair: Pair, o: Order, t: OrderType, viqc: bool) -> int:
    if not o.is_buy:
        return required_hold(pair, o, o.remaining_lots, 0)
    if viqc:
        fee = ceil_div(o.volume_lots * pair.fees.max_ppm, PPM) if fee_from_hold(o) else 0
        return o.volume_lots + fee
    if t == _TYPE_MARKET:
        best = best_opposite(s, pair, True)
        if not best:
            return 0
        cap = 0 if o.flags & FLAG_NOMPP else s.band_limit(pair, True, best)
        raw = walk_cost_raw(s, pair, True, o.volume_lots, cap, o.account)
        return hold_for_raw(pair, o, raw)
    if t == _TYPE_TRAILING_STOP_LIMIT:
        return required_hold(pair, o, o.remaining_lots, o.stop_ticks + o.price2_ticks)
    price = o.limit_ticks or o.price2_ticks
    return required_hold(pair, o, o.remaining_lots, price)


def hold_for_raw(pair: Pair, o: Order, raw: int) -> int:
    q = pair.raw_to_quote_ceil(raw)
    if fee_from_hold(o):
        q += pair.raw_to_quote_ceil(ceil_div(raw * pair.fees.max_ppm, PPM))
    return q


_ORDER_TYPES: Final = frozenset(int(t) for t in OrderType)
_ORDER_TYPE_BY_CODE: Final = {int(t): t for t in OrderType}
_SIDES: Final = frozenset(int(x) for x in Side)
_TIFS: Final = frozenset(int(x) for x in TimeInForce)
_STPS: Final = frozenset(int(x) for x in Stp)
PRICE_KINDS: Final = frozenset(int(x) for x in PriceKind)


def known_enums(c: PlaceOrder) -> bool:
    return (
        c.ordertype in _ORDER_TYPES
        and c.side in _SIDES
        and c.tif in _TIFS
        and c.stp in _STPS
        and c.price_kind in PRICE_KINDS
        and c.price2_kind in PRICE_KINDS
    )


def trail_offset(o: Order, tick: int) -> int:
    return offset(o.trail_ref_ticks, o.trail_offset, o.trail_pct_ppm, tick)


def offset(base_ticks: int, value: int, pct_ppm: int, tick: int) -> int:
    """An offset in ticks: absolute, or a percentage of the base rounded down to the tick."""
    if pct_ppm < 0:
        return value
    raw = base_ticks * pct_ppm // (100 * PPM)
    return raw - raw % tick


def resolve(kind: int, ticks: int, pct_ppm: int, base: int, up: bool, tick: int) -> int | None:
    """Absolute price from a (possibly relative) spec; '#' moves in the order's own direction."""
    if kind == PriceKind.abs:
        return ticks
    if not base:
        return None
    delta = offset(base, ticks, pct_ppm, tick)
    if kind == PriceKind.plus or (kind == PriceKind.hash and up):
        return base + delta
    return base - delta


def resolve_limit(kind: int, ticks: int, pct_ppm: int, last: int, is_buy: bool, tick: int) -> int | None:
    """A relative limit price against the last trade (None before the first trade).

    ``#`` moves away from the market, as for a take-profit: a buy below the last trade, a sell
    above it. An absolute offset is exact (off the tick, the caller refuses it as it would the
    same absolute price); a percentage is exact until the last step, then rounded to the tick on
    the passive side, down for a buy and up for a sell, so the order never pays more (or takes
    less) than the figure the client wrote. The result may be zero or negative: the caller
    refuses it.
    """
    assert kind != _PRICE_ABS, "an absolute price needs no resolving"
    assert ticks >= 0, "an offset's sign is its kind"
    assert tick >= 1
    if not last:
        return None
    up = kind == _PRICE_PLUS or (kind == _PRICE_HASH and not is_buy)
    if pct_ppm < 0:
        return last + ticks if up else last - ticks
    whole = 100 * PPM  # pct_ppm is millionths of a percent: 100 % of the last trade
    exact = last * (whole + pct_ppm if up else whole - pct_ppm)  # the price, times ``whole``
    if is_buy:
        price = exact // whole
        price -= price % tick
        assert price * whole <= exact, "a buy's limit is rounded down"
    else:
        price = -(-exact // whole)
        price += -price % tick
        assert price * whole >= exact, "a sell's limit is rounded up"
    assert price % tick == 0
    return price


def accepted_event(
    c: PlaceOrder,
    o: Order,
    order_no: int,
    hold_asset: int,
    hold: int,
    status: int,
    validate_only: bool,
    bi: int,
) -> OrderAccepted:
    limit = o.limit_ticks if o.ordertype not in STOP_LIMITS else o.price2_ticks
    return OrderAccepted(
        order_no, c.account, c.pair, c.side, c.ordertype, c.volume_lots, limit, o.stop_ticks,
        o.price2_ticks, c.display_lots, o.flags, c.tif, c.start_ns, c.expire_ns, c.userref,
        c.cl_ord_id, int(status), hold_asset, hold, c.ts_ns, c.price_text, c.price2_text,
        validate_only, bi,
    )  # fmt: skip
