"""Request parameters: the exact bodies the three clients send, and every strict reader."""

from __future__ import annotations

import calendar
import json
from decimal import Decimal, localcontext
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abyssal.gateway import params
from abyssal.gateway.bodies import FIELDS_MAX, parse_body, parse_query
from abyssal.gateway.params import (
    INVALID_NONCE,
    INVALID_PRICE,
    INVALID_PRICE2,
    NONCE_MAX,
    SECONDS_MAX,
    ParamError,
    PriceSpec,
    TimeSpec,
    decimal_field,
    decimal_places,
    object_list,
    opt_bool,
    opt_deadline_ns,
    opt_decimal,
    opt_int,
    opt_object,
    opt_price,
    opt_str,
    opt_time,
    parse_decimal,
    read_nonce,
    req_int,
    req_str,
    str_list,
)

BODY_BYTES_MAX = 65_536
FORM = "application/x-www-form-urlencoded"
SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="


def body(raw: str | bytes, content_type: str | None = FORM) -> dict[str, object]:
    data = raw.encode() if isinstance(raw, str) else raw
    return parse_body(data, content_type, body_bytes_max=BODY_BYTES_MAX)


def refusal(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ParamError) as caught:
        call(*args, **kwargs)
    return caught.value.kraken


def test_all_names_exist() -> None:
    assert sorted(params.__all__) == sorted(set(params.__all__))
    for name in params.__all__:
        assert hasattr(params, name), name


# --- bodies: what each client sends (doc §2.2) ----------------------------------------------------

CLIENT_BODIES = [
    pytest.param(
        FORM,
        "nonce=1795392952810&pair=XXBTZUSD&type=buy&ordertype=limit&volume=0.01&price=30000",
        {"nonce": "1795392952810", "pair": "XXBTZUSD", "type": "buy", "ordertype": "limit"},
        id="ccxt-form",
    ),
    pytest.param(
        "application/x-www-form-urlencoded; charset=utf-8",
        "ordertype=limit&type=buy&pair=XBTUSD&volume=0.01&stptype=cancel-newest&starttm=0"
        "&validate=False&reduce_only=False&price=30000&oflags=post%2Cfciq&cl_ord_id=abc&nonce=179539302471901216",
        {"oflags": "post,fciq", "validate": "False", "starttm": "0", "nonce": "179539302471901216"},
        id="sdk-form",
    ),
    pytest.param(
        FORM,
        "pair=XBTUSD&type=buy&ordertype=limit&price=30000&volume=0.01&oflags=post&nonce=1795393024765",
        {"pair": "XBTUSD", "oflags": "post", "nonce": "1795393024765"},
        id="krakenex-form",
    ),
    pytest.param(
        "application/json",
        '{"nonce":"1795392952817","orders":[{"type":"buy","ordertype":"limit","volume":"0.01","price":"30000"}],'
        '"pair":"XXBTZUSD"}',
        {
            "nonce": "1795392952817",
            "pair": "XXBTZUSD",
            "orders": [{"type": "buy", "ordertype": "limit", "volume": "0.01", "price": "30000"}],
        },
        id="ccxt-json",
    ),
    pytest.param(
        "application/json; charset=utf-8",
        '{"orders": [{"ordertype": "limit", "price": 25000, "volume": 1}], "pair": "XBTUSD", '
        '"validate": false, "nonce": "179539302472676960"}',
        {"orders": [{"ordertype": "limit", "price": 25000, "volume": 1}], "validate": False},
        id="sdk-json",
    ),
    pytest.param(None, '{"nonce":"1"}', {"nonce": "1"}, id="no-content-type-json"),
    pytest.param(None, "nonce=1&pair=XBTUSD", {"nonce": "1", "pair": "XBTUSD"}, id="no-content-type-form"),
    pytest.param("text/plain", ' \n{"nonce":"1"}', {"nonce": "1"}, id="other-type-json-sniffed"),
    pytest.param("Application/JSON; Charset=UTF-8", '{"nonce":"1"}', {"nonce": "1"}, id="media-type-case"),
    pytest.param(FORM, '{"a":"b"}', {'{"a":"b"}': ""}, id="declared-form-beats-sniffing"),
]


