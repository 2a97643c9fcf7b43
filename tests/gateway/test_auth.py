"""Authentication: published signature vectors, the real clients' signatures, nonces, secrets, permissions."""

from __future__ import annotations

import base64
import json
import os
import stat
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abyssal.gateway import auth
from abyssal.gateway.auth import (
    ENDPOINT_PERMISSION,
    NonceTracker,
    Permission,
    SecretBox,
    UnsealError,
    check_otp,
    decode_secret,
    generate_key_pair,
    is_permitted,
    load_or_create_master_key,
    sign,
    verify,
)
from abyssal.gateway.bodies import parse_body
from abyssal.gateway.params import read_nonce

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
FORM_PATH = "/0/private/AddOrder"
FORM_NONCE = "1616492376594"
FORM_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
FORM_SIGN = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
JSON_PATH = "/0/private/CancelOrderBatch"
JSON_BODY = b'{"nonce":"1616492376594","orders":["OAAAAA-BBBBB-CCCCC1","OAAAAA-BBBBB-CCCCC2"]}'
JSON_SIGN = "2B3jcxMWTakujyY+FLQhbHRM41Nu47MwqXoKTW8uiyhQnTNnLC03Q0XjUcsIPEHyKUlvnclNrptl68N/QbWa6Q=="


def test_all_names_exist() -> None:
    for name in auth.__all__:
        assert hasattr(auth, name), name


# --- signature ------------------------------------------------------------------------------------


def test_kraken_published_vector() -> None:
    assert sign(SECRET, FORM_PATH, FORM_NONCE, FORM_BODY) == FORM_SIGN
    assert verify(decode_secret(SECRET), FORM_PATH, FORM_NONCE, FORM_BODY, FORM_SIGN)


def test_json_body_vector() -> None:
    assert sign(SECRET, JSON_PATH, FORM_NONCE, JSON_BODY) == JSON_SIGN
    assert verify(decode_secret(SECRET), JSON_PATH, FORM_NONCE, JSON_BODY, JSON_SIGN)


@pytest.mark.parametrize(
    ("path", "nonce", "body"),
    [
        ("/0/private/CancelOrder", FORM_NONCE, FORM_BODY),
        ("/api/0/private/AddOrder", FORM_NONCE, FORM_BODY),
        (FORM_PATH, "1616492376595", FORM_BODY),
        (FORM_PATH, FORM_NONCE, FORM_BODY.replace(b"1.25", b"1.26")),
        (FORM_PATH, FORM_NONCE, FORM_BODY + b"&"),
        (FORM_PATH, FORM_NONCE, FORM_BODY.replace(b"&", b"&\n", 1)),
    ],
)
def test_any_change_breaks_the_signature(path: str, nonce: str, body: bytes) -> None:
    assert not verify(decode_secret(SECRET), path, nonce, body, FORM_SIGN)


def test_another_secret_does_not_verify() -> None:
    _, other = generate_key_pair()
    assert not verify(decode_secret(other), FORM_PATH, FORM_NONCE, FORM_BODY, FORM_SIGN)


@pytest.mark.parametrize(
    "api_sign",
    [
        "",
        "!!!!",
        "not base64 at all",
        FORM_SIGN[:-2],  # padding missing
        FORM_SIGN + "AA==",  # 67 bytes
        base64.b64encode(b"x" * 32).decode(),  # valid base64, wrong length
        " " + FORM_SIGN,
        FORM_SIGN.replace("+", "-"),  # URL-safe alphabet is not Kraken's
        "é" * 88,
    ],
)
def test_malformed_api_sign_is_false(api_sign: str) -> None:
    assert verify(decode_secret(SECRET), FORM_PATH, FORM_NONCE, FORM_BODY, api_sign) is False


def test_decode_secret_is_strict() -> None:
    assert len(decode_secret(SECRET)) == 64
    with pytest.raises(ValueError):
        decode_secret("not base64!")


def _verify_signed(path: str, body: bytes, content_type: str, api_sign: str) -> bool:
    nonce = read_nonce(parse_body(body, content_type, body_bytes_max=65_536))
    return verify(decode_secret(SECRET), path, str(nonce), body, api_sign)


def test_ccxt_signatures_verify() -> None:
    ccxt = pytest.importorskip("ccxt")
    exchange = ccxt.kraken({"apiKey": "key", "secret": SECRET})
    requests: list[tuple[str, dict[str, Any]]] = [
        ("BalanceEx", {}),
        (
            "AddOrder",
            {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "30000"},
        ),
        (
            "AddOrder",
            {"pair": "XXBTZUSD", "type": "sell", "ordertype": "trailing-stop", "volume": "1", "price": "+5%"},
        ),
        ("AddOrder", {"pair": "XXBTZUSD", "close": {"ordertype": "limit", "price": "1"}, "trades": True}),
        ("CancelOrderBatch", {"orders": ["O1", "O2"]}),
    ]
    for method, params in requests:
        signed = exchange.sign(method, ["private"], "POST", params)
        headers = signed["headers"]
        assert _verify_signed(
            f"/0/private/{method}", signed["body"].encode(), headers["Content-Type"], headers["API-Sign"]
        )


