"""The fast path of the two commands that dominate a book: a plain limit order and a one-order cancel.

Each function either does the whole job, with the very events and state the general code
(``Engine._place``, ``Engine._on_cancel_general``) would produce, or returns False having changed
nothing, and the general code runs. "Plain" is a GTC or IOC limit order with no flags, no
start time, an absolute price and no validate-only, in an online market, that passes every
check; anything else (including every refusal) takes the general path, so the reasons and
their order stay in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from abyssal.core.book import Order
from abyssal.core.instruments import COMPILED, PPM, UNITS_MAX, times_ppm
from abyssal.core.matching import close_order, match
from abyssal.core.messages import (
    FLAG_FCIQ,
    CancelCount,
    CancelOrders,
    CloseReason,
    Event,
    Mode,
    OrderAccepted,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PriceKind,
    Stp,
    TimeInForce,
)
from abyssal.core.order import OPENED_EPOCH_NS
from abyssal.core.state import EngineState

if TYPE_CHECKING:
    from abyssal.core.engine import Engine

_LIMIT: Final = int(OrderType.limit)
_GTC: Final = int(TimeInForce.gtc)
_IOC: Final = int(TimeInForce.ioc)
_ABS: Final = int(PriceKind.abs)
_ONLINE: Final = int(Mode.online)
_STP_MAX: Final = max(int(x) for x in Stp)
_STATUS_OPEN: Final = int(OrderStatus.open)  # as accepted_event() writes it
_STATUS_CLOSED: Final = OrderStatus.closed
_STATUS_CANCELED: Final = OrderStatus.canceled
_REASON_FILLED: Final = CloseReason.filled
_REASON_IOC: Final = CloseReason.ioc_remainder
_REASON_USER: Final = CloseReason.user_requested
# PlaceOrder's fields in order (its array_like wire format, so they do not move), as a tuple
_PlaceFields = tuple[
    Any, Any, Any, Any, int, Any, int, Any, int, int, int, int, Any, int, Any, int, Any, Any, str, int,
    bool, str, str,
]  # fmt: skip
_PLACE_FIELD_NAMES: Final = (
    "ts_ns", "account", "pair", "side", "ordertype", "volume_lots", "price_kind", "price_ticks",
    "price_pct_ppm", "price2_kind", "price2_ticks", "price2_pct_ppm", "display_lots", "flags", "tif",
    "start_ns", "expire_ns", "userref", "cl_ord_id", "stp", "validate", "price_text", "price2_text",
)  # fmt: skip
assert PlaceOrder.__struct_fields__ == _PLACE_FIELD_NAMES, "PlaceOrder changed: update _PlaceFields"
_CancelFields = tuple[int, int, list[int], list[str], list[int]]
assert CancelOrders.__struct_fields__ == ("ts_ns", "account", "order_nos", "cl_ord_ids", "userrefs")
_astuple: Final = msgspec.structs.astuple
# event classes bound once: compiled, a Final is a C static, an imported name a dict lookup per use
_ACCEPTED: Final = OrderAccepted
_CANCEL_COUNT: Final = CancelCount


def place_plain_limit(engine: Engine, c: PlaceOrder, events: list[Event]) -> bool:
    """Place a plain limit order (see the module doc) and match it; False: not plain, nothing done."""
    s = engine.s
    # every field in one C call: compiled, a getattr per field on a msgspec Struct costs more.
    # The fields that the OrderAccepted event repeats stay the command's int objects (typed Any)
    # beside their native values, so the event shares them instead of boxing new ones.
    (
        ts_box, account_box, pair_box, side_box, ordertype, volume_box, price_kind, price_box, _pct,
        price2_kind, _price2, _pct2, display_box, flags, tif_box, start_ns, expire_box, userref_box,
        cl_ord_id, stp, validate, price_text, price2_text,
    ) = cast(_PlaceFields, _astuple(c))  # fmt: skip
    ts_ns: int = ts_box
    account: int = account_box
    pair_index: int = pair_box
    side: int = side_box
    volume: int = volume_box
    price: int = price_box
    tif: int = tif_box
    expire_ns: int = expire_box
    userref: int = userref_box
    if ordertype != _LIMIT or flags or start_ns or validate:
        return False
    if (tif != _GTC and tif != _IOC) or price_kind != _ABS or price2_kind != _ABS:
        return False
    if not (0 <= side <= 1 and 0 <= stp <= _STP_MAX and volume > 0 and price > 0):
        return False
    if not 0 <= pair_index < len(s.pairs):
        return False
    if s.system_mode != _ONLINE or s.modes[pair_index] != _ONLINE:
        return False
    pair = s.pairs[pair_index]
    cost = price * volume  # raw: ticks times lots
    if price % pair.tick_ticks or volume < pair.ordermin_lots or not pair.costmin_raw <= cost <= UNITS_MAX:
        return False  # UNITS_MAX: the journal's 64-bit rule (placement.below_minimum refuses it)
    acct = s.accounts.get(account_box)
    if acct is None or (cl_ord_id and cl_ord_id in acct.cl_ids):
        return False
    counts = acct.open_per_pair  # empty unless an open-orders limit is set
    if counts and tif != _IOC and counts[pair_index] >= s.instruments.open_orders_per_pair_max:
        return False  # at the limit: placement.check_place refuses it by name
    is_buy = side == 0
    # the hold of required_hold() for a new order: no fills yet, so no cumulative rounding state
    if is_buy:
        raw = cost
        max_ppm = pair.fees.max_ppm
        fee_raw = -(-(times_ppm(raw, max_ppm) if COMPILED else raw * max_ppm) // PPM)
        if pair.cost_shift >= 0:  # pair.raw_to_quote_ceil of each, inlined
            scale = pair.cost_scale
            hold = -((-raw) // scale) - ((-fee_raw) // scale)
        else:
            hold = (raw + fee_raw) * pair.cost_scale
        hold_asset = pair.quote.index
    else:
        hold = volume * pair.base_lot_factor  # a sell without fcib pays its fee from the proceeds
        hold_asset = pair.base.index
    bal = acct.bal[hold_asset]
    if bal.total - bal.held < hold:
        return False
    assert hold > 0, "a plain order holds something"
    # accepted: from here on the general path's steps, in its order
    order_no = s.next_order_no
    s.next_order_no = order_no + 1
    o = Order(order_no, account, pair_index, is_buy, _LIMIT, volume, price)
    o.flags = FLAG_FCIQ
    o.trail_ref_ticks = s.last_price[pair_index]
    o.opened_rel_ns = ts_ns - OPENED_EPOCH_NS  # o.opened_ns = ts_ns, without the property call
    if tif or expire_ns or userref or cl_ord_id or stp:  # else the cold fields keep their defaults
        o.tif, o.expire_ns, o.userref, o.cl_ord_id, o.stp = tif, expire_ns, userref, cl_ord_id, stp
    bal.held += hold  # Account.hold, whose checks are the two just above
    o.hold_minor = hold
    key: Any = order_no  # compiled, boxed once: the index, the account's list and the event share it
    s.orders[key] = o
    acct.open_nos.append(key)
    acct.stale_room += 1
    if counts:
        counts[pair_index] += 1
    if cl_ord_id:
        acct.cl_ids[cl_ord_id] = order_no
    events.append(
        _ACCEPTED(
            key, account_box, pair_box, side_box, _LIMIT, volume_box, price_box, 0, 0, display_box,
            FLAG_FCIQ, tif_box, 0, expire_box, userref_box, cl_ord_id, _STATUS_OPEN, hold_asset, hold,
            ts_box, price_text, price2_text, False, -1,
        )
    )  # fmt: skip
    # Engine._execute for a limit order without post-only: match, then rest or close
    book = s.books[pair_index]
    own, opp = (book.bids, book.asks) if is_buy else (book.asks, book.bids)
    best = opp.prices  # the best price last, asks negated
    if not best or (-best[-1] > price if is_buy else best[-1] < price):  # match() would take nothing
        if tif == _IOC:
            close_order(s, o, _STATUS_CANCELED, _REASON_IOC, ts_ns, events)
        else:
            own.add(o)  # visible_lots == remaining_lots == volume_lots: nothing filled
        return True
    last_before = s.last_price[pair_index]
    if match(s, o, price, ts_ns, events):
        if o.remaining_lots == 0:
            close_order(s, o, _STATUS_CLOSED, _REASON_FILLED, ts_ns, events)
        elif tif == _IOC:
            close_order(s, o, _STATUS_CANCELED, _REASON_IOC, ts_ns, events)
        else:
            o.visible_lots = o.remaining_lots
            own.add(o)
    assert o.resting == (o.remaining_lots > 0), "a plain order either rests or is closed"
    if s.last_price[pair_index] != last_before and s.has_stops(pair_index):  # Engine._execute's
        engine._run_triggers(pair_index, ts_ns, events)
    return True


def cancel_one(s: EngineState, c: CancelOrders, events: list[Event]) -> bool:
    """A cancel of one open order by number; False: another kind of cancel, nothing done."""
    ts_ns, account, order_nos, cl_ord_ids, userrefs = cast(_CancelFields, _astuple(c))
    if len(order_nos) != 1 or cl_ord_ids or userrefs:
        return False
    acct = s.accounts.get(account)
    if acct is None:
        return False
    o = s.orders.get(order_nos[0])
    if o is None or o.account != account:
        return False
    close_order(s, o, _STATUS_CANCELED, _REASON_USER, ts_ns, events)
    assert not o.resting, "a cancelled order still rests"
    events.append(_CANCEL_COUNT(account, 1))
    return True