@pytest.mark.parametrize(("content_type", "raw", "expected_subset"), CLIENT_BODIES)
def test_client_bodies(content_type: str | None, raw: str, expected_subset: dict[str, object]) -> None:
    parsed = body(raw, content_type)
    for key, value in expected_subset.items():
        assert parsed[key] == value
    if content_type is not None and "json" in content_type.lower():
        assert parsed == json.loads(raw)  # JSON keeps its structure exactly


def test_form_values_are_strings_and_plus_is_a_space() -> None:
    parsed = body("starttm=+60&expiretm=%2B60&userref=7&validate=True")
    assert parsed == {"starttm": " 60", "expiretm": "+60", "userref": "7", "validate": "True"}


def test_real_clients_bodies_parse() -> None:
    ccxt = pytest.importorskip("ccxt")
    exchange = ccxt.kraken({"apiKey": "key", "secret": SECRET})
    order = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "30000"}
    signed = exchange.sign(
        "AddOrder", ["private"], "POST", {**order, "close": {"ordertype": "limit", "price": "1"}}
    )
    parsed = body(signed["body"], signed["headers"]["Content-Type"])
    assert parsed["close"] == {"ordertype": "limit", "price": "1"}
    assert opt_price(parsed, "price") == PriceSpec("abs", Decimal(30000), False)
    trailing = exchange.sign("AddOrder", ["private"], "POST", {**order, "price": "+5%"})
    assert trailing["headers"]["Content-Type"] == "application/json"
    parsed = body(trailing["body"], trailing["headers"]["Content-Type"])
    assert opt_price(parsed, "price") == PriceSpec("plus", Decimal(5), True)
    cancel = exchange.sign("CancelOrderBatch", ["private"], "POST", {"orders": ["O1", "O2"]})
    assert str_list(body(cancel["body"], "application/json"), "orders") == ["O1", "O2"]


# --- nested keys, duplicates, malformed bodies ----------------------------------------------------


def test_nested_close_keys() -> None:
    parsed = body("nonce=1&close[ordertype]=stop-loss-limit&close[price]=%2B5&close%5Bprice2%5D=36000")
    close = opt_object(parsed, "close")
    assert close == {"ordertype": "stop-loss-limit", "price": "+5", "price2": "36000"}
    assert opt_price(close, "price") == PriceSpec("plus", Decimal(5), False)


def test_indexed_keys_become_lists() -> None:
    parsed = body("txid[0]=A&txid[1]=B&orders[0][type]=buy&orders[1][type]=sell&odd[1]=x")
    assert str_list(parsed, "txid") == ["A", "B"]
    assert object_list(parsed, "orders", items_max=15) == [{"type": "buy"}, {"type": "sell"}]
    assert parsed["odd"] == {"1": "x"}  # not 0..n-1: stays an object


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("nonce=1&nonce=2", "nonce"),
        ("close[price]=1&close[price]=2", "close"),
        ("close=x&close[price]=1", "close"),
        ("close[price]=1&close=x", "close"),
        ("a[b][c][d][e]=1", "a"),
    ],
)
def test_form_key_conflicts_are_refused(raw: str, field: str) -> None:
    assert refusal(body, raw) == f"EGeneral:Invalid arguments:{field}"


def test_json_duplicate_key_is_refused() -> None:
    assert (
        refusal(body, '{"nonce":"1","nonce":"2"}', "application/json") == "EGeneral:Invalid arguments:nonce"
    )


def test_unknown_bracket_forms_are_kept_literally() -> None:
    assert body("a[]=1&b]=2&c[x=3") == {"a[]": "1", "b]": "2", "c[x": "3"}


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"nonce=\xff", FORM),
        (b"nonce=%FF", FORM),
        (b"nonce=%C3%28", FORM),
        (b'{"nonce":"\xff"}', "application/json"),
        (b'{"nonce":', "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"nonce"', "application/json"),
        (b'{"volume": NaN}', "application/json"),
        (b'{"volume": Infinity}', "application/json"),
        (b"\xef\xbb\xbf{}", "application/json"),
    ],
)
def test_malformed_bodies(raw: bytes, content_type: str | None) -> None:
    assert refusal(body, raw, content_type) == "EGeneral:Invalid arguments"


