"""The native payments API under /v1: deposits, withdrawals, withdrawal keys, webhooks.

Authentication: ``Authorization: Bearer <token>``, one token per tenant (account) issued by the
admin API; only its SHA-256 is stored. Writes that move money require an ``Idempotency-Key``
header (1 to 255 characters); see docs/payments.md for the contract. Amounts are decimal
strings; a JSON number where money is expected is refused. Parse, authenticate, translate:
the rules live in runtime/payments.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import msgspec

from abyssal import tracing
from abyssal.core.instruments import Asset
from abyssal.gateway.params import parse_decimal
from abyssal.gateway.payments_openapi import OPENAPI
from abyssal.runtime import payment_records as records
from abyssal.runtime.payments import Answer, PaymentService

if TYPE_CHECKING:
    from abyssal.gateway.app import Receive, Scope, Send
    from abyssal.runtime.exchange import Exchange

V1_BODY_BYTES_MAX = 16 * 1024
IDEMPOTENCY_KEY_CHARS_MAX = 255
LIST_ROWS_MAX = 100
TEXT_CHARS_MAX = 128
URL_CHARS_MAX = 2_000
_JSON = [(b"content-type", b"application/json")]
_REPLAYED = (b"idempotency-replayed", b"true")
_PAYMENT_PATH = re.compile(r"/v1/(deposits|withdrawals)/([A-Z0-9]{1,40})(/cancel)?")
_json = msgspec.json.Encoder(order="sorted")
_openapi_body = _json.encode(OPENAPI)


class V1Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def _send(send: Send, status: int, body: bytes, replayed: bool = False) -> None:
    headers = [*_JSON, _REPLAYED] if replayed else _JSON
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


def payments_of(exchange: Exchange) -> PaymentService:
    if exchange.payments is None:
        raise V1Error(503, "unavailable", "payments are not available on this database")
    return exchange.payments


async def handle_v1(
    exchange: Exchange, path: str, method: str, scope: Scope, receive: Receive, send: Send
) -> None:
    from abyssal.gateway.app import read_body

    body = await read_body(receive, V1_BODY_BYTES_MAX)
    try:
        if path == "/v1/openapi.json" and method == "GET":
            await _send(send, 200, _openapi_body)
            return
        account = await _authenticate(exchange, scope)
        if body is None:
            raise V1Error(413, "body_too_large", f"the body exceeds {V1_BODY_BYTES_MAX} bytes")
        answer = await _route(exchange, account, path, method, scope, body)
    except V1Error as err:
        await _send(send, err.status, _json.encode({"error": {"code": err.code, "message": err.message}}))
        return
    await _send(send, answer.status, answer.body, answer.replayed)


async def _authenticate(exchange: Exchange, scope: Scope) -> int:
    auth = _header(scope, b"authorization") or ""
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
    digest = hashlib.sha256(token.encode()).hexdigest()
    account = exchange.payment_tokens.get(digest) if token else None
    if account is None and token and exchange.shared is not None:  # made on another gateway
        account = await exchange.payment_io(exchange.payment_store.token_account, digest)
        if account is not None:
            exchange.payment_tokens[digest] = account
    if account is None:
        raise V1Error(401, "unauthorized", "a valid bearer token is required")
    return account


def _payload(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise V1Error(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(decoded, dict):
        raise V1Error(400, "invalid_json", "the body must be a JSON object")
    return decoded


def _text(p: dict[str, Any], name: str, *, required: bool = True, chars_max: int = TEXT_CHARS_MAX) -> str:
    value = p.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not 0 < len(value) <= chars_max:
        raise V1Error(400, "invalid_request", f"{name}: a string of 1 to {chars_max} characters is required")
    return value


def _asset(exchange: Exchange, p: dict[str, Any]) -> Asset:
    asset = exchange.instruments.asset(_text(p, "asset"))
    if asset is None:
        raise V1Error(400, "unknown_asset", "asset: unknown")
    return asset


def amount_minor(asset: Asset, raw: object) -> int:
    """A positive decimal string in the asset's precision; a JSON number is refused (money is text)."""
    if not isinstance(raw, str):
        raise V1Error(
            400, "invalid_amount", "amount: a decimal string is required (JSON numbers are refused)"
        )
    value = parse_decimal(raw)
    minor = None if value is None else asset.minor_of(value)
    if minor is None:
        raise V1Error(
            400,
            "invalid_amount",
            f"amount: a positive decimal with at most {asset.decimals} decimals, below 2**63 minor units",
        )
    return minor


def _idempotency_key(scope: Scope) -> str:
    key = _header(scope, b"idempotency-key")
    if key is None:
        raise V1Error(400, "idempotency_key_required", "the Idempotency-Key header is required")
    if not 0 < len(key) <= IDEMPOTENCY_KEY_CHARS_MAX:
        raise V1Error(400, "invalid_idempotency_key", "Idempotency-Key: 1 to 255 characters")
    return key


def _trace_id() -> str:
    trace = tracing.current()
    return trace.trace_id if trace is not None else ""


