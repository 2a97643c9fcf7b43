"""Relative prices as the parsers read them: AddOrder keeps them as a kind and an offset for the
engine, AmendOrder (REST and WebSocket v2) too; the forms each door refuses, with Kraken's strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from abyssal.config import load_config
from abyssal.core.messages import OrderType, PriceKind
from abyssal.gateway.order_params import amend_price, place_order
from abyssal.gateway.params import INVALID_PRICE, ParamError, parse_price
from abyssal.gateway.ws_order_params import amend_price_parts, rest_order

INS = load_config(None).instruments
XBTUSD = INS.pair("XBTUSD")
assert XBTUSD is not None
ABS, PLUS, MINUS, HASH = (int(k) for k in (PriceKind.abs, PriceKind.plus, PriceKind.minus, PriceKind.hash))


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(ParamError) as caught:
        call(*args)
    return caught.value.kraken


def _limit(**overrides: Any) -> dict[str, Any]:
    return {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001", **overrides}


@pytest.mark.parametrize(
    ("ordertype", "price", "parts"),
    [
        ("limit", "-100", (MINUS, 1000, -1)),
        ("limit", "+0.5", (PLUS, 5, -1)),
        ("limit", " 0.5", (PLUS, 5, -1)),  # an unescaped '+' in a form body decodes to a space
        ("limit", "#2", (HASH, 20, -1)),
        ("iceberg", "-1%", (MINUS, 0, 1_000_000)),
        ("iceberg", "#99.999999%", (HASH, 0, 99_999_999)),
    ],
)
def test_add_order_keeps_a_relative_limit_for_the_engine(
    ordertype: str, price: str, parts: tuple[int, ...]
) -> None:
    extra = {"displayvol": "0.001", "volume": "0.015"} if ordertype == "iceberg" else {}
    cmd = place_order(INS, _limit(ordertype=ordertype, price=price, **extra), 1, 0)
    assert cmd.ordertype == int(OrderType[ordertype])
    assert (cmd.price_kind, cmd.price_ticks, cmd.price_pct_ppm) == parts
    assert cmd.price_text == price.replace(" ", "+")  # descriptions show it as written


@pytest.mark.parametrize("price", ["5%", "-100%", "+150%", "#100%", "-1.1234567%", "--5", "-", "%"])
def test_add_order_refuses_percentages_without_a_sign_or_of_100_and_more(price: str) -> None:
    assert refusal(place_order, INS, _limit(price=price), 1, 0) == INVALID_PRICE


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (None, (ABS, -1, -1)),  # absent: unchanged
        ("19000.5", (ABS, 190005, -1)),
        ("0", (ABS, 0, -1)),  # the engine refuses a zero price by name
        ("-5", (MINUS, 50, -1)),
        ("+0.1", (PLUS, 1, -1)),
        ("+2%", (PLUS, 0, 2_000_000)),
        ("-0.25%", (MINUS, 0, 250_000)),
    ],
)
def test_amend_prices(text: str | None, parts: tuple[int, int, int]) -> None:
    spec = None if text is None else parse_price(text)
    assert amend_price(XBTUSD, spec, "limit_price") == parts


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("#5", "EGeneral:Invalid arguments:limit_price"),  # not among the amend's forms
        ("5%", INVALID_PRICE),
        ("-100%", INVALID_PRICE),
        ("-0.05", "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals."),
    ],
)
def test_amend_price_refusals(text: str, error: str) -> None:
    assert refusal(amend_price, XBTUSD, parse_price(text), "limit_price") == error


@pytest.mark.parametrize(
    ("params", "parts"),
    [
        ({}, (ABS, -1, -1)),
        ({"limit_price": 19000.5}, (ABS, 190005, -1)),
        ({"limit_price": 19000, "limit_price_type": "static"}, (ABS, 190000, -1)),
        ({"limit_price": -100, "limit_price_type": "quote"}, (MINUS, 1000, -1)),
        ({"limit_price": 2.5, "limit_price_type": "quote"}, (PLUS, 25, -1)),
        ({"limit_price": -1, "limit_price_type": "pct"}, (MINUS, 0, 1_000_000)),
        ({"limit_price": 0.5, "limit_price_type": "pct"}, (PLUS, 0, 500_000)),
    ],
)
def test_ws_amend_prices(params: dict[str, Any], parts: tuple[int, int, int]) -> None:
    decoded = {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in params.items()}  # as ws_codec
    assert amend_price_parts(XBTUSD, decoded, "limit_price", "limit_price_type") == parts


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit_price": -5}, INVALID_PRICE),  # a static price is never negative
        ({"limit_price": -100, "limit_price_type": "pct"}, INVALID_PRICE),
        ({"limit_price": 1, "limit_price_type": "percent"}, "EGeneral:Invalid arguments:limit_price_type"),
        ({"limit_price": 1, "limit_price_type": ["pct"]}, "EGeneral:Invalid arguments:limit_price_type"),
    ],
)
def test_ws_amend_price_refusals(params: dict[str, Any], error: str) -> None:
    assert refusal(amend_price_parts, XBTUSD, params, "limit_price", "limit_price_type") == error


def test_ws_add_order_sends_a_relative_limit_as_rest_text() -> None:
    ws = {"order_type": "limit", "side": "sell", "order_qty": 1, "symbol": "BTC/USD"}
    rest = rest_order({**ws, "limit_price": -1, "limit_price_type": "pct"})
    assert rest["price"] == "-1%"
    cmd = place_order(INS, {**rest, "volume": "0.001"}, 1, 0)
    assert (cmd.price_kind, cmd.price_ticks, cmd.price_pct_ppm) == (MINUS, 0, 1_000_000)
