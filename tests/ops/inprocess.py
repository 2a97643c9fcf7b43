"""An exchange and its ASGI app in the test's own event loop: lifespan driven by hand, httpx in front."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from abyssal.config import load_config
from abyssal.gateway.app import App
from abyssal.gateway.auth import sign
from abyssal.runtime.exchange import Exchange

READY_TIMEOUT_S = 20.0


@dataclass
class Lifespan:
    """Drives an ASGI app's lifespan protocol: startup on enter, shutdown on ``stop``."""

    app: App
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, Any]:
        self.task = asyncio.create_task(self.app({"type": "lifespan"}, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        return await asyncio.wait_for(self.outbox.get(), READY_TIMEOUT_S)

    async def stop(self) -> dict[str, Any]:
        await self.inbox.put({"type": "lifespan.shutdown"})
        message = await asyncio.wait_for(self.outbox.get(), READY_TIMEOUT_S)
        assert self.task is not None
        await asyncio.wait_for(self.task, READY_TIMEOUT_S)
        return message


@dataclass
class Client:
    """httpx over the app, with the admin token and Kraken signing."""

    http: httpx.AsyncClient
    admin_token: str
    nonce: int = field(default_factory=lambda: time.time_ns() // 1000)

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = await self.http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def account(self, name: str, **deposits: str) -> dict[str, Any]:
        created: dict[str, Any] = await self.admin("POST", "/admin/accounts", {"name": name})
        for asset, amount in deposits.items():
            await self.admin("POST", "/admin/deposits", {"account": name, "asset": asset, "amount": amount})
        return created

    async def private(
        self, key: dict[str, Any], method: str, headers: dict[str, str] | None = None, **params: str
    ) -> Any:
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        path = f"/0/private/{method}"
        signed = {
            "API-Key": key["api_key"],
            "API-Sign": sign(key["api_secret"], path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
            **(headers or {}),
        }
        r = await self.http.post(path, content=body, headers=signed)
        assert r.status_code == 200, r.text
        return r.json()


async def wait_ready(http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if (await http.get("/health/ready")).status_code == 200:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the exchange did not become ready")


@asynccontextmanager
async def running(data_dir: Path, *, ready: bool = True) -> AsyncIterator[tuple[App, Exchange, Client]]:
    """Start an exchange on ``data_dir``; on exit, shut it down gracefully."""
    exchange = Exchange(load_config(), data_dir)
    app = App(exchange)
    lifespan = Lifespan(app)
    assert (await lifespan.start())["type"] == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://abyssal.test") as http:
        if ready:
            await wait_ready(http)
        try:
            yield app, exchange, Client(http, exchange.admin_token)
        finally:
            assert (await lifespan.stop())["type"] == "lifespan.shutdown.complete"
