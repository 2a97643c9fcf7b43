"""Helpers for payments tests: an in-process exchange with a tenant token and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.ops.inprocess import Client, Lifespan, wait_ready

from abyssal.adapters.event_log_outbox import EventLogOutbox
from abyssal.config import load_config
from abyssal.gateway.app import App
from abyssal.runtime.exchange import Exchange
from abyssal.runtime.payments import PaymentService


@dataclass
class Tenant:
    name: str
    account: int
    token: str
    kraken: dict[str, Any]

    def headers(self, key: str | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            out["Idempotency-Key"] = key
        return out


@dataclass
class Clock:
    now_ns: int

    def __call__(self) -> int:
        self.now_ns += 1  # strictly increasing, like the sequencer's clock
        return self.now_ns


@dataclass
class Env:
    exchange: Exchange
    client: Client
    http: httpx.AsyncClient
    tenants: dict[str, Tenant] = field(default_factory=dict)

    async def tenant(self, name: str, **deposits: str) -> Tenant:
        created = await self.client.account(name, **deposits)
        token = (await self.client.admin("POST", "/admin/payments/tokens", {"account": name}))["token"]
        t = Tenant(name, created["account_id"], token, created)
        self.tenants[name] = t
        return t

    async def withdraw_key(
        self, t: Tenant, asset: str = "USD", key: str = "bank", address: str = "CH93-0076"
    ) -> None:
        r = await self.http.post(
            "/v1/withdraw-keys", json={"asset": asset, "key": key, "address": address}, headers=t.headers()
        )
        assert r.status_code == 201, r.text

    def service(self, clock: Callable[[], int]) -> PaymentService:
        """A second service over the same store and engine, with a fake clock (limits, cutoffs)."""
        ex = self.exchange
        return PaymentService(ex.payment_store, ex.instruments, ex.execute, ex.payment_io, clock_ns=clock)

    async def audit(self) -> list[str]:
        status = await self.client.admin("GET", "/admin/status")
        return list(status["audit"])

    async def settled(self) -> None:
        """Wait until both relays published everything (the outbox table, the event log)."""
        events = EventLogOutbox(self.exchange.store)
        for _ in range(400):
            backlog = await self.exchange.payment_io(self.exchange.payment_store.outbox_backlog)
            backlog += await self.exchange.payment_io(events.outbox_backlog)
            if backlog == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the outbox did not drain")


@asynccontextmanager
async def exchange_env(tmp_path: Path, database: str | None = None) -> AsyncIterator[Env]:
    """An in-process exchange (SQLite in ``tmp_path``, or the ``database`` URL); audited on exit."""
    exchange = Exchange(load_config(), tmp_path / "data", database=database)
    app = App(exchange)
    lifespan = Lifespan(app)
    assert (await lifespan.start())["type"] == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://abyssal.test") as http:
        await wait_ready(http)
        client = Client(http, exchange.admin_token)
        try:
            env = Env(exchange, client, http)
            yield env
            assert await env.audit() == []
        finally:
            assert (await lifespan.stop())["type"] == "lifespan.shutdown.complete"


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]