@pytest.mark.parametrize("content_type", [None, FORM, "application/json"])
def test_empty_body_has_no_parameters(content_type: str | None) -> None:
    assert body(b"", content_type) == {}


def test_deep_json_is_refused_not_crashed() -> None:
    deep = b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert (
        refusal(parse_body, deep, "application/json", body_bytes_max=len(deep))
        == "EGeneral:Invalid arguments"
    )


def test_body_size_limit() -> None:
    raw = b"nonce=1&pair=" + b"X" * 50
    assert parse_body(raw, FORM, body_bytes_max=len(raw))["nonce"] == "1"
    assert refusal(parse_body, raw, FORM, body_bytes_max=len(raw) - 1) == "EGeneral:Invalid arguments"


def test_field_count_limit() -> None:
    ok = "&".join(f"k{i}=1" for i in range(FIELDS_MAX))
    assert len(body(ok)) == FIELDS_MAX
    assert refusal(body, ok + "&one=more") == "EGeneral:Invalid arguments"


def test_query_strings() -> None:
    parsed = parse_query(b"pair=XXBTZUSD,XETHZUSD&count=10&since=1700000000")
    assert str_list(parsed, "pair") == ["XXBTZUSD", "XETHZUSD"]
    assert opt_int(parsed, "count", value_min=1, value_max=500) == 10
    assert parse_query(b"pair=BTC%2FUSD") == {"pair": "BTC/USD"}
    assert parse_query(b"") == {}
    assert refusal(parse_query, b"pair=" + b"X" * 100, query_bytes_max=50) == "EGeneral:Invalid arguments"


# --- strings, booleans, integers, lists -----------------------------------------------------------


def test_strings() -> None:
    p = {"pair": "XBTUSD", "empty": "", "number": 5, "long": "x" * 300}
    assert req_str(p, "pair") == "XBTUSD"
    assert opt_str(p, "empty") == ""
    assert opt_str(p, "missing") is None
    assert opt_str({"n": None}, "n") is None  # JSON null is absent
    assert refusal(req_str, p, "missing") == "EGeneral:Invalid arguments:missing"
    assert refusal(req_str, p, "empty") == "EGeneral:Invalid arguments:empty"
    assert refusal(opt_str, p, "number") == "EGeneral:Invalid arguments:number"
    assert refusal(opt_str, p, "long") == "EGeneral:Invalid arguments:long"
    assert opt_str(p, "long", chars_max=300) == "x" * 300
    assert refusal(req_str, p, "missing", error="EQuery:Unknown asset pair") == "EQuery:Unknown asset pair"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("tRuE", True),
        ("1", True),
        (True, True),
        (1, True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("fAlSe", False),
        ("0", False),
        (False, False),
        (0, False),
    ],
)
def test_every_boolean_spelling(value: object, expected: bool) -> None:
    assert opt_bool({"validate": value}, "validate", not expected) is expected


@pytest.mark.parametrize(
    "value", ["yes", "no", "", "2", 2, -1, "t", "f", "truee", "true ", " 1", 1.0, 0.0, [], {}]
)
def test_boolean_rejections(value: object) -> None:
    assert refusal(opt_bool, {"validate": value}, "validate", False) == "EGeneral:Invalid arguments:validate"


def test_boolean_default() -> None:
    assert opt_bool({}, "trades", True) is True
    assert opt_bool({}, "trades", False) is False


@pytest.mark.parametrize(("value", "expected"), [("10", 10), (10, 10), ("-5", -5), ("007", 7), (0, 0)])
def test_integers(value: object, expected: int) -> None:
    assert opt_int({"n": value}, "n", value_min=-10, value_max=10) == expected


