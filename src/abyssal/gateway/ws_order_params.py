"""Kraken's WebSocket order spellings turned into the REST parameter shape ``order_params`` parses.

WS v2 differs from REST AddOrder: numbers are JSON numbers (decoded to ``Decimal`` from their
text), ``order_userref`` not ``userref``, ``conditional`` not ``close``, ``stp_type`` with
underscores, ``triggers {price, price_type, reference}`` instead of ``price``/``price2``/
``trigger``, ``limit_price_type`` ``static | pct | quote`` instead of ``+``/``-``/``%`` prefixes,
RFC 3339 ``effective_time``/``expire_time``. Everything is translated to REST text, then the
one REST parser builds the command, so both doors accept and refuse exactly the same orders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from abyssal.core.instruments import Pair
from abyssal.core.messages import PriceKind
from abyssal.gateway.order_params import amend_price, ticks
from abyssal.gateway.params import (
    DECIMAL_CHARS_MAX,
    INVALID_PRICE,
    ParamError,
    invalid,
    parse_price,
    parse_rfc3339_ns,
)
from abyssal.gateway.ws_codec import Json

ORDER_FIELDS: Final = frozenset(
    {
        "order_type",
        "side",
        "order_qty",
        "symbol",
        "limit_price",
        "limit_price_type",
        "triggers",
        "time_in_force",
        "margin",
        "post_only",
        "reduce_only",
        "effective_time",
        "expire_time",
        "deadline",
        "cl_ord_id",
        "order_userref",
        "conditional",
        "display_qty",
        "fee_preference",
        "no_mpp",
        "stp_type",
        "cash_order_qty",
        "validate",
        "sender_sub_id",
        "token",
    }
)
BATCH_ORDER_FIELDS: Final = ORDER_FIELDS - {"symbol", "token", "deadline", "validate"}
TRIGGER_FIELDS: Final = frozenset({"reference", "price", "price_type"})
PRICE_TYPES: Final = ("static", "pct", "quote")
STP_TYPES: Final = {
    "cancel_newest": "cancel-newest",
    "cancel_oldest": "cancel-oldest",
    "cancel_both": "cancel-both",
}
FEE_PREFERENCE: Final = {"base": "fcib", "quote": "fciq"}
LIMIT_PRICED: Final = frozenset({"limit", "iceberg"})
TRIGGERED_MARKET: Final = frozenset({"stop-loss", "take-profit"})
TRIGGERED_LIMIT: Final = frozenset({"stop-loss-limit", "take-profit-limit"})
NS_PER_S: Final = 1_000_000_000


class FieldError(Exception):
    """A field Kraken's v2 parser refuses before reading values; ``text`` is its wording."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def check_fields(params: Json, allowed: frozenset[str], method: str) -> None:
    for name in params:
        if name not in allowed:
            raise FieldError(f"Unsupported field: '{name[:64]}' for the given msg type: {method}")


