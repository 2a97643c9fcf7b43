"""Shared kit for the WebSocket tests (no tests here): a raw v2 client and a signing REST client."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from abyssal.gateway.auth import sign

Frame = dict[str, Any]
RECV_TIMEOUT_S = 10.0


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/v2"


class WsClient:
    """A raw v2 client that keeps each frame's text (to check number formatting)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[tuple[Frame, str]] = []  # frames read past while waiting for another
        self.req_id = 0

    @classmethod
    async def open(cls, http_url: str, path: str = "/v2", **kwargs: Any) -> WsClient:
        """``compression=None`` takes the server's direct write path, the default (deflate) its ASGI path."""
        ws = await connect(http_url.replace("http://", "ws://") + path, **kwargs)
        return cls(ws)

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, message: Frame | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def request(self, method: str, params: Frame | None = None) -> int:
        self.req_id += 1
        message: Frame = {"method": method, "req_id": self.req_id}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return self.req_id

    async def recv(self, timeout: float = RECV_TIMEOUT_S) -> tuple[Frame, str]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        text = raw if isinstance(raw, str) else raw.decode()
        return json.loads(text, parse_float=Decimal), text

    async def until(self, match: Callable[[Frame], bool], timeout: float = RECV_TIMEOUT_S) -> Frame:
        return (await self.until_raw(match, timeout))[0]

    async def until_raw(
        self, match: Callable[[Frame], bool], timeout: float = RECV_TIMEOUT_S
    ) -> tuple[Frame, str]:
        """The first frame (seen earlier or new) that matches; others are kept in ``seen``."""
        for i, (frame, text) in enumerate(self.seen):
            if match(frame):
                del self.seen[i]
                return frame, text
        deadline = time.monotonic() + timeout
        while True:
            frame, text = await self.recv(max(0.01, deadline - time.monotonic()))
            if match(frame):
                return frame, text
            self.seen.append((frame, text))

    async def reply(self, req_id: int, timeout: float = RECV_TIMEOUT_S) -> Frame:
        return await self.until(lambda f: f.get("req_id") == req_id and "channel" not in f, timeout)

    async def data(self, channel: str, kind: str | None = None, timeout: float = RECV_TIMEOUT_S) -> Frame:
        return await self.until(
            lambda f: f.get("channel") == channel and (kind is None or f.get("type") == kind), timeout
        )

    def drop_seen(self, channel: str) -> None:
        self.seen = [(f, t) for f, t in self.seen if f.get("channel") != channel]


class Rest:
    """A signing Kraken REST client (async), strictly increasing nonces."""

    def __init__(self, url: str, key: dict[str, Any]) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=20)
        self.api_key = key["api_key"]
        self.secret = key["api_secret"]
        self.nonce = time.time_ns() // 1000

    async def private(self, method: str, **params: str) -> Any:
        payload = await self.private_raw(method, **params)
        assert payload["error"] == [], f"{method} {params}: {payload['error']}"
        return payload["result"]

    async def private_raw(self, method: str, **params: str) -> Any:
        """The whole answer, errors included."""
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        path = f"/0/private/{method}"
        headers = {
            "API-Key": self.api_key,
            "API-Sign": sign(self.secret, path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = await self.http.post(path, content=body, headers=headers)
        return response.json()

    async def token(self) -> str:
        return str((await self.private("GetWebSocketsToken"))["token"])

    async def limit(self, side: str, volume: str, price: str, **extra: str) -> str:
        result = await self.private(
            "AddOrder", pair="XBTUSD", type=side, ordertype="limit", volume=volume, price=price, **extra
        )
        return str(result["txid"][0])

    async def close(self) -> None:
        await self.http.aclose()


NUMBER = re.compile(rb'"(\w+)":(-?[0-9][0-9.eE+-]*)')


def numbers_in(text: str) -> dict[str, list[str]]:
    """Every ``"key":<number>`` in a frame's text, as written (to check decimals and no floats)."""
    found: dict[str, list[str]] = {}
    for key, value in NUMBER.findall(text.encode()):
        found.setdefault(key.decode(), []).append(value.decode())
    return found


def decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0