async def _route(
    exchange: Exchange, account: int, path: str, method: str, scope: Scope, body: bytes
) -> Answer:
    p = _payload(body)
    svc = payments_of(exchange)
    if path == "/v1/deposits" and method == "POST":
        asset = _asset(exchange, p)
        minor = amount_minor(asset, p.get("amount"))
        ref = _text(p, "reference", required=False)
        return await svc.capture_deposit(
            account, "api", _idempotency_key(scope), asset.index, minor, ref, _trace_id()
        )
    if path == "/v1/withdrawals" and method == "POST":
        asset = _asset(exchange, p)
        minor = amount_minor(asset, p.get("amount"))
        key, address = _text(p, "key"), _text(p, "address", required=False)
        return await svc.request_withdrawal(
            account, "api", _idempotency_key(scope), asset.index, minor, key, address, _trace_id()
        )
    if path in ("/v1/deposits", "/v1/withdrawals") and method == "GET":
        kind = "deposit" if path == "/v1/deposits" else "withdrawal"
        rows = await exchange.payment_io(svc.store.payments, account, kind, None, LIST_ROWS_MAX)
        return _ok({"data": [records.resource(exchange.instruments, r) for r in rows]})
    match = _PAYMENT_PATH.fullmatch(path)
    if match is not None:
        return await _one_payment(exchange, svc, account, match, method)
    if path == "/v1/withdraw-keys":
        return await _withdraw_keys(exchange, svc, account, method, p)
    if path.startswith("/v1/webhooks"):
        return await _webhooks(exchange, account, path, method, p, scope)
    raise V1Error(404, "not_found", "unknown path or method")


def _ok(value: object, status: int = 200) -> Answer:
    return Answer(status, _json.encode(value))


async def _one_payment(
    exchange: Exchange, svc: PaymentService, account: int, m: re.Match[str], method: str
) -> Answer:
    kind = "deposit" if m.group(1) == "deposits" else "withdrawal"
    refid = m.group(2)
    if m.group(3) and method == "POST" and kind == "withdrawal":
        result = await svc.resolve(account, refid, "canceled", "canceled")
        if isinstance(result, str):
            status, message = records.REFUSALS[result]
            raise V1Error(status, result, message)
        return _ok(records.resource(exchange.instruments, result))
    if m.group(3) or method != "GET":
        raise V1Error(404, "not_found", "unknown path or method")
    p = await exchange.payment_io(svc.store.payment_by_refid, account, refid)
    if p is None or p.kind != kind:
        raise V1Error(404, "not_found", "no such payment")
    out = records.resource(exchange.instruments, p)
    steps = await exchange.payment_io(svc.store.transitions, p.id)
    out["transitions"] = [
        {"version": v, "from": f, "to": t, "reason": r, "at": records.rfc3339(ts)} for v, f, t, r, ts in steps
    ]
    return _ok(out)


async def _withdraw_keys(
    exchange: Exchange, svc: PaymentService, account: int, method: str, p: dict[str, Any]
) -> Answer:
    if method == "POST":
        asset = _asset(exchange, p)
        name, address = _text(p, "key"), _text(p, "address")
        if address.strip() != address or len(set(address)) < 2:  # what ccxt's check_address refuses
            raise V1Error(400, "invalid_address", "address: no spaces and not a single repeated character")
        wmethod = _text(p, "method", required=False) or records.method_of(asset)
        await exchange.payment_io(
            svc.store.put_withdraw_key, account, asset.index, name, wmethod, address, time.time_ns()
        )
        return _ok({"asset": asset.id, "key": name, "method": wmethod, "address": address}, 201)
    if method == "GET":
        rows = await exchange.payment_io(svc.store.withdraw_keys, account)
        ins = exchange.instruments
        return _ok(
            {
                "data": [
                    {"asset": ins.assets[a].id, "key": n, "method": m, "address": ad} for a, n, m, ad in rows
                ]
            }
        )
    raise V1Error(404, "not_found", "unknown path or method")


async def _webhooks(
    exchange: Exchange, account: int, path: str, method: str, p: dict[str, Any], scope: Scope
) -> Answer:
    store = exchange.webhook_store
    if path == "/v1/webhooks" and method == "POST":
        url = _text(p, "url", chars_max=URL_CHARS_MAX)
        if not url.startswith(("http://", "https://")):
            raise V1Error(400, "invalid_url", "url: an http or https URL is required")
        secret = _text(p, "secret", required=False) or "whsec_" + secrets.token_urlsafe(24)
        hook_id = await exchange.payment_io(store.add_webhook, account, url, secret, time.time_ns())
        return _ok({"id": hook_id, "url": url, "secret": secret}, 201)
    if path == "/v1/webhooks" and method == "GET":
        rows = await exchange.payment_io(store.webhooks, account)
        return _ok({"data": [{"id": i, "url": u, "created_at": records.rfc3339(t)} for i, u, t in rows]})
    if path in ("/v1/webhooks/deliveries", "/v1/webhooks/dead-letters") and method == "GET":
        status = "dead" if path.endswith("dead-letters") else _query(scope, "status")
        rows = await exchange.payment_io(store.deliveries, account, status, LIST_ROWS_MAX)
        return _ok({"data": rows})
    raise V1Error(404, "not_found", "unknown path or method")


def _query(scope: Scope, name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None