def number(params: Json, name: str) -> Decimal | None:
    """A JSON number as an exact Decimal; a string or a boolean is refused (Kraken's wording)."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise FieldError(f"{name.capitalize()} field must be a number_float")
    result = Decimal(value)
    if not result.is_finite():
        raise invalid(name)
    _, digits, exponent = result.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + abs(exponent) > DECIMAL_CHARS_MAX:  # e.g. 1e999999999: as text, a gigabyte
        raise invalid(name)
    return result


def text(value: Decimal) -> str:
    """Plain decimal text (``1E-5`` -> ``0.00001``) for the REST parsers."""
    return format(value, "f")


def _relative(value: Decimal, price_type: str, name: str) -> str:
    """A price of ``price_type``: static is absolute, quote and pct are offsets from the last trade."""
    if price_type == "static":
        if value < 0:
            raise invalid(name)
        return text(value)
    sign = "-" if value < 0 else "+"
    return sign + text(abs(value)) + ("%" if price_type == "pct" else "")


def amend_price_parts(pair: Pair, params: Json, name: str, type_name: str) -> tuple[int, int, int]:
    """(kind, ticks, pct_ppm) of an amend_order price, ticks -1 when absent: ``static``, or a
    ``quote``/``pct`` offset from the last trade (negative: below it), read as REST's AmendOrder
    reads ``-5`` or ``+1%``."""
    price_type = _price_type(params, type_name)
    value = number(params, name)
    if value is not None and price_type == "static":
        return int(PriceKind.abs), ticks(pair, value, INVALID_PRICE), -1  # negative: INVALID_PRICE
    spec = None if value is None else parse_price(_relative(value, price_type, name))
    if value is not None and spec is None:
        raise ParamError(INVALID_PRICE)
    return amend_price(pair, spec, name)


def _price_type(params: Json, name: str) -> str:
    value = params.get(name, "static")
    if not isinstance(value, str) or value not in PRICE_TYPES:  # a list or object is not hashable
        raise invalid(name)
    return value


def _flag(params: Json, name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise invalid(name)
    return value


def _seconds(params: Json, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    ns = parse_rfc3339_ns(value) if isinstance(value, str) and len(value) <= 64 else None
    if ns is None:
        raise invalid(name)
    return str(ns // NS_PER_S)


def rest_order(params: Json, method: str = "add order", symbol: str | None = None) -> dict[str, object]:
    """One WS order as REST AddOrder parameters (``symbol`` from a batch when given)."""
    check_fields(params, ORDER_FIELDS if symbol is None else BATCH_ORDER_FIELDS, method)
    p: dict[str, object] = {"pair": symbol if symbol is not None else params.get("symbol")}
    order_type = params.get("order_type")
    if order_type is not None and not isinstance(order_type, str):  # absent: AddOrder's own error
        raise invalid("order_type")
    p["ordertype"], p["type"] = order_type, params.get("side")
    flags: list[str] = []
    cash = number(params, "cash_order_qty")
    qty = number(params, "order_qty")
    if cash is not None:
        if qty is not None:
            raise invalid("cash_order_qty")
        p["volume"] = text(cash)
        flags.append("viqc")
    elif qty is not None:
        p["volume"] = text(qty)
    _prices(params, order_type, p)
    display = number(params, "display_qty")
    if display is not None:
        p["displayvol"] = text(display)
    tif = params.get("time_in_force")
    if tif is not None:
        if not isinstance(tif, str):
            raise invalid("time_in_force")
        p["timeinforce"] = tif.upper()
    if _flag(params, "post_only"):
        flags.append("post")
    if _flag(params, "no_mpp"):
        flags.append("nompp")
    preference = params.get("fee_preference")
    if preference is not None:
        if not isinstance(preference, str) or preference not in FEE_PREFERENCE:
            raise invalid("fee_preference")
        flags.append(FEE_PREFERENCE[preference])
    if flags:
        p["oflags"] = ",".join(flags)
    _options(params, p)
    return p


def _prices(params: Json, order_type: object, p: dict[str, object]) -> None:
    limit = number(params, "limit_price")
    limit_type = _price_type(params, "limit_price_type")
    triggers = params.get("triggers")
    trigger_price: Decimal | None = None
    trigger_type = "static"
    if triggers is not None:
        if not isinstance(triggers, dict):
            raise invalid("triggers")
        check_fields(triggers, TRIGGER_FIELDS, "triggers")
        trigger_price = number(triggers, "price")
        trigger_type = _price_type(triggers, "price_type")
        reference = triggers.get("reference", "last")
        if not isinstance(reference, str) or reference not in ("last", "index"):
            raise invalid("triggers")
        p["trigger"] = reference
    if order_type in LIMIT_PRICED:
        if limit is not None:
            p["price"] = _relative(limit, limit_type, "limit_price")
    elif order_type in TRIGGERED_MARKET or order_type in TRIGGERED_LIMIT:
        if trigger_price is not None:
            p["price"] = _relative(trigger_price, trigger_type, "triggers")
        if order_type in TRIGGERED_LIMIT and limit is not None:
            p["price2"] = _relative(limit, limit_type, "limit_price")
    elif order_type in ("trailing-stop", "trailing-stop-limit"):
        if trigger_price is not None:
            if trigger_type == "static" or trigger_price < 0:
                raise invalid("triggers")  # a trailing stop's trigger is a positive offset
            p["price"] = _relative(trigger_price, trigger_type, "triggers")
        if order_type == "trailing-stop-limit" and limit is not None:
            if limit_type == "static":
                raise invalid("limit_price_type")  # its limit is an offset from the trigger
            p["price2"] = _relative(limit, limit_type, "limit_price")
    elif limit is not None or trigger_price is not None:
        raise invalid("limit_price")  # a market order has no price


def _options(params: Json, p: dict[str, object]) -> None:
    for ws_name, rest_name in (("effective_time", "starttm"), ("expire_time", "expiretm")):
        seconds = _seconds(params, ws_name)
        if seconds is not None:
            p[rest_name] = seconds
    for name in ("deadline", "cl_ord_id"):
        if name in params:
            p[name] = params[name]
    if "order_userref" in params:
        p["userref"] = params["order_userref"]
    stp = params.get("stp_type")
    if stp is not None:
        if not isinstance(stp, str) or stp not in STP_TYPES:
            raise invalid("stp_type")
        p["stptype"] = STP_TYPES[stp]
    if _flag(params, "margin"):
        raise invalid("margin")  # spot only
    if params.get("conditional") not in (None, {}):
        raise invalid("conditional")  # one-triggers-other close orders are not offered
    p["reduce_only"] = _flag(params, "reduce_only")
    p["validate"] = _flag(params, "validate")
