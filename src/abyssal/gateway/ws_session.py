"""One WebSocket connection: request limits, method dispatch, and its subscriptions.

Requests are answered in the order they arrive, except trading methods, which run as tasks
(at most ``TRADING_IN_FLIGHT_MAX`` per connection) so a connection can keep several orders in
flight; their replies carry the request's ``req_id``. Nothing a client sends can affect another
connection: a bad frame gets an error reply, a flood gets refusals and then a close.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final

from abyssal.gateway import ws_channels, ws_trading
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.ws_codec import FrameError, Json, Reply, decode_request, req_id_of
from abyssal.gateway.ws_subscriptions import Subscription
from abyssal.gateway.ws_tokens import INVALID_SESSION, TokenError
from abyssal.gateway.ws_wire import Wire

if TYPE_CHECKING:
    from abyssal.gateway.auth import Permission
    from abyssal.gateway.kraken_ws import KrakenWebSocket

FRAME_BYTES_MAX: Final = 64 * 1024  # a batch_add of 15 orders is about 5 KiB
REQUESTS_PER_S: Final = 50.0  # sustained, per connection (token bucket)
REQUESTS_BURST: Final = 100
REFUSALS_MAX: Final = 200  # refused requests within REFUSALS_WINDOW_S before the connection is closed
REFUSALS_WINDOW_S: Final = 10.0
TRADING_IN_FLIGHT_MAX: Final = 64
FLOOD_CODE: Final = 1008
FLOOD_REASON: Final = "request flood: too many requests refused"
TOO_MANY_REQUESTS: Final = "EGeneral:Too many requests"
TRADING_METHODS: Final = frozenset(ws_trading.HANDLERS)


class Session:
    def __init__(self, service: KrakenWebSocket, wire: Wire, connection_id: int) -> None:
        self.service = service
        self.wire = wire
        self.connection_id = connection_id
        self.subs: dict[tuple[str, int], Subscription] = {}
        self.key: ApiKey | None = None  # bound by the first token this connection used
        self._allowance = float(REQUESTS_BURST)
        self._allowance_at = time.monotonic()
        self._refusals = 0
        self._refusals_since = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    # -- requests ----------------------------------------------------------------------------
    def handle(self, data: str | bytes, time_in_ns: int) -> None:
        """One incoming frame. Never raises for anything the client sent."""
        if self.closed:
            return
        if not self._admit():
            self._refuse(Reply("", None, time_in_ns), TOO_MANY_REQUESTS)
            return
        if len(data) > FRAME_BYTES_MAX:
            self._refuse(
                Reply("", None, time_in_ns), f"EGeneral:Invalid arguments:frame over {FRAME_BYTES_MAX} bytes"
            )
            return
        try:
            request = decode_request(data)
        except FrameError as err:
            self._refuse(Reply("", None, time_in_ns), str(err))
            return
        method = request.get("method")
        reply = Reply(method if isinstance(method, str) else "", req_id_of(request), time_in_ns)
        if "req_id" in request and reply.req_id is None:
            self._refuse(reply, "EGeneral:Invalid arguments:req_id")
            return
        params = request.get("params", {})
        if not isinstance(method, str) or not (method in ws_channels.METHODS or method in TRADING_METHODS):
            self._refuse(reply, "Unsupported event")
            return
        if not isinstance(params, dict):
            self._refuse(reply, "EGeneral:Invalid arguments:params")
            return
        if method == "ping":
            if "params" in request:
                self.send(reply.error("Unsupported field: 'params' for the given msg type: ping"))
            else:
                self.send(reply.pong())
        elif method in TRADING_METHODS:
            self._start_trading(method, params, reply)
        else:
            ws_channels.handle(self, method, params, reply)

    def _admit(self) -> bool:
        now = time.monotonic()
        self._allowance = min(REQUESTS_BURST, self._allowance + (now - self._allowance_at) * REQUESTS_PER_S)
        self._allowance_at = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True

    def _refuse(self, reply: Reply, text: str) -> None:
        """Answer a request that was not served; many of them in a short time close the connection."""
        self.send(reply.error(text))
        now = time.monotonic()
        if now - self._refusals_since > REFUSALS_WINDOW_S:
            self._refusals, self._refusals_since = 0, now
        self._refusals += 1
        if self._refusals >= REFUSALS_MAX:
            self.wire.close(FLOOD_CODE, FLOOD_REASON)

    def _start_trading(self, method: str, params: Json, reply: Reply) -> None:
        if len(self._tasks) >= TRADING_IN_FLIGHT_MAX:
            self._refuse(reply, TOO_MANY_REQUESTS)
            return
        task = asyncio.get_running_loop().create_task(ws_trading.run(self, method, params, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- helpers for channel and trading handlers ----------------------------------------------
    def send(self, frame: bytes) -> None:
        self.wire.push(frame)

    def authorize(self, token: object, needed: Permission | None) -> ApiKey:
        """The key behind ``token``; a connection speaks for one account only."""
        key = self.service.tokens.key_for(token, time.time_ns(), needed)
        if self.key is not None and key.account != self.key.account:
            raise TokenError(INVALID_SESSION)
        self.key = key
        return key

    def subscription_count(self) -> int:
        return len(self.subs)

    def add(self, sub: Subscription) -> None:
        """Register a subscription, replacing this connection's previous one on the same key."""
        key = (sub.channel, sub.pair)
        old = self.subs.get(key)
        if old is not None:
            self.drop(old)
        self.subs[key] = sub
        self.service.registry.add(sub)
        if sub.token:  # a private subscription keeps its token valid while it lives
            self.service.tokens.pin(sub.token)

    def drop(self, sub: Subscription) -> None:
        self.service.registry.remove(sub)
        if self.subs.get((sub.channel, sub.pair)) is sub:
            del self.subs[(sub.channel, sub.pair)]
        if sub.token:
            self.service.tokens.unpin(sub.token)
        self.service.on_unsubscribed(sub)

    def close(self) -> None:
        """The connection ended: leave every group (unpinning tokens), cancel trading tasks."""
        if self.closed:
            return
        self.closed = True
        for sub in list(self.subs.values()):
            self.drop(sub)
        for task in self._tasks:
            task.cancel()  # the command itself still runs; only its reply is dropped