@pytest.mark.parametrize(
    "value", [True, False, 1.0, "1.0", "1e3", " 1", "1 ", "+1", "", "11", "-11", "1" * 21, "\u0663", "0x1"]
)
def test_integer_rejections(value: object) -> None:
    assert refusal(opt_int, {"n": value}, "n", value_min=-10, value_max=10) == "EGeneral:Invalid arguments:n"


def test_required_integer() -> None:
    assert req_int({"timeout": "60"}, "timeout", value_min=0, value_max=86_399) == 60
    assert (
        refusal(req_int, {}, "timeout", value_min=0, value_max=86_399) == "EGeneral:Invalid arguments:timeout"
    )
    assert opt_int({}, "count", value_min=1, value_max=500) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A,B", ["A", "B"]),
        ("A, B", ["A", "B"]),
        ("OQCLML-BW3P3-BUCMWZ", ["OQCLML-BW3P3-BUCMWZ"]),
        (["A", "B"], ["A", "B"]),
        ("", []),
        (None, []),
    ],
)
def test_lists(value: object, expected: list[str]) -> None:
    assert str_list({"txid": value}, "txid") == expected


@pytest.mark.parametrize(
    "value", ["A,,B", ",A", "A,", [1], ["A", None], [""], 5, {"a": "b"}, ",".join("X" * 51)]
)
def test_list_rejections(value: object) -> None:
    assert refusal(str_list, {"txid": value}, "txid") == "EGeneral:Invalid arguments:txid"


def test_list_bounds() -> None:
    assert len(str_list({"t": ",".join(["A"] * 50)}, "t")) == 50
    assert refusal(str_list, {"t": ",".join(["A"] * 51)}, "t") == "EGeneral:Invalid arguments:t"
    assert refusal(str_list, {"t": "ABC"}, "t", chars_max=2) == "EGeneral:Invalid arguments:t"


def test_objects() -> None:
    assert opt_object({}, "close") is None
    assert refusal(opt_object, {"close": "limit"}, "close") == "EGeneral:Invalid arguments:close"
    assert refusal(object_list, {}, "orders", items_max=15) == "EGeneral:Invalid arguments:orders"
    assert refusal(object_list, {"orders": []}, "orders", items_max=15) == "EGeneral:Invalid arguments:orders"
    assert (
        refusal(object_list, {"orders": ["O1"]}, "orders", items_max=15)
        == "EGeneral:Invalid arguments:orders"
    )
    assert (
        refusal(object_list, {"orders": [{}] * 16}, "orders", items_max=15)
        == "EGeneral:Invalid arguments:orders"
    )


# --- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.01", Decimal("0.01")),
        ("30000", Decimal(30000)),
        ("1.", Decimal(1)),
        (".5", Decimal("0.5")),
        ("0", Decimal(0)),
        ("00012.3400", Decimal("12.34")),
        (25000, Decimal(25000)),  # a JSON integer is exact (python-kraken-sdk's batch example)
        ("1" * 40, Decimal("1" * 40)),
        ("0." + "0" * 37 + "1", Decimal("1e-38")),
    ],
)
def test_decimals(value: object, expected: Decimal) -> None:
    parsed = decimal_field({"volume": value}, "volume")
    assert parsed == expected
    assert parsed.as_tuple() == Decimal(str(value)).as_tuple()  # not rounded by any context


@pytest.mark.parametrize(
    "value",
    [
        "1e-05",
        "6.4e-7",
        "1E5",
        "nan",
        "NaN",
        "sNaN",
        "inf",
        "Infinity",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1_000",
        "1,5",
        "0x10",
        "",
        ".",
        "..",
        "1.2.3",
        "\u22121",
        "\u0661",
        "1" * 41,
        0.01,
        1.0,
        -5,
        True,
        ["1"],
        {"v": "1"},
    ],
)
def test_decimal_rejections(value: object) -> None:
    assert refusal(decimal_field, {"volume": value}, "volume") == "EGeneral:Invalid arguments:volume"


