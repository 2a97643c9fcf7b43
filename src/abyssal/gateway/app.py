"""The ASGI application: Kraken REST (/0/public, /0/private), the admin API, lifespan.

A raw ASGI app rather than a framework: on these machines the framework layer, not the
HMAC, is where a signed POST spends its time (see docs/adr/0002-http-stack.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog

from abyssal import tracing
from abyssal.gateway import kraken_account as account
from abyssal.gateway import kraken_funding as funding
from abyssal.gateway import kraken_public as public
from abyssal.gateway import kraken_trading as trading
from abyssal.gateway import web_session
from abyssal.gateway.admin import handle_admin
from abyssal.gateway.auth import (
    INVALID_KEY,
    INVALID_SIGNATURE,
    PERMISSION_DENIED,
    check_otp,
    is_permitted,
    verify,
)
from abyssal.gateway.bodies import parse_body, parse_query
from abyssal.gateway.context import Ctx
from abyssal.gateway.health import LIVE_PATH, READY_PATH, handle_health
from abyssal.gateway.kraken_ws import KrakenWebSocket
from abyssal.gateway.metrics import METRICS_PATH, HttpObserver, bind_exchange, handle_metrics
from abyssal.gateway.params import (
    INVALID_NONCE,
    ParamError,
    Params,
    opt_str,
    read_nonce,
)
from abyssal.gateway.payments_api import handle_v1
from abyssal.gateway.ratelimit import RATE_LIMIT_EXCEEDED, call_cost
from abyssal.runtime.exchange import Exchange

log = structlog.get_logger("abyssal.http")

BODY_BYTES_MAX = 64 * 1024
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
PrivateHandler = Callable[[Ctx, Params], Awaitable[Any]]
PublicHandler = Callable[[Exchange, Params], Awaitable[Any]]

PRIVATE: dict[str, PrivateHandler] = {
    "Balance": account.balance,
    "BalanceEx": account.balance_ex,
    "TradeBalance": account.trade_balance,
    "OpenOrders": account.open_orders,
    "ClosedOrders": account.closed_orders,
    "QueryOrders": account.query_orders,
    "OrderAmends": account.order_amends,
    "TradesHistory": account.trades_history,
    "QueryTrades": account.query_trades,
    "Ledgers": account.ledgers,
    "QueryLedgers": account.query_ledgers,
    "TradeVolume": account.trade_volume,
    "GetWebSocketsToken": account.websockets_token,
    "AddOrder": trading.add_order,
    "AddOrderBatch": trading.add_order_batch,
    "AmendOrder": trading.amend_order,
    "EditOrder": trading.edit_order,
    "CancelOrder": trading.cancel_order,
    "CancelOrderBatch": trading.cancel_order_batch,
    "CancelAll": trading.cancel_all,
    "CancelAllOrdersAfter": trading.cancel_all_orders_after,
    "DepositMethods": funding.deposit_methods,
    "DepositAddresses": funding.deposit_addresses,
    "DepositStatus": funding.deposit_status,
    "WithdrawMethods": funding.withdraw_methods,
    "WithdrawAddresses": funding.withdraw_addresses,
    "WithdrawInfo": funding.withdraw_info,
    "Withdraw": funding.withdraw,
    "WithdrawStatus": funding.withdraw_status,
    "WithdrawCancel": funding.withdraw_cancel,
}

PUBLIC: dict[str, PublicHandler] = {
    "Time": public.time_,
    "SystemStatus": public.system_status,
    "Assets": public.assets,
    "AssetPairs": public.asset_pairs,
    "Ticker": public.ticker,
    "OHLC": public.ohlc,
    "Depth": public.depth,
    "Trades": public.trades,
    "Spread": public.spread,
}

_encoder = msgspec.json.Encoder(decimal_format="number")
JSON_HEADERS = [(b"content-type", b"application/json")]


async def send_json(
    send: Send, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = _encoder.encode(payload)
    await send({"type": "http.response.start", "status": status, "headers": (headers or JSON_HEADERS)})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it is larger than ``limit`` (the rest is drained)."""
    chunks: list[bytes] = []
    size = 0
    too_big = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            too_big = True
        elif chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return None if too_big else b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


