"""AddOrder-style parameters to engine commands: the one place strings become ticks and lots."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from abyssal.core.instruments import Instruments, Pair, exact_units
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_FCIQ,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    ORDER_TYPE_BY_NAME,
    OrderType,
    PlaceOrder,
    PriceKind,
    Side,
    Stp,
    TimeInForce,
)
from abyssal.gateway.params import (
    INVALID_PRICE,
    ParamError,
    Params,
    PriceSpec,
    decimal_field,
    decimal_places,
    invalid,
    opt_bool,
    opt_int,
    opt_price,
    opt_str,
    opt_time,
    req_str,
    str_list,
)

FLAG_BY_NAME = {
    "post": FLAG_POST,
    "fcib": FLAG_FCIB,
    "fciq": FLAG_FCIQ,
    "nompp": FLAG_NOMPP,
    "viqc": FLAG_VIQC,
}
# Codes as plain ints bound once (on CPython 3.11 every ``Enum.member`` access is a slow
# EnumType.__getattr__, and ``int(member)`` a call).
STP_BY_NAME: Final = {
    "cancel-newest": int(Stp.cancel_newest),
    "cancel-oldest": int(Stp.cancel_oldest),
    "cancel-both": int(Stp.cancel_both),
}
TIF_BY_NAME: Final = {"gtc": int(TimeInForce.gtc), "ioc": int(TimeInForce.ioc), "gtd": int(TimeInForce.gtd)}
KIND: Final = {
    "abs": int(PriceKind.abs),
    "plus": int(PriceKind.plus),
    "minus": int(PriceKind.minus),
    "hash": int(PriceKind.hash),
}
_ORDER_TYPE_CODE: Final = {name: int(t) for name, t in ORDER_TYPE_BY_NAME.items()}
_ABS: Final = int(PriceKind.abs)
_BUY: Final = int(Side.buy)
_SELL: Final = int(Side.sell)
_MARKET: Final = int(OrderType.market)
_ICEBERG: Final = int(OrderType.iceberg)
_NEEDS_PRICE2: Final = frozenset(
    int(t) for t in (OrderType.stop_loss_limit, OrderType.take_profit_limit, OrderType.trailing_stop_limit)
)
_GTC: Final = int(TimeInForce.gtc)
_GTD: Final = int(TimeInForce.gtd)
PCT_DECIMALS_MAX = 6  # percent offsets are carried in millionths of a percent
CL_ORD_ID_CHARS_MAX = 36  # a long UUID; free text stops at CL_ORD_ID_TEXT_CHARS_MAX
CL_ORD_ID_TEXT_CHARS_MAX = 18
INT32_MAX = 2**31 - 1
EXPIRE_AHEAD_S_MAX = 31 * 86_400  # Kraken: up to one month ahead
EXPIRE_AHEAD_S_MIN = 5


# Kraken's three forms of cl_ord_id: a long UUID (32 hex digits in 8-4-4-4-12 groups), a short
# UUID (the same 32 hex digits without dashes), or free text of at most 18 characters. Hex digits
# in either case (RFC 9562 reads UUIDs case-insensitively); ids are kept and matched as sent.
_CL_ORD_ID_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
)
# Free text is visible ASCII ("!" to "~": no space, no control character) except the comma and
# the five characters HTML escapes. Kraken says only "free text" (the contract: ASCII); these are
# refused because an id must survive every place it travels unchanged: a comma splits it in our
# comma-joined lists (CancelOrderBatch's form ``cl_ord_ids``), spaces are trimmed there and a
# form's unescaped "+" arrives as a space, so the stored id would not be the one the client
# meant; markup and quotes are echoed back to client screens and logs, where no id needs them.
_CL_ORD_ID_TEXT_REFUSED: Final = frozenset(",<>&\"'")


def valid_cl_ord_id(text: str) -> bool:
    """Whether ``text`` is a ``cl_ord_id`` in one of Kraken's forms (the one rule for REST and WS)."""
    if len(text) > CL_ORD_ID_TEXT_CHARS_MAX:
        return _CL_ORD_ID_UUID.fullmatch(text) is not None
    return len(text) > 0 and all("!" <= ch <= "~" and ch not in _CL_ORD_ID_TEXT_REFUSED for ch in text)


