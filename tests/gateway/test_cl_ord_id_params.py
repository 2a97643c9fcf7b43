"""``cl_ord_id`` as a new order's parsers read it, one rule for REST (AddOrder, AddOrderBatch) and
WebSocket v2 (add_order, batch_add go through the same ``place_order``).

Kraken's three forms: a long UUID (``6d1b345e-2821-40e2-ad83-4ecb18a06876``), a short UUID (32 hex
digits), or free text of at most 18 characters. Decision for the free text (the contract says
"ASCII", Kraken's docs "free text"): visible ASCII, ``!`` to ``~``, except the comma and ``< > & " '``.
A comma would split the id in a comma-joined list (CancelOrderBatch's form ``cl_ord_ids``), spaces
are trimmed there and an unescaped ``+`` in a form arrives as one, and no id needs markup or quotes.
Anything else is ``EGeneral:Invalid arguments:cl_ord_id``. Lookups (AmendOrder, CancelOrder,
OpenOrders...) stay as they were: a well-formed id that names no order is an unknown order.
"""

from __future__ import annotations

from typing import Any

import pytest

from abyssal.config import load_config
from abyssal.gateway.order_params import CL_ORD_ID_TEXT_CHARS_MAX, place_order, valid_cl_ord_id
from abyssal.gateway.params import ParamError
from abyssal.gateway.ws_order_params import rest_order

INS = load_config(None).instruments
INVALID = "EGeneral:Invalid arguments:cl_ord_id"

VALID = [
    "6d1b345e-2821-40e2-ad83-4ecb18a06876",  # long UUID (the contract's example)
    "6D1B345E-2821-40E2-AD83-4ECB18A06876",  # hex digits in upper case
    "da8e4ad59b78481c93e589746b0cf91f",  # short UUID
    "a" * CL_ORD_ID_TEXT_CHARS_MAX,  # free text at its limit
    "x",
    "my-id-1",  # what the ccxt test sends as clientOrderId
    "ccxt-post-1",
    "sdk-post",
    "1623448294234000",  # a microsecond timestamp, Kraken's FIX example
    "arb_2024.05/09:#1",
    "!#$%()*+-./:;=?@[]",  # every other visible ASCII punctuation is free text
    "^_`{|}~\\",
]
INVALID_IDS = [
    "",
    "a" * (CL_ORD_ID_TEXT_CHARS_MAX + 1),  # free text of 19
    "free-form-text-of-36-characters-long",  # 36, but no UUID
    "6d1b345e-2821-40e2-ad83-4ecb18a0687g",  # a UUID's shape with a non-hex digit
    "6d1b345e28-21-40e2-ad83-4ecb18a06876",  # dashes in the wrong places
    "6d1b345e-2821-40e2-ad83-4ecb18a068761",  # 37
    "da8e4ad59b78481c93e589746b0cf91",  # 31 hex digits
    "da8e4ad59b78481c93e589746b0cf91f0",  # 33
    "my id",  # a space
    " lead",
    "trail ",
    "a,b",  # a comma
    "<script>",
    "a&b",
    'say"hi"',
    "it's",
    "tab\there",
    "new\nline",
    "caf\u00e9",  # not ASCII
    "\u0661\u0662",  # Arabic-Indic digits
    "\x7f",
]


def _order(**overrides: Any) -> dict[str, Any]:
    return {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001", "price": "20000.0"} | (
        overrides
    )


def _ws_order(**overrides: Any) -> dict[str, Any]:
    order = {"order_type": "limit", "side": "buy", "order_qty": 1, "symbol": "BTC/USD", "limit_price": 20000}
    return order | overrides


@pytest.mark.parametrize("text", VALID)
def test_kraken_forms_are_accepted_on_both_doors(text: str) -> None:
    assert valid_cl_ord_id(text)
    assert place_order(INS, _order(cl_ord_id=text), 1, 0).cl_ord_id == text
    assert place_order(INS, rest_order(_ws_order(cl_ord_id=text)), 1, 0).cl_ord_id == text


@pytest.mark.parametrize("text", INVALID_IDS)
def test_anything_else_is_refused_on_both_doors(text: str) -> None:
    assert not valid_cl_ord_id(text)
    for params in (_order(cl_ord_id=text), rest_order(_ws_order(cl_ord_id=text))):
        with pytest.raises(ParamError) as caught:
            place_order(INS, params, 1, 0)
        assert caught.value.kraken == INVALID


@pytest.mark.parametrize("value", [42, ["abc"], {"id": "abc"}, True])
def test_a_websocket_id_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(ParamError) as caught:
        place_order(INS, rest_order(_ws_order(cl_ord_id=value)), 1, 0)
    assert caught.value.kraken == INVALID


def test_absent_is_no_id_and_userref_still_excludes_it() -> None:
    assert place_order(INS, _order(), 1, 0).cl_ord_id == ""
    assert place_order(INS, rest_order(_ws_order(cl_ord_id=None)), 1, 0).cl_ord_id == ""
    with pytest.raises(ParamError) as caught:
        place_order(INS, _order(cl_ord_id="abc", userref="7"), 1, 0)
    assert caught.value.kraken == INVALID
