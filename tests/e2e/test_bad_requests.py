"""A table of bad requests: each gets Kraken's exact error, HTTP 200 (public POST: 405) and moves no money.

Every case is sent raw (httpx, signed with ``abyssal.gateway.auth.sign``) so the bytes on the wire are
exactly the ones under test. Around each case the test snapshots BalanceEx of both trading accounts and
the server-wide totals of ``/admin/status``; a refusal must leave all three unchanged.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.harness import Server

from abyssal.core import ids
from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow

PAIR_ID = "XXBTZUSD"
PRICE_DECIMALS_ERROR = "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals."
BODY_BYTES_MAX = 64 * 1024


class Signer:
    """One API key's signed requests, with its own strictly increasing nonce (form bodies nonce first)."""

    def __init__(self, http: httpx.Client, key: dict[str, Any]) -> None:
        self.http = http
        self.api_key: str = key["api_key"]
        self.secret: str = key["api_secret"]
        self.nonce = time.time_ns() // 1000

    def next_nonce(self) -> str:
        self.nonce += 1
        return str(self.nonce)

    def send(
        self,
        method: str,
        body: bytes,
        nonce: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` signed for ``/0/private/<method>``; ``headers`` replace the computed ones."""
        path = f"/0/private/{method}"
        computed = {
            "API-Key": self.api_key,
            "API-Sign": sign(self.secret, path, nonce, body),
            "Content-Type": content_type,
        }
        merged = {k: v for k, v in {**computed, **(headers or {})}.items() if v is not None}
        return self.http.post(path, content=body, headers=merged)

    def form(self, method: str, params: dict[str, str] | None = None) -> httpx.Response:
        nonce = self.next_nonce()
        body = urllib.parse.urlencode({"nonce": nonce, **(params or {})}).encode()
        return self.send(method, body, nonce)

    def json(self, method: str, payload: dict[str, Any]) -> httpx.Response:
        nonce = self.next_nonce()
        body = json.dumps({"nonce": nonce, **payload}, separators=(",", ":")).encode()
        return self.send(method, body, nonce, content_type="application/json")

    def ok(self, method: str, params: dict[str, str] | None = None) -> Any:
        reply = self.form(method, params).json()
        assert reply["error"] == [], (method, params, reply)
        return reply["result"]


@dataclass
class Ctx:
    server: Server
    http: httpx.Client
    a: Signer  # funded with USD; rests a buy with cl_ord_id "dup-1"
    b: Signer  # funded with XBT; rests a sell
    funds_only: Signer  # permission: query_funds
    create_only: Signer  # permission: create_orders
    a_open: str = ""
    b_open: str = ""
    a_canceled: str = ""

    def snapshot(self) -> tuple[Any, Any, Any]:
        return self.a.ok("BalanceEx"), self.b.ok("BalanceEx"), self.server.status()["balances"]


@pytest.fixture(scope="module")
def ctx(shared_server: Server) -> Iterator[Ctx]:
    server = shared_server
    a = server.account("bad-a", USD="1000")
    b = server.account("bad-b", XBT="1")
    funds_only = server.admin(
        "POST", "/admin/accounts", {"name": "bad-funds", "permissions": ["query_funds"]}
    )
    create_only = server.admin(
        "POST", "/admin/accounts", {"name": "bad-create", "permissions": ["create_orders"]}
    )
    server.admin("POST", "/admin/deposits", {"account": "bad-funds", "asset": "USD", "amount": "1000"})
    server.admin("POST", "/admin/deposits", {"account": "bad-create", "asset": "USD", "amount": "1000"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        c = Ctx(
            server,
            http,
            Signer(http, a),
            Signer(http, b),
            Signer(http, funds_only),
            Signer(http, create_only),
        )
        buy = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001", "price": "20000.0"}
        c.a_open = c.a.ok("AddOrder", {**buy, "cl_ord_id": "dup-1"})["txid"][0]
        sell = {**buy, "type": "sell", "price": "40000.0"}
        c.b_open = c.b.ok("AddOrder", sell)["txid"][0]
        c.a_canceled = c.a.ok("AddOrder", {**buy, "price": "19000.0"})["txid"][0]
        assert c.a.ok("CancelOrder", {"txid": c.a_canceled}) == {"count": 1}
        yield c


# --- request builders -----------------------------------------------------------------------------

LIMIT_BUY = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001", "price": "20000.0"}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides``; an override of None removes the field."""
    merged = {**base, **overrides}
    return {k: v for k, v in merged.items() if v is not None}


def add(**overrides: str | None) -> Callable[[Ctx], httpx.Response]:
    """AddOrder (form) from account A: a small limit buy, changed by ``overrides``."""
    return lambda c: c.a.form("AddOrder", _merge(LIMIT_BUY, overrides))


def add_json(**overrides: Any) -> Callable[[Ctx], httpx.Response]:
    """AddOrder with a JSON body (values keep their JSON types)."""
    return lambda c: c.a.json("AddOrder", _merge(LIMIT_BUY, overrides))


def call(method: str, **params: str) -> Callable[[Ctx], httpx.Response]:
    return lambda c: c.a.form(method, params)


def call_json(method: str, payload: dict[str, Any]) -> Callable[[Ctx], httpx.Response]:
    return lambda c: c.a.json(method, payload)


def batch(orders: list[dict[str, Any]], **top: Any) -> Callable[[Ctx], httpx.Response]:
    return lambda c: c.a.json("AddOrderBatch", {"pair": "XBTUSD", **top, "orders": orders})


BATCH_ORDER = {"type": "buy", "ordertype": "limit", "volume": "0.001", "price": "20000.0"}
UNKNOWN_ORDER = ids.order_id(10**9)  # well formed, never issued
KRAKEN_SHAPED_ORDER = "OQCLML-BW3P3-BUCMWZ"  # Kraken's own example id: a valid shape, not ours


def rfc3339(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _with_headers(headers: dict[str, str | None], method: str = "Balance") -> Callable[[Ctx], httpx.Response]:
    def send(c: Ctx) -> httpx.Response:
        nonce = c.a.next_nonce()
        return c.a.send(method, f"nonce={nonce}".encode(), nonce, headers=headers)

    return send


def _signed_for_other_path(c: Ctx) -> httpx.Response:
    nonce = c.a.next_nonce()
    body = f"nonce={nonce}".encode()
    return c.a.send(
        "Balance", body, nonce, headers={"API-Sign": sign(c.a.secret, "/0/private/BalanceEx", nonce, body)}
    )


def _signed_with_other_secret(c: Ctx) -> httpx.Response:
    nonce = c.a.next_nonce()
    body = f"nonce={nonce}".encode()
    return c.a.send(
        "Balance", body, nonce, headers={"API-Sign": sign(c.b.secret, "/0/private/Balance", nonce, body)}
    )


def _body_changed_after_signing(c: Ctx) -> httpx.Response:
    nonce = c.a.next_nonce()
    signed = urllib.parse.urlencode({"nonce": nonce, **LIMIT_BUY}).encode()
    tampered = signed.replace(b"volume=0.001", b"volume=0.002")
    return c.a.send(
        "AddOrder",
        tampered,
        nonce,
        headers={"API-Sign": sign(c.a.secret, "/0/private/AddOrder", nonce, signed)},
    )


def _replayed(c: Ctx) -> httpx.Response:
    nonce = c.a.next_nonce()
    body = f"nonce={nonce}".encode()
    first = c.a.send("Balance", body, nonce)
    assert first.json()["error"] == []
    return c.a.send("Balance", body, nonce)


def _lower_nonce(c: Ctx) -> httpx.Response:
    c.a.next_nonce()
    nonce = str(c.a.nonce - 1000)
    return c.a.send("Balance", f"nonce={nonce}".encode(), nonce)


def _nonce_body(text: str, method: str = "Balance") -> Callable[[Ctx], httpx.Response]:
    """A body whose nonce field is ``text`` (signed as if that were the nonce)."""

    def send(c: Ctx) -> httpx.Response:
        fields = urllib.parse.urlencode(LIMIT_BUY if method == "AddOrder" else {"asset": "ZUSD"})
        body = f"nonce={text}&{fields}".encode() if text else fields.encode()
        return c.a.send(method, body, text)

    return send


def _raw_body(method: str, body: bytes, content_type: str) -> Callable[[Ctx], httpx.Response]:
    def send(c: Ctx) -> httpx.Response:
        return c.a.send(method, body, c.a.next_nonce(), content_type=content_type)

    return send


def _form_bytes(method: str, tail: bytes) -> Callable[[Ctx], httpx.Response]:
    """A form body written by hand (``nonce=...`` then ``tail``), signed correctly."""

    def send(c: Ctx) -> httpx.Response:
        nonce = c.a.next_nonce()
        return c.a.send(method, f"nonce={nonce}&".encode() + tail, nonce)

    return send


def _huge_body(c: Ctx) -> httpx.Response:
    nonce = c.a.next_nonce()
    body = urllib.parse.urlencode({"nonce": nonce, **LIMIT_BUY, "pad": "x" * BODY_BYTES_MAX}).encode()
    return c.a.send("AddOrder", body, nonce)


def _as(who: str, method: str, **params: str) -> Callable[[Ctx], httpx.Response]:
    return lambda c: getattr(c, who).form(method, params)


def _in_mode(
    mode: str, target: str, send: Callable[[Ctx], httpx.Response]
) -> Callable[[Ctx], httpx.Response]:
    """Send while ``target`` (a pair or "system") is in ``mode``; always back online afterwards."""

    def wrapped(c: Ctx) -> httpx.Response:
        c.server.admin("POST", "/admin/mode", {"pair": target, "mode": mode})
        try:
            return send(c)
        finally:
            c.server.admin("POST", "/admin/mode", {"pair": target, "mode": "online"})

    return wrapped


def _get_private(c: Ctx) -> httpx.Response:
    return c.http.get("/0/private/Balance")


def _post_public(c: Ctx) -> httpx.Response:
    return c.http.post("/0/public/Time", content=b"")


def _public(method: str, **params: str) -> Callable[[Ctx], httpx.Response]:
    return lambda c: c.http.get(f"/0/public/{method}", params=params)


# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    error: str
    send: Callable[[Ctx], httpx.Response]
    status: int = 200


INVALID = "EGeneral:Invalid arguments"
NO_PAIR = "EQuery:Unknown asset pair"
BAD_PRICE = "EOrder:Invalid price:Invalid price argument"

CASES = [
    # authentication, in the doc's check order (§2.1)
    Case("unknown API key", "EAPI:Invalid key", _with_headers({"API-Key": "K" * 56})),
    Case("missing API-Key header", "EAPI:Invalid key", _with_headers({"API-Key": None})),
    Case("signature from another secret", "EAPI:Invalid signature", _signed_with_other_secret),
    Case("signature over another path", "EAPI:Invalid signature", _signed_for_other_path),
    Case("body changed after signing", "EAPI:Invalid signature", _body_changed_after_signing),
    Case("API-Sign not base64", "EAPI:Invalid signature", _with_headers({"API-Sign": "not base64!"})),
    Case("missing API-Sign header", "EAPI:Invalid signature", _with_headers({"API-Sign": None})),
    Case("replayed nonce", "EAPI:Invalid nonce", _replayed),
    Case("lower nonce", "EAPI:Invalid nonce", _lower_nonce),
    Case("missing nonce", "EAPI:Invalid nonce", _nonce_body("")),
    Case("non-numeric nonce", "EAPI:Invalid nonce", _nonce_body("12ab")),
    Case("negative nonce", "EAPI:Invalid nonce", _nonce_body("-5")),
    # above the stores' signed 64-bit integer: once failed the batch carrying it and stopped trading
    Case("nonce 2**63", "EAPI:Invalid nonce", _nonce_body(str(2**63))),
    Case("order with nonce 2**64 - 1", "EAPI:Invalid nonce", _nonce_body(str(2**64 - 1), "AddOrder")),
    Case(
        "AddOrder with a query-funds key",
        "EGeneral:Permission denied",
        _as("funds_only", "AddOrder", **LIMIT_BUY),
    ),
    Case("CancelAll with a query-funds key", "EGeneral:Permission denied", _as("funds_only", "CancelAll")),
    Case("Ledgers with a query-funds key", "EGeneral:Permission denied", _as("funds_only", "Ledgers")),
    Case("BalanceEx with a create-orders key", "EGeneral:Permission denied", _as("create_only", "BalanceEx")),
    Case(
        "CancelOrder with a create-orders key",
        "EGeneral:Permission denied",
        _as("create_only", "CancelOrder", txid=UNKNOWN_ORDER),
    ),
    # transport
    Case("unknown private method", "EGeneral:Unknown method", call("Withdraw2")),
    Case("GET on a private endpoint", "EGeneral:Unknown method", _get_private),
    Case("POST on a public endpoint", "EGeneral:Unknown method", _post_public, status=405),
    Case("unknown public method", "EGeneral:Unknown method", _public("Tickers")),
    Case("bad JSON body", INVALID, _raw_body("Balance", b'{"nonce": "1",', "application/json")),
    Case("JSON body that is an array", INVALID, _raw_body("Balance", b'["nonce"]', "application/json")),
    Case("form body that is not UTF-8", INVALID, _form_bytes("Balance", b"asset=%ff%fe")),
    Case(
        "repeated form key",
        f"{INVALID}:volume",
        _form_bytes(
            "AddOrder", b"pair=XBTUSD&type=buy&ordertype=limit&volume=0.001&volume=0.002&price=20000.0"
        ),
    ),
    Case(
        "repeated JSON key",
        f"{INVALID}:type",
        _raw_body(
            "AddOrder",
            b'{"pair":"XBTUSD","type":"buy","type":"sell","ordertype":"market","volume":"0.001"}',
            "application/json",
        ),
    ),
    Case("body over 64 KiB", INVALID, _huge_body),
    # pair and side
    Case("unknown pair", NO_PAIR, add(pair="XBTUSDX")),
    Case("missing pair", NO_PAIR, add(pair=None)),
    Case("pair as a JSON array", NO_PAIR, add_json(pair=["XBTUSD"])),
    Case("missing type", f"{INVALID}:type", add(type=None)),
    Case("unknown type", f"{INVALID}:type", add(type="hold")),
    Case("type as a JSON array", f"{INVALID}:type", add_json(type=["buy"])),
    Case("missing ordertype", f"{INVALID}:ordertype", add(ordertype=None)),
    Case("unknown ordertype", f"{INVALID}:ordertype", add(ordertype="fill-or-kill")),
    # volume
    Case("missing volume", f"{INVALID}:volume", add(volume=None)),
    Case("volume with an exponent", f"{INVALID}:volume", add(volume="1e-05")),
    Case("volume NaN", f"{INVALID}:volume", add(volume="NaN")),
    Case("volume with a decimal comma", f"{INVALID}:volume", add(volume="1,5")),
    Case("volume with a leading space", f"{INVALID}:volume", add(volume=" 1")),
    Case("volume with 9 decimals", f"{INVALID}:volume", add(volume="0.001000001")),
    Case("negative volume", f"{INVALID}:volume", add(volume="-0.001")),
    Case("zero volume", f"{INVALID}:volume", add(volume="0")),
    # 3e19 raw units of USDTUSD (10^-12 USD each): beyond 64 bits, its fill could not be journaled
    Case("cost beyond 64 bits", f"{INVALID}:volume", add(pair="USDTUSD", volume="30000000", price="1.0")),
    Case("volume as a JSON float", f"{INVALID}:volume", add_json(volume=0.001)),
    Case("volume of 2**63 lots", f"{INVALID}:volume", add(volume="92233720368.54775808")),
    Case("volume of 35 digits", f"{INVALID}:volume", add(volume="123456789012345678901234567.12345678")),
    Case("volume as a JSON object", f"{INVALID}:volume", add_json(volume={"v": "0.001"})),
    # price
    Case("missing price on a limit", f"{INVALID}:price", add(price=None)),
    Case("price with 2 decimals", PRICE_DECIMALS_ERROR, add(price="20000.05")),
    Case("price with 9 decimals", PRICE_DECIMALS_ERROR, add(price="20000.000000001")),
    Case("price not a number", BAD_PRICE, add(price="abc")),
    Case("price with an exponent", BAD_PRICE, add(price="2e4")),
    Case("price as a JSON float", BAD_PRICE, add_json(price=20000.0)),
    Case("zero price", BAD_PRICE, add(price="0")),
    Case("price of 2**63 ticks", BAD_PRICE, add(price="922337203685477580.8")),
    Case("price of 31 digits", BAD_PRICE, add(price="1" * 31)),
    Case(
        "relative price on a limit before any trade",
        "EOrder:Invalid price:No last trade price for a relative price",
        add(price="-5"),
    ),
    Case("percentage price without a sign", BAD_PRICE, add(price="5%")),
    Case("stop-loss-limit without price2", f"{INVALID}:price2", add(ordertype="stop-loss-limit")),
    Case(
        "price2 not a number",
        "EOrder:Invalid price:Invalid secondary price argument",
        add(ordertype="stop-loss-limit", price="19000.0", price2="x"),
    ),
    # flags and options
    Case("unknown oflag", f"{INVALID}:oflags", add(oflags="post,xyz")),
    Case("fcib with fciq", f"{INVALID}:oflags", add(oflags="fcib,fciq")),
    Case(
        "viqc on a sell", f"{INVALID}:viqc", add(type="sell", ordertype="market", price=None, oflags="viqc")
    ),
    Case("viqc on a limit buy", f"{INVALID}:viqc", add(oflags="viqc")),
    Case("post on a market order", f"{INVALID}:oflags", add(ordertype="market", price=None, oflags="post")),
    Case("unknown timeinforce", f"{INVALID}:timeinforce", add(timeinforce="FOK")),
    Case("GTD without expiretm", f"{INVALID}:expiretm", add(timeinforce="GTD")),
    Case("expiretm in the past", f"{INVALID}:expiretm", add(expiretm=str(int(time.time()) - 3600))),
    Case("expiretm not a time", f"{INVALID}:expiretm", add(expiretm="tomorrow")),
    Case("starttm not a time", f"{INVALID}:starttm", add(starttm="soon")),
    Case("leverage on spot", f"{INVALID}:leverage", add(leverage="2:1")),
    Case("reduce_only=true on spot", f"{INVALID}:reduce_only", add(reduce_only="true")),
    Case(
        "trigger=index",
        f"{INVALID}:Index unavailable",
        add(ordertype="stop-loss", price="19000.0", trigger="index"),
    ),
    Case(
        "unknown trigger", f"{INVALID}:trigger", add(ordertype="stop-loss", price="19000.0", trigger="mark")
    ),
    Case("unknown stptype", f"{INVALID}:stptype", add(stptype="cancel-all")),
    Case("iceberg without displayvol", f"{INVALID}:displayvol", add(ordertype="iceberg")),
    Case(
        "iceberg displayvol below volume/15",
        f"{INVALID}:displayvol",
        add(ordertype="iceberg", volume="0.016", displayvol="0.001"),
    ),
    Case("userref with cl_ord_id", f"{INVALID}:cl_ord_id", add(userref="7", cl_ord_id="both")),
    # cl_ord_id: a long UUID, a 32-hex short UUID, or up to 18 characters of visible ASCII free
    # text without a comma or < > & " ' (tests/gateway/test_cl_ord_id_params.py says why)
    Case("empty cl_ord_id", f"{INVALID}:cl_ord_id", add(cl_ord_id="")),
    Case("cl_ord_id of 19 free characters", f"{INVALID}:cl_ord_id", add(cl_ord_id="a" * 19)),
    Case(
        "cl_ord_id of 36 free characters",
        f"{INVALID}:cl_ord_id",
        add(cl_ord_id="free-form-text-of-36-characters-long"),
    ),
    Case(
        "cl_ord_id shaped as a UUID with a non-hex digit",
        f"{INVALID}:cl_ord_id",
        add(cl_ord_id="6d1b345e-2821-40e2-ad83-4ecb18a0687g"),
    ),
    Case(
        "cl_ord_id of 31 hex digits", f"{INVALID}:cl_ord_id", add(cl_ord_id="da8e4ad59b78481c93e589746b0cf91")
    ),
    Case("cl_ord_id with a space", f"{INVALID}:cl_ord_id", add(cl_ord_id="my id")),
    Case("cl_ord_id with a comma", f"{INVALID}:cl_ord_id", add(cl_ord_id="a,b")),
    Case("cl_ord_id with markup", f"{INVALID}:cl_ord_id", add(cl_ord_id="<script>")),
    Case("cl_ord_id not ASCII", f"{INVALID}:cl_ord_id", add(cl_ord_id="caf\u00e9")),
    Case("cl_ord_id as a JSON number", f"{INVALID}:cl_ord_id", add_json(cl_ord_id=42)),
    Case("userref beyond int32", f"{INVALID}:userref", add(userref="2147483648")),
    Case(
        "conditional close", f"{INVALID}:close", add(**{"close[ordertype]": "limit", "close[price]": "1.0"})
    ),
    Case("deadline elapsed", "EService:Deadline elapsed", add(deadline=rfc3339(-5))),
    Case("deadline too far ahead", f"{INVALID}:deadline", add(deadline=rfc3339(3600))),
    Case("deadline not RFC 3339", f"{INVALID}:deadline", add(deadline="yesterday")),
    # business rules
    Case("insufficient funds", "EOrder:Insufficient funds", add(volume="1")),
    Case(
        "insufficient base to sell",
        "EOrder:Insufficient funds",
        add(type="sell", ordertype="market", price=None, volume="0.1"),
    ),
    Case("order minimum not met", "EOrder:Order minimum not met", add(volume="0.00004")),
    Case("cost minimum not met", "EOrder:Cost minimum not met", add(volume="0.00005", price="100.0")),
    Case("duplicate cl_ord_id", "EOrder:Duplicate cl_ord_id", add(cl_ord_id="dup-1")),
    # an amend is held to the same minimums (A's order: 0.001 @ 20000.0, ordermin 0.00005, costmin 0.5)
    Case(
        "amend below the order minimum",
        "EOrder:Order minimum not met",
        lambda c: c.a.form("AmendOrder", {"txid": c.a_open, "order_qty": "0.00001"}),
    ),
    Case(
        "amend by cl_ord_id below the order minimum",
        "EOrder:Order minimum not met",
        call("AmendOrder", cl_ord_id="dup-1", order_qty="0.00001"),
    ),
    Case(
        "amend the price below the cost minimum",
        "EOrder:Cost minimum not met",
        lambda c: c.a.form("AmendOrder", {"txid": c.a_open, "limit_price": "100.0"}),
    ),
    Case(
        "amend size and price, each fine alone, below the cost minimum",  # 0.0001 x 4000 = 0.4 USD
        "EOrder:Cost minimum not met",
        lambda c: c.a.form("AmendOrder", {"txid": c.a_open, "order_qty": "0.0001", "limit_price": "4000.0"}),
    ),
    Case(
        "pair in cancel_only mode",
        "EService:Market in cancel_only mode",
        _in_mode("cancel_only", "XBTUSD", add()),
    ),
    Case(
        "system in cancel_only mode",
        "EService:Market in cancel_only mode",
        _in_mode("cancel_only", "system", add()),
    ),
    Case(
        "market order in post_only mode",
        "EService:Market in post_only mode",
        _in_mode("post_only", "XBTUSD", add(ordertype="market", price=None)),
    ),
    Case("pair in maintenance", "EService:Unavailable", _in_mode("maintenance", "XBTUSD", add())),
    # order ids
    Case("cancel an unknown order", "EOrder:Unknown order", call("CancelOrder", txid=UNKNOWN_ORDER)),
    Case(
        "cancel a Kraken-shaped id never issued",
        "EOrder:Unknown order",
        call("CancelOrder", txid=KRAKEN_SHAPED_ORDER),
    ),
    Case("cancel a malformed txid", "EOrder:Invalid order", call("CancelOrder", txid="not-an-order")),
    Case("cancel by a superscript digit", "EOrder:Invalid order", call("CancelOrder", txid="²")),
    Case(
        "cancel a canceled order",
        "EOrder:Unknown order",
        lambda c: c.a.form("CancelOrder", {"txid": c.a_canceled}),
    ),
    Case(
        "cancel another account's order",
        "EOrder:Unknown order",
        lambda c: c.a.form("CancelOrder", {"txid": c.b_open}),
    ),
    Case("cancel an unknown cl_ord_id", "EOrder:Unknown order", call("CancelOrder", cl_ord_id="never-used")),
    Case(
        "cancel an unknown UUID cl_ord_id",
        "EOrder:Unknown order",
        call("CancelOrder", cl_ord_id="6d1b345e-2821-40e2-ad83-4ecb18a06876"),
    ),
    Case(
        "amend an unknown cl_ord_id",
        "EOrder:Unknown order",
        call("AmendOrder", cl_ord_id="da8e4ad59b78481c93e589746b0cf91f", order_qty="0.002"),
    ),
    Case("cancel without txid", f"{INVALID}:txid", call("CancelOrder")),
    Case("query an unknown order", "EOrder:Invalid order", call("QueryOrders", txid=UNKNOWN_ORDER)),
    Case("query a malformed txid", "EOrder:Invalid order", call("QueryOrders", txid="O123")),
    Case(
        "query another account's order",
        "EOrder:Invalid order",
        lambda c: c.a.form("QueryOrders", {"txid": c.b_open}),
    ),
    Case("query without txid", f"{INVALID}:txid", call("QueryOrders")),
    Case(
        "amend an unknown order",
        "EOrder:Unknown order",
        call("AmendOrder", txid=UNKNOWN_ORDER, order_qty="0.002"),
    ),
    Case(
        "amend a malformed txid", "EOrder:Invalid order", call("AmendOrder", txid="bogus", order_qty="0.002")
    ),
    Case(
        "amend another account's order",
        "EOrder:Unknown order",
        lambda c: c.a.form("AmendOrder", {"txid": c.b_open, "order_qty": "0.002"}),
    ),
    Case("amend without txid or cl_ord_id", f"{INVALID}:txid", call("AmendOrder", order_qty="0.002")),
    Case(
        "amend price with 2 decimals",
        PRICE_DECIMALS_ERROR,
        lambda c: c.a.form("AmendOrder", {"txid": c.a_open, "limit_price": "20000.05"}),
    ),
    Case(
        "edit an unknown order",
        "EOrder:Unknown order",
        call("EditOrder", txid=UNKNOWN_ORDER, pair="XBTUSD", volume="0.002"),
    ),
    Case("QueryTrades with a malformed id", f"{INVALID}:txid", call("QueryTrades", txid="T-1")),
    Case("QueryLedgers with a malformed id", f"{INVALID}:id", call("QueryLedgers", id="L-1")),
    # batches
    Case("AddOrderBatch with 1 order", f"{INVALID}:orders", batch([BATCH_ORDER])),
    Case("AddOrderBatch with 16 orders", f"{INVALID}:orders", batch([BATCH_ORDER] * 16)),
    Case(
        "AddOrderBatch with mixed pairs",
        f"{INVALID}:pair",
        batch([BATCH_ORDER, {**BATCH_ORDER, "pair": "ETHUSD", "volume": "0.01", "price": "2000.00"}]),
    ),
    Case(
        "AddOrderBatch with an unknown per-order pair",
        NO_PAIR,
        batch([BATCH_ORDER, {**BATCH_ORDER, "pair": "NOPE"}]),
    ),
    Case(
        "AddOrderBatch without pair",
        NO_PAIR,
        lambda c: c.a.json("AddOrderBatch", {"orders": [BATCH_ORDER] * 2}),
    ),
    Case(
        "AddOrderBatch with one invalid order",
        f"{INVALID}:volume",
        batch([BATCH_ORDER, {**BATCH_ORDER, "volume": "1e-3"}]),
    ),
    Case(
        "AddOrderBatch with one bad cl_ord_id",
        f"{INVALID}:cl_ord_id",
        batch([BATCH_ORDER, {**BATCH_ORDER, "cl_ord_id": "a" * 19}]),
    ),
    Case(
        "AddOrderBatch orders not a list",
        f"{INVALID}:orders",
        lambda c: c.a.json("AddOrderBatch", {"pair": "XBTUSD", "orders": BATCH_ORDER}),
    ),
    Case(
        "AddOrderBatch deadline elapsed",
        "EService:Deadline elapsed",
        batch([BATCH_ORDER] * 2, deadline=rfc3339(-5)),
    ),
    Case(
        "CancelOrderBatch with 51 ids",
        f"{INVALID}:orders",
        call_json("CancelOrderBatch", {"orders": [UNKNOWN_ORDER] * 51}),
    ),
    Case(
        "CancelOrderBatch of unknown orders",
        "EOrder:Unknown order",
        call_json("CancelOrderBatch", {"orders": [UNKNOWN_ORDER, {"txid": UNKNOWN_ORDER}]}),
    ),
    Case(
        "CancelOrderBatch orders of numbers",
        f"{INVALID}:orders",
        call_json("CancelOrderBatch", {"orders": [1, 2]}),
    ),
    # other private endpoints
    Case("CancelAllOrdersAfter a day", f"{INVALID}:timeout", call("CancelAllOrdersAfter", timeout="86400")),
    Case("CancelAllOrdersAfter without timeout", f"{INVALID}:timeout", call("CancelAllOrdersAfter")),
    Case("Ledgers of an unknown asset", "EQuery:Unknown asset", call("Ledgers", asset="XYZ")),
    Case("TradeBalance in an unknown asset", "EQuery:Unknown asset", call("TradeBalance", asset="XYZ")),
    Case("TradeVolume of an unknown pair", NO_PAIR, call("TradeVolume", pair="XYZUSD")),
    Case(
        "ClosedOrders with a bad closetime", f"{INVALID}:closetime", call("ClosedOrders", closetime="never")
    ),
    # public endpoints
    Case("Depth of an unknown pair", NO_PAIR, _public("Depth", pair="XYZUSD")),
    Case("Depth without pair", f"{INVALID}:pair", _public("Depth")),
    Case("Depth count 0", f"{INVALID}:count", _public("Depth", pair="XBTUSD", count="0")),
    Case(
        "OHLC with an unknown interval", f"{INVALID}:interval", _public("OHLC", pair="XBTUSD", interval="2")
    ),
    Case("Assets of an unknown asset", "EQuery:Unknown asset", _public("Assets", asset="XYZ")),
]


def test_the_table_is_large_and_unambiguous() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_request_gets_the_exact_error_and_moves_nothing(ctx: Ctx, case: Case) -> None:
    before = ctx.snapshot()
    response = case.send(ctx)
    assert response.status_code == case.status
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith("{")
    assert response.json() == {"error": [case.error]}
    assert ctx.snapshot() == before
    assert ctx.a.ok("QueryOrders", {"txid": ctx.a_open})[ctx.a_open]["status"] == "open"


def test_each_form_of_cl_ord_id_places_and_names_its_order(ctx: Ctx) -> None:
    """The three forms the contract allows are accepted, and each then finds its order."""
    for cl_ord_id in (
        "6d1b345e-2821-40e2-ad83-4ecb18a06876",  # long UUID
        "da8e4ad59b78481c93e589746b0cf91f",  # short UUID
        "free-text-18-chars",  # free text at its limit
    ):
        placed = ctx.a.ok("AddOrder", {**LIMIT_BUY, "cl_ord_id": cl_ord_id})["txid"][0]
        assert ctx.a.ok("QueryOrders", {"txid": placed})[placed]["cl_ord_id"] == cl_ord_id
        assert ctx.a.ok("CancelOrder", {"cl_ord_id": cl_ord_id}) == {"count": 1}


def test_orders_are_still_sequenced_after_every_bad_request(ctx: Ctx) -> None:
    """Runs after the table: no refusal above may have stopped the sequencer."""
    placed = ctx.a.ok("AddOrder", LIMIT_BUY)["txid"][0]
    assert ctx.a.ok("CancelOrder", {"txid": placed})["count"] == 1