def test_python_kraken_sdk_signatures_verify() -> None:
    base_api = pytest.importorskip("kraken.base_api")
    client = base_api.SpotClient("key", SECRET)
    for uri, params, do_json in [
        ("/0/private/AddOrder", {"ordertype": "limit", "validate": False, "oflags": "post,fciq"}, False),
        ("/0/private/CancelOrderBatch", {"orders": ["a", "b"]}, True),
        ("/0/private/AddOrderBatch", {"orders": [{"price": 25000, "volume": 1}], "pair": "XBTUSD"}, True),
    ]:
        _, _, headers, sent, _ = client._prepare_request(
            method="POST", uri=uri, params=params, do_json=do_json
        )
        body = json.dumps(sent) if do_json else urlencode(sent, doseq=True)  # what requests puts on the wire
        assert _verify_signed(uri, body.encode(), headers["Content-Type"], headers["API-Sign"])


def test_krakenex_signatures_verify() -> None:
    krakenex = pytest.importorskip("krakenex")
    api = krakenex.API("key", SECRET)
    data = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": "30000",
        "volume": "0.01",
        "nonce": 1,
    }
    api_sign = api._sign(data, "/0/private/AddOrder")
    assert _verify_signed(
        "/0/private/AddOrder", urlencode(data).encode(), "application/x-www-form-urlencoded", api_sign
    )


def test_generated_key_pair() -> None:
    api_key, secret = generate_key_pair()
    assert len(api_key) == 56
    assert set(api_key) <= set(string.ascii_letters + string.digits + "-_")
    assert len(decode_secret(secret)) == 64
    assert generate_key_pair() != (api_key, secret)
    assert verify(decode_secret(secret), FORM_PATH, "1", b"nonce=1", sign(secret, FORM_PATH, "1", b"nonce=1"))


# --- nonces ---------------------------------------------------------------------------------------


def test_nonce_must_increase_per_key() -> None:
    tracker = NonceTracker()
    assert tracker.check_and_record("k", 100)
    assert not tracker.check_and_record("k", 100)  # replay
    assert not tracker.check_and_record("k", 99)  # older
    assert tracker.check_and_record("k", 101)
    assert tracker.check_and_record("other", 5)  # keys are independent
    assert tracker.last("k") == 101
    assert tracker.last("other") == 5
    assert tracker.last("never") == 0


def test_zero_is_never_a_fresh_nonce() -> None:
    assert not NonceTracker().check_and_record("k", 0)


def test_same_nonce_twice_exactly_one_passes() -> None:
    tracker = NonceTracker()
    assert [tracker.check_and_record("k", 7, window=10) for _ in range(2)] == [True, False]


def test_window_accepts_out_of_order_once() -> None:
    tracker = NonceTracker()
    assert tracker.check_and_record("k", 1_000, window=100)
    assert tracker.check_and_record("k", 950, window=100)  # late, inside the window
    assert not tracker.check_and_record("k", 950, window=100)  # replayed
    assert not tracker.check_and_record("k", 1_000, window=100)  # replayed
    assert not tracker.check_and_record("k", 900, window=100)  # at the window edge
    assert tracker.check_and_record("k", 901, window=100)
    assert not tracker.check_and_record("k", 960, window=0)  # the window is per call: off now
    assert tracker.last("k") == 1_000


def test_window_memory_is_bounded_and_refuses_what_it_forgot() -> None:
    tracker = NonceTracker(seen_max=3)
    for nonce in (1_000, 990, 980, 970):
        assert tracker.check_and_record("k", nonce, window=100)
    assert not tracker.check_and_record("k", 970, window=100)  # forgotten: now at or below the floor
    assert not tracker.check_and_record("k", 965, window=100)  # below the floor, never seen: still refused
    assert tracker.check_and_record("k", 975, window=100)
    assert not tracker.check_and_record("k", 990, window=100)  # still remembered


def test_restore_reset() -> None:
    tracker = NonceTracker()
    tracker.restore("k", 500)
    assert not tracker.check_and_record("k", 450, window=100)  # restored: no window below it
    assert not tracker.check_and_record("k", 500)
    assert tracker.check_and_record("k", 501)
    tracker.reset("k")
    assert tracker.last("k") == 0
    assert tracker.check_and_record("k", 1)  # e.g. switching from the SDK's scale to ccxt's


@given(st.lists(st.tuples(st.integers(1, 60), st.sampled_from([0, 0, 5, 20])), max_size=80))
def test_no_nonce_is_ever_accepted_twice(calls: list[tuple[int, int]]) -> None:
    tracker = NonceTracker(seen_max=8)
    accepted: list[int] = []
    for nonce, window in calls:
        last = tracker.last("k")
        if tracker.check_and_record("k", nonce, window):
            assert nonce not in accepted
            assert nonce > last or (window > 0 and nonce > last - window)
            accepted.append(nonce)
        else:
            assert nonce <= last
    assert tracker.last("k") == max(accepted, default=0)