def opt_cl_ord_id(p: Params) -> str | None:
    """A new order's ``cl_ord_id``: None when absent; any other form is ``Invalid arguments:cl_ord_id``.

    For new orders only (AddOrder, AddOrderBatch, WS add_order and batch_add, which go through
    ``place_order``). Lookups by ``cl_ord_id`` (AmendOrder, CancelOrder, OpenOrders, ...) read it
    as any bounded string: an id that no order can carry finds nothing and answers as an unknown
    one does, and an order placed before this rule keeps an id that can still be named.
    """
    value = opt_str(p, "cl_ord_id", chars_max=CL_ORD_ID_CHARS_MAX)
    if value is not None and not valid_cl_ord_id(value):
        raise invalid("cl_ord_id")
    return value


def find_pair(ins: Instruments, p: Params, name: str = "pair") -> Pair:
    text = req_str(p, name, error="EQuery:Unknown asset pair")
    pair = ins.pair(text)
    if pair is None:
        raise ParamError("EQuery:Unknown asset pair")
    return pair


def lots(pair: Pair, value: Decimal, field: str) -> int:
    """A positive volume in lots: exact at the pair's lot decimals and within 64 bits."""
    units = exact_units(value, pair.lot_decimals)
    if units is None or units <= 0:
        raise invalid(field)
    return units


def ticks(pair: Pair, value: Decimal, error: str) -> int:
    """A price in ticks: exact at the pair's price decimals, not negative, within 64 bits."""
    units = exact_units(value, pair.pair_decimals)
    if units is None and decimal_places(value) > pair.pair_decimals:
        raise ParamError(
            f"EOrder:Invalid price:{pair.id} price can only be specified up to {pair.pair_decimals} decimals."
        )
    if units is None or units < 0:  # beyond 64 bits, or negative
        raise ParamError(error)
    return units


def price_parts(pair: Pair, spec: PriceSpec | None, error: str) -> tuple[int, int, int]:
    """(kind, ticks, pct_ppm) for PlaceOrder; pct_ppm is millionths of a percent, -1 when absolute.

    Every priced order type may carry the relative forms (``+x``, ``-x``, ``#x``, each also as a
    percentage ``+x%``): they stay a kind and an offset, resolved by the engine, the only one that
    knows the last trade. A percentage needs its sign (Kraken documents ``%`` only as the suffix
    of a relative price; a bare ``5%`` names no direction) and stays below 100: ``-100%`` leaves no
    price at all, and one bound for every sign keeps this a parse rule (a limit buy at twice the
    last trade is a typo more often than an order).
    """
    if spec is None:
        return _ABS, 0, -1
    if spec.percent:
        if spec.kind == "abs" or decimal_places(spec.value) > PCT_DECIMALS_MAX or spec.value >= 100:
            raise ParamError(error)
        return KIND[spec.kind], 0, int(spec.value.scaleb(PCT_DECIMALS_MAX))
    return KIND[spec.kind], ticks(pair, spec.value, error), -1


def amend_price(pair: Pair, spec: PriceSpec | None, name: str) -> tuple[int, int, int]:
    """(kind, ticks, pct_ppm) of an AmendOrder ``limit_price``/``trigger_price``; ticks -1 when absent.

    Kraken's amend takes an absolute price or a ``+``/``-`` offset from the last trade, optionally
    in ``%``: the engine resolves it as it does a placed order's. ``#`` (whose direction follows
    the order type) is not among the amend's forms and is refused by name.
    """
    if spec is None:
        return _ABS, -1, -1
    if spec.kind == "hash":
        raise invalid(name)
    kind, value_ticks, pct_ppm = price_parts(pair, spec, INVALID_PRICE)
    assert value_ticks >= 0, "a given price reads as a change (-1 is unchanged)"
    assert pct_ppm < 0 or kind != _ABS, "a percentage is always relative"
    return kind, value_ticks, pct_ppm


def parse_flags(p: Params) -> int:
    flags = 0
    for name in str_list(p, "oflags", items_max=8):
        bit = FLAG_BY_NAME.get(name)
        if bit is None:
            raise invalid("oflags")
        flags |= bit
    return flags


def parse_time_ns(p: Params, name: str, now_ns: int) -> int:
    spec = opt_time(p, name)
    if spec is None or spec.seconds == 0:
        return 0
    seconds = now_ns // 10**9 + spec.seconds if spec.kind == "rel" else spec.seconds
    return seconds * 10**9