UNAVAILABLE_STATUS = 503  # before the exchange has opened (replaying): clients and probes retry
WS_TRY_AGAIN_LATER = 1013


class App:
    def __init__(self, exchange: Exchange, on_fatal: Callable[[], None] | None = None) -> None:
        self.exchange = exchange
        self.on_fatal = on_fatal  # start-up failed after the server began listening: stop the server
        self._opening: asyncio.Task[None] | None = None
        self.websocket = KrakenWebSocket(exchange)  # WebSocket v2 at /v2 and /v2/auth
        routes = [f"/0/public/{n}" for n in PUBLIC] + [f"/0/private/{n}" for n in PRIVATE]
        self.observer = HttpObserver([*routes, "/", METRICS_PATH, LIVE_PATH, READY_PATH])
        bind_exchange(exchange)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self.observer(self._http, scope, receive, send)
        elif kind == "websocket":
            if not self.exchange.opened:  # recovering: no engine to serve from yet; clients retry
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER})
                return
            await self.websocket(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Recovery may replay a long log: listen at once, so that /health/live answers
                # meanwhile and /health/ready says why it is not ready yet.
                self._opening = asyncio.create_task(self._open())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._opening is not None and not self._opening.done():
                    await asyncio.gather(self._opening, return_exceptions=True)
                await self.exchange.close()
                await asyncio.get_running_loop().run_in_executor(None, tracing.flush)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _open(self) -> None:
        try:
            await self.exchange.open()
        except Exception as exc:
            self.exchange.phase = "failed"
            self.exchange.startup_error = str(exc) or repr(exc)
            log.error("startup_failed", error=repr(exc), phase="failed")
            if self.on_fatal is not None:
                self.on_fatal()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if path.startswith("/health/"):
                await handle_health(self.exchange, path, method, send)
            elif path == METRICS_PATH:
                await handle_metrics(method, send)
            elif not self.exchange.opened and path.startswith(("/0/", "/admin/", "/v1/")):
                await send_json(send, UNAVAILABLE_STATUS, {"error": ["EService:Unavailable"]})
            elif self.exchange.role == "marketdata" and not path.startswith("/0/public/"):
                await send_json(send, 404, {"error": ["EGeneral:Unknown method"]})  # public data only
            elif path.startswith("/0/public/"):
                await self._public(path[len("/0/public/") :], method, scope, receive, send)
            elif path.startswith("/0/private/"):
                await self._private(path[len("/0/private/") :], method, scope, receive, send)
            elif path.startswith("/admin/"):
                await handle_admin(self.exchange, path, method, scope, receive, send)
            elif path.startswith("/v1/"):
                await handle_v1(self.exchange, path, method, scope, receive, send)
            elif path.startswith("/api/"):  # the web page's accounts, sessions and keys
                from abyssal.gateway.web_api import handle_api

                await handle_api(self.exchange, path, method, scope, receive, send)
            else:
                from abyssal.gateway.web import serve_static

                if not await serve_static(path, method, send, scope):
                    await send_json(send, 404, {"error": ["EGeneral:Unknown method"]})
        except Exception as exc:  # a fault, never a traceback to the client
            log.exception("request_failed", path=path, error=repr(exc))
            if path.startswith("/v1/"):  # the payments API speaks HTTP statuses: a 2xx would mislead
                fault = {"error": {"code": "internal_error", "message": "the request failed; retry it"}}
                await send_json(send, 500, fault)
            else:  # Kraken answers its own errors with 200
                await send_json(send, 200, {"error": ["EGeneral:Internal error"]})

    async def _public(self, name: str, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        handler = PUBLIC.get(name)
        if handler is None or method not in ("GET", "HEAD"):
            status = 405 if handler is not None else 200
            await send_json(send, status, {"error": ["EGeneral:Unknown method"]})
            return
        try:
            params = parse_query(scope.get("query_string", b""))
            result = await handler(self.exchange, params)
        except ParamError as err:
            await send_json(send, 200, {"error": [err.kraken]})
            return
        await send_json(send, 200, {"error": [], "result": result})

    async def _private(self, name: str, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        handler = PRIVATE.get(name)
        body = await read_body(receive, BODY_BYTES_MAX)
        if handler is None or method != "POST":
            await send_json(send, 200, {"error": ["EGeneral:Unknown method"]})
            return
        try:
            if body is None:
                raise ParamError("EGeneral:Invalid arguments")
            if _header(scope, b"api-key") is None and web_session.has_session_cookie(scope):
                # a logged-in browser: session cookie + CSRF header (docs/adr/0007-web-sessions.md)
                ctx, params = await web_session.authenticate_private(self.exchange, name, scope, body)
            else:
                ctx, params = await self._authenticate(name, scope, body)
            if not await self._spend_call(ctx.key.api_key, call_cost(name), ctx.now_ns):
                raise ParamError(RATE_LIMIT_EXCEEDED)
            if self.exchange.shared is not None:
                await self.exchange.catch_up()  # read-your-writes across gateways
            result = await handler(ctx, params)
        except ParamError as err:
            await send_json(send, 200, {"error": [err.kraken]})
            return
        await send_json(send, 200, {"error": [], "result": result})

    async def _spend_call(self, api_key: str, cost: int, now_ns: int) -> bool:
        calls = self.exchange.calls
        shared = self.exchange.shared
        if shared is None or not calls.enabled or cost == 0:
            return calls.try_spend(api_key, cost, now_ns)
        tier = calls.tier  # one counter for the key, whichever gateway the call reached
        spent: bool = await self.exchange.read(
            shared.spend, f"call:{api_key}", cost * 1_000_000, tier.count_max * 1_000_000,
            tier.decay_micro_per_s, now_ns,
        )  # fmt: skip
        return spent

    async def _authenticate(self, name: str, scope: Scope, body: bytes) -> tuple[Ctx, Params]:
        """Key, signature, nonce, permission, otp: in that order, each with Kraken's error."""
        api_key = _header(scope, b"api-key")
        key = self.exchange.keys.by_key.get(api_key or "")
        if key is None and api_key and self.exchange.shared is not None:  # made on another gateway
            key = await self.exchange.read(self.exchange.keys.load_one, api_key)
        if key is None:
            raise ParamError(INVALID_KEY)
        params = parse_body(body, _header(scope, b"content-type"), body_bytes_max=BODY_BYTES_MAX)
        nonce = read_nonce(params)
        sign = _header(scope, b"api-sign") or ""
        if not verify(key.mac, f"/0/private/{name}", _nonce_text(params, nonce), body, sign):
            raise ParamError(INVALID_SIGNATURE)
        shared = self.exchange.shared
        if shared is None:
            if not self.exchange.keys.nonces.check_and_record(key.api_key, nonce, key.nonce_window):
                raise ParamError(INVALID_NONCE)
        elif not await self.exchange.read(shared.check_nonce, key.key_no, nonce, key.nonce_window):
            raise ParamError(INVALID_NONCE)
        if not is_permitted(key.permissions, name):
            raise ParamError(PERMISSION_DENIED)
        if not check_otp(key.otp, opt_str(params, "otp")):
            raise ParamError(PERMISSION_DENIED)
        return Ctx(self.exchange, key, time.time_ns(), nonce), params


def _nonce_text(params: Params, nonce: int) -> str:
    """The nonce exactly as the client wrote it (a JSON number or a digit string)."""
    raw = params.get("nonce")
    return raw if isinstance(raw, str) else str(nonce)
