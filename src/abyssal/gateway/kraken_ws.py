"""Kraken WebSocket v2 at ``/v2`` and ``/v2/auth``: connections, subscriptions, heartbeats.

Wiring (docs/adr/0004-websocket.md): committed batches reach the market data views, which tell
the ``Publisher`` what changed; it runs conflated rounds of public frames. The ``BatchTap``
(one sequencer listener) feeds executions, balances and level3 and takes their snapshots at
batch boundaries. Every frame goes through a connection's ``Wire``: a bounded buffer that is
written a few dozen connections per loop turn and closes connections that stop reading. No
stage awaits a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

from abyssal.core.messages import ModeChanged
from abyssal.gateway.ws_balances import Balances
from abyssal.gateway.ws_batches import BatchTap, Results
from abyssal.gateway.ws_codec import HEARTBEAT, Json, Reply, encode
from abyssal.gateway.ws_executions import Executions
from abyssal.gateway.ws_level3 import Level3
from abyssal.gateway.ws_market import status_frame
from abyssal.gateway.ws_publisher import Publisher
from abyssal.gateway.ws_session import Session
from abyssal.gateway.ws_subscriptions import Registry, Subscription
from abyssal.gateway.ws_tokens import TOKEN_CHARS_MAX, Tokens
from abyssal.gateway.ws_wire import Flusher, Wire, direct_transport
from abyssal.runtime.exchange import Exchange

log = structlog.get_logger("abyssal.ws")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PATHS: Final = frozenset({"/v2", "/v2/auth"})
HEARTBEAT_INTERVAL_S: Final = 1.0  # Kraken: "about once a second" on a subscribed, idle connection
TOKEN_PRUNE_INTERVAL_S: Final = 60.0
PUBLIC_CHANNELS: Final = frozenset({"book", "ticker", "trade", "ohlc", "instrument", "heartbeat", "status"})


async def _refuse_handshake(scope: Scope, send: Send, status: int, error: str) -> None:
    """Answer the upgrade request with a plain HTTP error (or a 403 where the server cannot)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = encode({"error": [error]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def fetch_shared_token(exchange: Exchange, frame: str | bytes) -> None:
    """Scaled out: a token issued by another gateway is looked up in PostgreSQL before the frame
    is handled (tokens are 43 characters; an unknown one costs one indexed read)."""
    if isinstance(frame, bytes):
        if b'"token"' not in frame:
            return
    elif '"token"' not in frame:
        return
    try:
        params = json.loads(frame).get("params")
        token = params.get("token") if isinstance(params, dict) else None
    except (ValueError, AttributeError):
        return  # the session refuses the frame with Kraken's error
    if not isinstance(token, str) or not 0 < len(token) <= TOKEN_CHARS_MAX or token in exchange.ws_tokens:
        return
    assert exchange.shared is not None
    found = await exchange.read(exchange.shared.ws_token, token)
    if found is not None:
        if not any(k.key_no == found[0] for k in exchange.keys.by_key.values()):
            await exchange.read(exchange.keys.load_key_no, found[0])  # a key made on another gateway
        exchange.ws_tokens[token] = found


class KrakenWebSocket:
    """The WebSocket service of one exchange; ``App`` routes ``websocket`` scopes here."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.instruments = exchange.instruments
        self.registry = Registry()
        self.flusher = Flusher()
        self.tokens = Tokens(exchange)
        self.tap = BatchTap(exchange)
        self.publisher = Publisher(exchange.market, self.registry, self.flusher)
        self.executions = Executions(exchange, self.registry)
        self.balances = Balances(exchange, self.registry)
        self.level3 = Level3(exchange, self.registry)
        self.sessions: dict[Session, None] = {}
        self.ready = False
        self._housekeeper: asyncio.Task[None] | None = None
        exchange.on_ready.append(self._on_ready)

    def _on_ready(self) -> None:
        self.publisher.attach()
        self.tap.attach()
        self.tap.feeds.extend(
            [self.executions.on_batch, self.balances.on_batch, self.level3.on_batch, self._modes]
        )
        self._housekeeper = asyncio.get_running_loop().create_task(self._housekeep())
        self.ready = True

    # -- one connection ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope.get("path") not in PATHS:
            await _refuse_handshake(scope, send, 404, "EGeneral:Unknown method")
            return
        if not self.ready:  # recovery still running: clients retry
            await _refuse_handshake(scope, send, 503, "EService:Unavailable")
            return
        await send({"type": "websocket.accept"})
        wire = Wire(send, self.flusher, direct_transport(send))
        session = Session(self, wire, secrets.randbits(63))
        self.sessions[session] = None
        wire.push(status_frame(self.exchange.engine.s.system_mode, session.connection_id))
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    data = message.get("text")
                    frame = data if data is not None else message.get("bytes", b"")
                    if self.exchange.shared is not None:
                        await fetch_shared_token(self.exchange, frame)
                    session.handle(frame, time.time_ns())
                elif kind == "websocket.disconnect":
                    break
        finally:
            self.sessions.pop(session, None)
            session.close()
            await wire.finish()

    # -- subscriptions -----------------------------------------------------------------------------
    def start(self, session: Session, sub: Subscription, result: Json, reply: Reply) -> None:
        """Register a parsed subscription, acknowledge it, then send its snapshot."""
        if sub.channel in PUBLIC_CHANNELS:
            session.add(sub)
            session.send(reply.ok(result))
            frame = self._public_snapshot(sub)
            if frame is not None:
                session.send(frame)
            return
        feeds: dict[str, Executions | Balances | Level3] = {
            "executions": self.executions,
            "balances": self.balances,
            "level3": self.level3,
        }
        feed = feeds[sub.channel]

        def at_boundary() -> None:
            if session.closed:
                return
            session.add(sub)
            session.send(reply.ok(result))
            feed.start(sub)

        self.tap.at_boundary(at_boundary)

    def _public_snapshot(self, sub: Subscription) -> bytes | None:
        publisher = self.publisher
        if sub.channel == "trade":
            frame, newest = publisher.trade_snapshot(sub.pair)
            sub.after_trade_id = newest
            return frame if sub.snapshot else None
        if not sub.snapshot:
            return None
        if sub.channel == "book":
            return publisher.book_snapshot(sub.pair, sub.depth)
        if sub.channel == "ticker":
            return publisher.ticker_snapshot(sub.pair)
        if sub.channel == "ohlc":
            return publisher.ohlc_snapshot(sub.pair, sub.interval)
        if sub.channel == "instrument":
            return publisher.instrument_frame(self.exchange.engine.s.modes, "snapshot")
        return None

    def on_unsubscribed(self, sub: Subscription) -> None:
        if sub.channel == "executions":
            self.executions.stop(sub)
        elif sub.channel == "level3":
            self.level3.stop(sub)

    # -- status changes and housekeeping ------------------------------------------------------------
    def _modes(self, results: Results) -> None:
        changes = [e for _, _, events in results for e in events if isinstance(e, ModeChanged)]
        if not changes:
            return
        s = self.exchange.engine.s
        self.registry.broadcast(("instrument",), self.publisher.instrument_frame(s.modes, "update"))
        if any(e.pair < 0 for e in changes):
            for session in list(self.sessions):
                session.send(status_frame(s.system_mode, session.connection_id))

    async def _housekeep(self) -> None:
        """Heartbeats for idle subscribed connections, slow-consumer checks, token pruning."""
        pruned_at = time.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            now = time.monotonic()
            for session in list(self.sessions):
                wire = session.wire
                if wire.closed or wire.check_full():
                    continue
                if session.subs and now - wire.last_sent_s >= HEARTBEAT_INTERVAL_S:
                    wire.push(HEARTBEAT)
            if now - pruned_at >= TOKEN_PRUNE_INTERVAL_S:
                pruned_at = now
                self.tokens.prune(time.time_ns())

    async def close(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