def test_decimal_options() -> None:
    assert decimal_field({"amount": "-1.5"}, "amount", signed=True) == Decimal("-1.5")
    assert decimal_field({"amount": "+2"}, "amount", signed=True) == Decimal(2)
    assert refusal(decimal_field, {}, "volume") == "EGeneral:Invalid arguments:volume"
    assert refusal(decimal_field, {"amount": "x"}, "amount", error="EFunding:Invalid amount") == (
        "EFunding:Invalid amount"
    )
    assert opt_decimal({}, "displayvol") is None
    assert opt_decimal({"displayvol": "0.5"}, "displayvol") == Decimal("0.5")


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("1", 0),
        ("100", 0),
        ("1.50", 1),
        ("10.0", 0),
        ("0.000", 0),
        ("0.00000001", 8),
        ("30000.1", 1),
        ("1e2", 0),
    ],
)
def test_decimal_places(text: str, places: int) -> None:
    assert decimal_places(Decimal(text)) == places


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False),
        st.decimals(min_value=-(10**12), max_value=10**12, places=10),
    )
)
def test_accepted_decimals_round_trip(value: Decimal) -> None:
    text = format(value, "f")
    parsed = parse_decimal(text, signed=True)
    if len(text) > 40:
        assert parsed is None
        return
    assert parsed == value
    assert Decimal(format(parsed, "f")) == parsed
    places = decimal_places(parsed)
    with localcontext() as exact:
        exact.prec = 100  # scaleb rounds to the context precision; 40 characters need no more than 100
        assert parsed.scaleb(places) == parsed.scaleb(places).to_integral_value()
        assert places == 0 or parsed.scaleb(places - 1) != parsed.scaleb(places - 1).to_integral_value()


@given(st.text(alphabet="0123456789.+-eEnaNIfy _", max_size=12))
def test_whatever_is_accepted_is_plain_decimal_text(text: str) -> None:
    parsed = parse_decimal(text, signed=True)
    if parsed is not None:
        assert parsed == Decimal(text)
        assert parsed.is_finite()
        assert not set(text) & set("eEnaNIfy _")


# --- prices ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("123.4", PriceSpec("abs", Decimal("123.4"), False)),
        ("+12.5", PriceSpec("plus", Decimal("12.5"), False)),
        (" 12.5", PriceSpec("plus", Decimal("12.5"), False)),  # a literal "+" after form decoding
        ("-12.5", PriceSpec("minus", Decimal("12.5"), False)),
        ("#12.5", PriceSpec("hash", Decimal("12.5"), False)),
        ("+5%", PriceSpec("plus", Decimal(5), True)),
        ("-0.5%", PriceSpec("minus", Decimal("0.5"), True)),
        ("#5%", PriceSpec("hash", Decimal(5), True)),
        ("5%", PriceSpec("abs", Decimal(5), True)),
        (30000, PriceSpec("abs", Decimal(30000), False)),
    ],
)
def test_price_forms(value: object, spec: PriceSpec) -> None:
    assert opt_price({"price": value}, "price") == spec
    assert opt_price({"price2": value}, "price2") == spec


@pytest.mark.parametrize(
    "value",
    ["", "%", "+", "-", "#", "+-5", "++5", "-+5", "5%%", "%5", "5 %", "1e5", "+1e5", "abc", 1.5, -5, True],
)
def test_price_rejections(value: object) -> None:
    assert refusal(opt_price, {"price": value}, "price") == INVALID_PRICE
    assert refusal(opt_price, {"price2": value}, "price2") == INVALID_PRICE2
    assert refusal(opt_price, {"limit_price": value}, "limit_price") == INVALID_PRICE
    assert INVALID_PRICE == "EOrder:Invalid price:Invalid price argument"
    assert INVALID_PRICE2 == "EOrder:Invalid price:Invalid secondary price argument"


def test_price_absent() -> None:
    assert opt_price({}, "price") is None