def place_order(
    ins: Instruments, p: Params, account: int, now_ns: int, pair: Pair | None = None
) -> PlaceOrder:
    """Parse one order (AddOrder body, or one element of AddOrderBatch with the batch's pair).

    An AddOrderBatch element may repeat the batch's pair (any of its names); another pair is refused,
    never silently traded on the batch's pair at that order's price.
    """
    if pair is None:
        pair = find_pair(ins, p)
    elif "pair" in p and find_pair(ins, p).index != pair.index:
        raise invalid("pair")  # AddOrderBatch: every order trades the batch's one pair
    side_text = req_str(p, "type")
    if side_text not in ("buy", "sell"):
        raise invalid("type")
    type_text = req_str(p, "ordertype")
    ordertype = _ORDER_TYPE_CODE.get(type_text)
    if ordertype is None:
        raise invalid("ordertype")
    flags = parse_flags(p)
    volume = decimal_field(p, "volume")
    if flags & FLAG_VIQC:
        quote_minor = pair.quote.minor_of(volume)
        if quote_minor is None:
            raise invalid("volume")
        volume_lots = quote_minor
    else:
        volume_lots = lots(pair, volume, "volume")
    price_kind, price_ticks, price_pct = price_parts(
        pair, opt_price(p, "price"), "EOrder:Invalid price:Invalid price argument"
    )
    p2 = opt_price(p, "price2")
    price2_kind, price2_ticks, price2_pct = price_parts(
        pair, p2, "EOrder:Invalid price:Invalid secondary price argument"
    )
    if ordertype != _MARKET and "price" not in p:
        raise invalid("price")
    if ordertype in _NEEDS_PRICE2 and p2 is None:
        raise invalid("price2")
    display = 0
    if ordertype == _ICEBERG:
        display = lots(pair, decimal_field(p, "displayvol"), "displayvol")
    tif_text = (opt_str(p, "timeinforce") or "GTC").lower()
    tif = TIF_BY_NAME.get(tif_text)
    if tif is None:
        raise invalid("timeinforce")
    start_ns = parse_time_ns(p, "starttm", now_ns)
    expire_ns = parse_time_ns(p, "expiretm", now_ns)
    if expire_ns:
        ahead_s = (expire_ns - now_ns) // 10**9
        if not EXPIRE_AHEAD_S_MIN <= ahead_s <= EXPIRE_AHEAD_S_MAX:
            raise invalid("expiretm")
        if tif == _GTC:
            tif = _GTD
    elif tif == _GTD:
        raise invalid("expiretm")
    userref = opt_int(p, "userref", value_min=-(2**31), value_max=INT32_MAX)
    cl_ord_id = opt_cl_ord_id(p)
    if userref is not None and cl_ord_id:
        raise invalid("cl_ord_id")
    stp = STP_BY_NAME.get(opt_str(p, "stptype") or "cancel-newest")
    if stp is None:
        raise invalid("stptype")
    leverage = opt_str(p, "leverage")
    if leverage not in (None, "", "none", "1", "1:1"):
        raise invalid("leverage")
    if opt_bool(p, "reduce_only", False):
        raise invalid("reduce_only")
    trigger = opt_str(p, "trigger") or "last"
    if trigger == "index":
        raise ParamError("EGeneral:Invalid arguments:Index unavailable")
    if trigger != "last":
        raise invalid("trigger")
    if "close" in p and p["close"] not in (None, "", {}):
        raise invalid("close")  # conditional close (OTO) is not offered
    return PlaceOrder(
        ts_ns=now_ns,
        account=account,
        pair=pair.index,
        side=_BUY if side_text == "buy" else _SELL,
        ordertype=ordertype,
        volume_lots=volume_lots,
        price_kind=price_kind,
        price_ticks=price_ticks,
        price_pct_ppm=price_pct,
        price2_kind=price2_kind,
        price2_ticks=price2_ticks,
        price2_pct_ppm=price2_pct,
        display_lots=display,
        flags=flags,
        tif=tif,
        start_ns=start_ns,
        expire_ns=expire_ns,
        userref=userref or 0,
        cl_ord_id=cl_ord_id or "",
        stp=stp,
        validate=opt_bool(p, "validate", False),
        price_text=_text(p, "price", pair, price_kind, price_ticks),
        price2_text=_text(p, "price2", pair, price2_kind, price2_ticks),
    )


def _text(p: Params, name: str, pair: Pair, kind: int, value_ticks: int) -> str:
    """How the order description shows a price: absolute at pair precision, relative as written."""
    raw = p.get(name)
    if raw is None:
        return ""
    if kind == _ABS and not (isinstance(raw, str) and raw.endswith("%")):
        return pair.price_text(value_ticks)
    return str(raw).replace(" ", "+")
