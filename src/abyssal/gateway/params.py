"""Request parameters read field by field, strictly (bodies.py turns the raw bytes into a mapping).

Readers raise ``ParamError`` whose ``kraken`` attribute is the exact string for the ``error`` array; the
REST layer catches it and answers HTTP 200. Unless a reader is given ``error=``, a bad or missing field
``name`` gives ``EGeneral:Invalid arguments:<name>``. Decisions (doc §1.5, §2.2):

- Body kind by media type (``application/json`` or ``application/x-www-form-urlencoded``, parameters
  such as ``charset`` ignored), else JSON when the body starts with ``{``. Bodies must be UTF-8.
- Form values are ``str``. Nested keys ``close[price]=1`` become ``{"close": {"price": "1"}}`` (any
  depth up to ``KEY_DEPTH_MAX``); a level whose keys are exactly ``0..n-1`` (ccxt's ``a[0]=x&a[1]=y``)
  becomes a list.
- A repeated key (form or JSON object) is refused with ``EGeneral:Invalid arguments:<key>``: no client
  repeats keys, and "first wins" versus "last wins" is exactly the ambiguity that lets a signed field be
  read two ways. JSON ``null`` counts as absent.
- Money (``decimal_field``, ``opt_price``) accepts a decimal *string*, or a JSON integer (exact, and what
  python-kraken-sdk's own AddOrderBatch example sends); a JSON float is refused (it is already rounded).
- The nonce is canonical decimal text (no sign, no leading zero), so ``str(read_nonce(p))`` is exactly
  the text the client hashed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, NamedTuple, TypeAlias, TypeVar

# fmt: off
__all__ = [
    "INVALID_ARGUMENTS", "INVALID_NONCE", "INVALID_PRICE", "INVALID_PRICE2", "ParamError", "Params",
    "PriceSpec", "TimeSpec", "decimal_field", "decimal_places", "int_text", "invalid", "object_list",
    "opt_bool", "opt_deadline_ns", "opt_decimal", "opt_int", "opt_object", "opt_price", "opt_str", "opt_time",
    "parse_decimal", "parse_price", "parse_rfc3339_ns", "parse_time",
    "read_nonce", "req_int", "req_str", "str_list",
]
# fmt: on

Params: TypeAlias = Mapping[str, object]

INVALID_ARGUMENTS = "EGeneral:Invalid arguments"
INVALID_NONCE = "EAPI:Invalid nonce"
INVALID_PRICE = "EOrder:Invalid price:Invalid price argument"
INVALID_PRICE2 = "EOrder:Invalid price:Invalid secondary price argument"

STR_CHARS_MAX = 256
DECIMAL_CHARS_MAX = 40
LIST_ITEMS_MAX = 50
# Kraken's nonce is an unsigned 64-bit integer, but the stores keep each key's last nonce in a
# signed one (SQLite INTEGER, PostgreSQL bigint): a nonce above this would fail the batch or the
# nonce write that carries it. So the top half of the range is refused as an invalid nonce. No client
# comes near it: ccxt and krakenex count milliseconds, python-kraken-sdk units of 10 ns (about 1.8e17).
NONCE_MAX = 2**63 - 1
SECONDS_MAX = (2**63 - 1) // 10**9  # the last unix second whose nanoseconds still fit in an int64

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT = re.compile(r"-?[0-9]{1,20}")
_NONCE = re.compile(r"0|[1-9][0-9]{0,19}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TIME = re.compile(r"([+ ])?([0-9]{1,11})")
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})"  # date, time
    r"(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})"  # fraction, offset
)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class ParamError(Exception):
    """A request the client got wrong; ``kraken`` is the exact string for the ``error`` array."""

    def __init__(self, kraken: str) -> None:
        assert kraken[:1] in ("E", "W"), "Kraken error strings start with E or W"
        super().__init__(kraken)
        self.kraken = kraken


def invalid(name: str) -> ParamError:
    """The default refusal for field ``name``: ``EGeneral:Invalid arguments:<name>``."""
    return ParamError(f"{INVALID_ARGUMENTS}:{name[:STR_CHARS_MAX]}")  # names may come from the client


def _refuse(name: str, error: str | None) -> ParamError:
    return ParamError(error) if error is not None else invalid(name)


# --- strings, booleans, integers, lists, objects --------------------------------------------------

T = TypeVar("T")


def int_text(text: str) -> int | None:
    """An optionally negative run of 1 to 20 ASCII digits as an int, else None (``str.isdigit``
    also admits digits such as "²" that ``int()`` refuses)."""
    return int(text) if _INT.fullmatch(text) else None


def _json_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt(p: Params, name: str, error: str | None, convert: Callable[[object], T | None]) -> T | None:
    """None when absent; the converted value; or a refusal when ``convert`` answers None."""
    value = p.get(name)
    if value is None:
        return None
    result = convert(value)
    if result is None:
        raise _refuse(name, error)
    return result


def _req(p: Params, name: str, error: str | None, convert: Callable[[object], T | None]) -> T:
    result = _opt(p, name, error, convert)
    if result is None:
        raise _refuse(name, error)
    return result


# The converters below that need their bounds are closures; an absent field returns before one is
# built (most optional fields of an order are absent, and compiled, each closure is an object).


def opt_str(p: Params, name: str, *, chars_max: int = STR_CHARS_MAX, error: str | None = None) -> str | None:
    """The string, possibly empty, or None when absent; a non-string or an over-long one is refused."""
    value = p.get(name)
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= chars_max:
        return value
    raise _refuse(name, error)


def req_str(p: Params, name: str, *, chars_max: int = STR_CHARS_MAX, error: str | None = None) -> str:
    """A required, non-empty string (absent, null or anything else is refused alike)."""
    value = p.get(name)
    if isinstance(value, str) and 0 < len(value) <= chars_max:
        return value
    raise _refuse(name, error)


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and len(value) <= len("false"):
        lowered = value.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    return None


def opt_bool(p: Params, name: str, default: bool, *, error: str | None = None) -> bool:
    """``true/false/1/0`` in any letter case (ccxt and the SDK send ``True``), or a JSON boolean or 0/1."""
    result = _opt(p, name, error, _to_bool)
    return default if result is None else result


def _int_between(value_min: int, value_max: int) -> Callable[[object], int | None]:
    assert value_min <= value_max, "empty bounds"

    def convert(value: object) -> int | None:
        number = int(value) if isinstance(value, str) and _INT.fullmatch(value) else _json_int(value)
        return number if number is not None and value_min <= number <= value_max else None

    return convert


def opt_int(p: Params, name: str, *, value_min: int, value_max: int, error: str | None = None) -> int | None:
    """A JSON integer or an optionally signed digit string within bounds; bool and float are refused."""
    if p.get(name) is None:
        return None
    return _opt(p, name, error, _int_between(value_min, value_max))


def req_int(p: Params, name: str, *, value_min: int, value_max: int, error: str | None = None) -> int:
    return _req(p, name, error, _int_between(value_min, value_max))


def str_list(
    p: Params,
    name: str,
    *,
    items_max: int = LIST_ITEMS_MAX,
    chars_max: int = STR_CHARS_MAX,
    error: str | None = None,
) -> list[str]:
    """A comma-joined string (items trimmed) or a JSON array of strings; absent or ``""`` is ``[]``."""
    if p.get(name) is None:
        return []

    def convert(value: object) -> list[str] | None:
        items: list[str]
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",", items_max)] if value else []
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = value
        else:
            return None
        too_many = len(items) > items_max
        return None if too_many or any(not 0 < len(item) <= chars_max for item in items) else items

    return _opt(p, name, error, convert) or []


def opt_object(p: Params, name: str, *, error: str | None = None) -> Params | None:
    """A nested object: JSON ``{...}`` or form ``name[key]=...`` (e.g. AddOrder's ``close``)."""
    return _opt(p, name, error, lambda v: v if isinstance(v, dict) else None)


def object_list(p: Params, name: str, *, items_max: int, error: str | None = None) -> list[Params]:
    """A required, non-empty list of objects (AddOrderBatch ``orders``)."""

    def convert(value: object) -> list[Params] | None:
        if not isinstance(value, list) or not 0 < len(value) <= items_max:
            return None
        return value if all(isinstance(item, dict) for item in value) else None

    return _req(p, name, error, convert)


# --- money ----------------------------------------------------------------------------------------


def parse_decimal(text: str, *, signed: bool = False, chars_max: int = DECIMAL_CHARS_MAX) -> Decimal | None:
    """Plain decimal text (``12``, ``12.5``, ``.5``, ``12.``) or None: no exponent, NaN, space or ``_``."""
    if len(text) > chars_max or _DECIMAL.fullmatch(text) is None:
        return None
    if not signed and text[0] in "+-":
        return None
    return Decimal(text)  # exact: construction from a string does not round


def _to_decimal(signed: bool, chars_max: int) -> Callable[[object], Decimal | None]:
    def convert(value: object) -> Decimal | None:
        number = _json_int(value)
        text = value if isinstance(value, str) else None if number is None else str(number)
        return None if text is None else parse_decimal(text, signed=signed, chars_max=chars_max)

    return convert  # a JSON float, bool, list or object is refused


def opt_decimal(
    p: Params,
    name: str,
    *,
    signed: bool = False,
    chars_max: int = DECIMAL_CHARS_MAX,
    error: str | None = None,
) -> Decimal | None:
    return _opt(p, name, error, _to_decimal(signed, chars_max))


def decimal_field(
    p: Params,
    name: str,
    *,
    signed: bool = False,
    chars_max: int = DECIMAL_CHARS_MAX,
    error: str | None = None,
) -> Decimal:
    """A required amount (``volume``, ``amount``...); ``1e-05`` or a JSON float is refused."""
    return _req(p, name, error, _to_decimal(signed, chars_max))


def decimal_places(value: Decimal) -> int:
    """Decimals needed to write ``value`` exactly: trailing zeros do not count (``1.50`` -> 1)."""
    assert value.is_finite(), "only finite amounts have decimal places"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0 or not any(digits):
        return 0
    places, index = -exponent, len(digits) - 1
    while places > 0 and digits[index] == 0:
        places, index = places - 1, index - 1
    assert places >= 0
    return places


PriceKind: TypeAlias = Literal["abs", "plus", "minus", "hash"]
_PRICE_PREFIX: dict[str, PriceKind] = {"+": "plus", " ": "plus", "-": "minus", "#": "hash"}


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """An AddOrder/AmendOrder price: absolute, or a ``+``/``-``/``#`` offset, optionally in percent.

    Every combination parses; which ones an order type allows is the handler's rule.
    """

    kind: PriceKind
    value: Decimal  # never negative: the sign lives in ``kind``
    percent: bool


def parse_price(text: str, *, chars_max: int = DECIMAL_CHARS_MAX) -> PriceSpec | None:
    """``123.4``, ``+12.5``, ``-12.5``, ``#12.5``, each optionally with ``%``; a leading space is ``+``."""
    kind: PriceKind = _PRICE_PREFIX.get(text[:1], "abs")
    body = text[1:] if kind != "abs" else text
    percent = body.endswith("%")
    value = parse_decimal(body[:-1] if percent else body, chars_max=chars_max)
    return None if value is None else PriceSpec(kind, value, percent)


def opt_price(p: Params, name: str, *, error: str | None = None) -> PriceSpec | None:
    """Refused with Kraken's price strings: ``price2`` gets the "secondary" one, other names the first."""
    if p.get(name) is None:
        return None

    def convert(value: object) -> PriceSpec | None:
        number = _json_int(value)
        text = value if isinstance(value, str) else None if number is None or number < 0 else str(number)
        return None if text is None else parse_price(text)

    return _opt(p, name, error or (INVALID_PRICE2 if name == "price2" else INVALID_PRICE), convert)


# --- times and the nonce --------------------------------------------------------------------------


class TimeSpec(NamedTuple):
    """``starttm``/``expiretm``: ``("abs", unix_s)`` (0 means now/none) or ``("rel", s_from_now)``."""

    kind: Literal["abs", "rel"]
    seconds: int


def parse_time(text: str) -> TimeSpec | None:
    """``0``, ``<unix s>``, ``+<n>``, or ``" <n>"`` (an unescaped ``+`` decodes to a space)."""
    match = _TIME.fullmatch(text)
    if match is None or int(match[2]) > SECONDS_MAX:
        return None
    return TimeSpec("rel" if match[1] else "abs", int(match[2]))


def _to_time(value: object) -> TimeSpec | None:
    if isinstance(value, str):
        return parse_time(value)
    number = _json_int(value)
    return None if number is None or not 0 <= number <= SECONDS_MAX else TimeSpec("abs", number)


def opt_time(p: Params, name: str, *, error: str | None = None) -> TimeSpec | None:
    return _opt(p, name, error, _to_time)


def parse_rfc3339_ns(text: str) -> int | None:
    """RFC 3339 with a mandatory offset (``Z`` or ``±hh:mm``) and up to 9 fraction digits, to unix ns."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    date, clock, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}{offset}")  # validates the calendar
    except ValueError:
        return None
    delta = moment - _EPOCH  # integer arithmetic: no float timestamp
    fraction_ns = int(fraction.ljust(9, "0")) if fraction else 0
    return (delta.days * 86_400 + delta.seconds) * 10**9 + fraction_ns


def opt_deadline_ns(p: Params, name: str = "deadline", *, error: str | None = None) -> int | None:
    """The deadline as unix ns; the caller checks it against now (``EService:Deadline elapsed``)."""
    return _opt(
        p, name, error, lambda v: parse_rfc3339_ns(v) if isinstance(v, str) and len(v) <= 64 else None
    )


def read_nonce(p: Params) -> int:
    """A nonce from 0 to ``NONCE_MAX``, as a digit string or a JSON integer, else ``EAPI:Invalid nonce``."""
    value = p.get("nonce")
    number = int(value) if isinstance(value, str) and _NONCE.fullmatch(value) else _json_int(value)
    if number is None or not 0 <= number <= NONCE_MAX:
        raise ParamError(INVALID_NONCE)
    return number