# --- times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("0", TimeSpec("abs", 0)),
        ("1700000000", TimeSpec("abs", 1_700_000_000)),
        ("+60", TimeSpec("rel", 60)),
        (" 60", TimeSpec("rel", 60)),
        (0, TimeSpec("abs", 0)),
        (1_700_000_000, TimeSpec("abs", 1_700_000_000)),
        (str(SECONDS_MAX), TimeSpec("abs", SECONDS_MAX)),
    ],
)
def test_times(value: object, spec: TimeSpec) -> None:
    assert opt_time({"expiretm": value}, "expiretm") == spec


def test_time_from_a_form_body() -> None:
    assert opt_time(body("starttm=+60"), "starttm") == ("rel", 60)
    assert opt_time(body("starttm=%2B60"), "starttm") == ("rel", 60)


@pytest.mark.parametrize(
    "value", ["-5", "+-5", "60s", "1.5", "", "  60", "+", " ", str(SECONDS_MAX + 1), "1" * 12, 1.5, -1, True]
)
def test_time_rejections(value: object) -> None:
    assert refusal(opt_time, {"starttm": value}, "starttm") == "EGeneral:Invalid arguments:starttm"


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2023-03-24T17:41:56Z", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9),
        ("2023-03-24t17:41:56z", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9),
        ("2023-03-24 17:41:56Z", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9),
        ("2023-03-24T17:41:56.5Z", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9 + 500_000_000),
        ("2023-03-24T17:41:56.123456789Z", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9 + 123_456_789),
        ("2023-03-24T19:41:56+02:00", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9),
        ("2023-03-24T12:41:56-05:00", calendar.timegm((2023, 3, 24, 17, 41, 56)) * 10**9),
        ("1969-12-31T23:59:59Z", -(10**9)),
    ],
)
def test_deadlines(text: str, expected_ns: int) -> None:
    assert opt_deadline_ns({"deadline": text}) == expected_ns


@pytest.mark.parametrize(
    "value",
    [
        "2023-03-24T17:41:56",
        "2023-03-24",
        "2023-02-30T00:00:00Z",
        "2023-03-24T25:00:00Z",
        "2023-03-24T17:41:60Z",
        "2023-03-24T17:41:56.1234567890Z",
        "2023-03-24T17:41:56+0200",
        "20230324T174156Z",
        "soon",
        1679679716,
    ],
)
def test_deadline_rejections(value: object) -> None:
    assert refusal(opt_deadline_ns, {"deadline": value}) == "EGeneral:Invalid arguments:deadline"


def test_deadline_absent() -> None:
    assert opt_deadline_ns({}) is None


# --- nonce ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1616492376594", 1_616_492_376_594),
        ("179539302471901216", 179_539_302_471_901_216),
        (1_616_492_376_594, 1_616_492_376_594),
        ("0", 0),
        (str(NONCE_MAX), NONCE_MAX),  # 2**63 - 1: the stores' signed 64-bit integer
    ],
)
def test_nonces(value: object, expected: int) -> None:
    nonce = read_nonce({"nonce": value})
    assert nonce == expected
    if isinstance(value, str):
        assert str(nonce) == value  # canonical: the REST layer can sign with str(nonce)


@pytest.mark.parametrize(
    "value",
    [
        *(None, str(NONCE_MAX + 1), NONCE_MAX + 1, str(2**64 - 1), 2**64 - 1, "-1", -1, "01", " 1"),
        *("1.0", 1.0, True, "", "1" * 21, "abc"),
    ],
)
def test_nonce_rejections(value: object) -> None:
    assert refusal(read_nonce, {"nonce": value} if value is not None else {}) == INVALID_NONCE
    assert INVALID_NONCE == "EAPI:Invalid nonce"


def test_nonce_from_each_body_kind() -> None:
    assert read_nonce(body("pair=XBTUSD&nonce=1795393024765")) == 1_795_393_024_765
    assert read_nonce(body('{"nonce":"1795392952817"}', "application/json")) == 1_795_392_952_817
    assert read_nonce(body('{"nonce":1795392952817}', "application/json")) == 1_795_392_952_817


def test_query_string_encoding_matches_urlencode() -> None:
    query = urlencode({"pair": "BTC/USD", "count": 10}).encode()
    assert parse_query(query) == {"pair": "BTC/USD", "count": "10"}