# --- secrets at rest ------------------------------------------------------------------------------


def test_secret_box_round_trip_and_binding() -> None:
    box = SecretBox(os.urandom(32))
    blob = box.seal(b"api secret", b"key-1")
    assert box.open(blob, b"key-1") == b"api secret"
    assert box.seal(b"api secret", b"key-1") != blob  # fresh nonce per seal
    assert b"api secret" not in blob
    with pytest.raises(UnsealError):
        box.open(blob, b"key-2")  # moved to another row
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(UnsealError):
        box.open(bytes(tampered), b"key-1")
    with pytest.raises(UnsealError):
        SecretBox(os.urandom(32)).open(blob, b"key-1")
    with pytest.raises(UnsealError):
        box.open(blob[:20], b"key-1")
    with pytest.raises(UnsealError):
        box.open(b"\x02" + blob[1:], b"key-1")


def test_secret_box_needs_a_32_byte_key() -> None:
    with pytest.raises(ValueError):
        SecretBox(b"short")


def test_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = load_or_create_master_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_master_key(path) == key
    path.chmod(0o644)
    assert load_or_create_master_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(base64.b64encode(b"x" * 16))
    with pytest.raises(ValueError):
        load_or_create_master_key(path)
    path.write_bytes(b"not base64!")
    with pytest.raises(ValueError):
        load_or_create_master_key(path)


# --- otp and permissions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "provided", "ok"),
    [
        (None, None, True),
        (None, "anything", True),
        ("hunter2", "hunter2", True),
        ("hunter2", None, False),
        ("hunter2", "", False),
        ("hunter2", "hunter3", False),
        ("hunter2", "hunter2 ", False),
        ("hunter2", "HUNTER2", False),
        ("pässwörd", "pässwörd", True),
    ],
)
def test_otp(expected: str | None, provided: str | None, ok: bool) -> None:
    assert check_otp(expected, provided) is ok
    assert auth.PERMISSION_DENIED == "EGeneral:Permission denied"


DOC_PRIVATE_ENDPOINTS = [
    "Balance",
    "BalanceEx",
    "TradeBalance",
    "OpenOrders",
    "ClosedOrders",
    "QueryOrders",
    "OrderAmends",
    "TradesHistory",
    "QueryTrades",
    "Ledgers",
    "QueryLedgers",
    "TradeVolume",
    "AddOrder",
    "AddOrderBatch",
    "AmendOrder",
    "EditOrder",
    "CancelOrder",
    "CancelAll",
    "CancelAllOrdersAfter",
    "CancelOrderBatch",
    "GetWebSocketsToken",
    "DepositMethods",
    "DepositAddresses",
    "DepositStatus",
    "WithdrawMethods",
    "WithdrawAddresses",
    "WithdrawInfo",
    "Withdraw",
    "WithdrawStatus",
    "WithdrawCancel",
    "WalletTransfer",
]


def test_every_private_endpoint_has_a_permission() -> None:
    assert sorted(ENDPOINT_PERMISSION) == sorted(DOC_PRIVATE_ENDPOINTS)
    for needed in ENDPOINT_PERMISSION.values():
        assert needed and needed in Permission.ALL


def test_all_is_every_permission() -> None:
    combined = Permission(0)
    for member in Permission:
        combined |= member
    assert combined == Permission.ALL
    assert len([m for m in Permission if m is not Permission.ALL]) == 9


@pytest.mark.parametrize(
    ("granted", "endpoint", "ok"),
    [
        (Permission.QUERY_FUNDS, "BalanceEx", True),
        (Permission.QUERY_FUNDS, "DepositAddresses", True),
        (Permission.QUERY_OPEN, "BalanceEx", False),
        (Permission.QUERY_OPEN, "QueryOrders", True),
        (Permission.QUERY_CLOSED, "QueryOrders", True),
        (Permission.QUERY_FUNDS, "QueryOrders", False),
        (Permission.QUERY_CLOSED, "OpenOrders", False),
        (Permission.CREATE_ORDERS, "AddOrder", True),
        (Permission.CREATE_ORDERS, "CancelOrder", False),
        (Permission.CANCEL_ORDERS, "CancelAllOrdersAfter", True),
        (Permission.QUERY_LEDGER, "WithdrawStatus", True),
        (Permission.QUERY_LEDGER, "Withdraw", False),
        (Permission.DEPOSIT, "DepositMethods", True),
        (Permission.WEBSOCKET, "GetWebSocketsToken", True),
        (Permission.QUERY_FUNDS | Permission.CREATE_ORDERS, "AddOrder", True),
        (Permission.ALL, "Withdraw", True),
        (Permission.ALL, "NoSuchMethod", False),
        (Permission(0), "Balance", False),
    ],
)
def test_is_permitted(granted: Permission, endpoint: str, ok: bool) -> None:
    assert is_permitted(granted, endpoint) is ok
