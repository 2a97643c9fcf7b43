"""Health probes through the lifecycle, and the graceful shutdown that ends it with a snapshot."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.ops.inprocess import Lifespan, running, wait_ready

from abyssal.adapters.sqlite import SqliteStore
from abyssal.adapters.sqlite_writer import ProcessBatchWriter
from abyssal.config import load_config
from abyssal.core.messages import Deposit, Event
from abyssal.gateway.app import App
from abyssal.runtime import exchange as exchange_module
from abyssal.runtime.exchange import Exchange
from abyssal.runtime.recovery import ReplayMismatch, recover
from abyssal.runtime.sequencer import Unavailable

PROBE_WAIT_S = 10.0


async def _probe(http: httpx.AsyncClient, path: str) -> tuple[int, dict[str, Any]]:
    r = await http.get(path)
    return r.status_code, r.json()


def test_ready_only_after_recovery_while_live_throughout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_recover(store: SqliteStore, instruments: Any) -> Any:
        entered.set()
        assert release.wait(PROBE_WAIT_S)
        return recover(store, instruments)

    monkeypatch.setattr(exchange_module, "recover", slow_recover)

    async def scenario() -> None:
        async with running(tmp_path / "data", ready=False) as (app, exchange, client):
            assert await asyncio.to_thread(entered.wait, PROBE_WAIT_S)
            assert await _probe(client.http, "/health/ready") == (
                503,
                {"status": "unavailable", "phase": "recovering"},
            )
            assert await _probe(client.http, "/health/live") == (200, {"status": "ok", "phase": "recovering"})
            r = await client.http.get("/0/public/Time")
            assert (r.status_code, r.json()) == (503, {"error": ["EService:Unavailable"]})
            sent: list[dict[str, Any]] = []

            async def connect() -> dict[str, Any]:
                return {"type": "websocket.connect"}

            async def record(message: dict[str, Any]) -> None:
                sent.append(message)

            await app({"type": "websocket", "path": "/v2", "headers": []}, connect, record)
            assert sent == [{"type": "websocket.close", "code": 1013}], "WebSocket: try again later"
            release.set()
            await wait_ready(client.http)
            assert await _probe(client.http, "/health/ready") == (
                200,
                {"status": "ok", "phase": "ready", "seq": 0},
            )
            assert (await client.http.get("/0/public/Time")).status_code == 200
            assert (await client.http.post("/health/ready")).status_code == 405
            assert exchange.phase == "ready"

    asyncio.run(scenario())


def test_a_failed_sequencer_is_neither_ready_nor_live(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "data") as (_, exchange, client):
            await client.account("alice", USD="10")

            # the batch writer process dies (as on an out-of-memory kill): the batch cannot commit
            writer = exchange.sequencer.batch_writer
            assert isinstance(writer, ProcessBatchWriter) and writer.pid is not None
            os.kill(writer.pid, signal.SIGKILL)
            with pytest.raises(Unavailable):
                await exchange.execute(
                    Deposit(ts_ns=time.time_ns(), account=1, asset=2, amount_minor=1, ref="x")
                )
            assert await _probe(client.http, "/health/ready") == (
                503,
                {"status": "unavailable", "phase": "failed", "seq": 1},
            )
            assert (await client.http.get("/health/live")).status_code == 503
            r = await client.http.get("/metrics")
            assert "abyssal_ready 0.0" in r.text

    asyncio.run(scenario())


def test_startup_failure_stops_the_server_and_fails_liveness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mismatch(store: SqliteStore, instruments: Any) -> Any:
        raise ReplayMismatch("events differ at seq 7")

    monkeypatch.setattr(exchange_module, "recover", mismatch)
    fatal = asyncio.Event()

    async def scenario() -> None:
        app = App(Exchange(load_config(), tmp_path / "data"), on_fatal=fatal.set)
        lifespan = Lifespan(app)
        assert (await lifespan.start())["type"] == "lifespan.startup.complete"
        await asyncio.wait_for(fatal.wait(), PROBE_WAIT_S)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert await _probe(http, "/health/live") == (503, {"status": "unavailable", "phase": "failed"})
            assert (await http.get("/health/ready")).status_code == 503
        assert (await lifespan.stop())["type"] == "lifespan.shutdown.complete"

    asyncio.run(scenario())


def test_graceful_shutdown_finishes_queued_commands_and_writes_a_snapshot(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    queued: list[asyncio.Future[list[Event]]] = []

    async def scenario() -> int:
        async with running(data_dir) as (_, exchange, client):
            await client.account("alice")
            for i in range(500):  # queued, not awaited: shutdown must still commit and answer them
                queued.append(
                    exchange.sequencer.submit(
                        Deposit(ts_ns=time.time_ns(), account=1, asset=2, amount_minor=1, ref=f"r{i}")
                    )
                )
        assert all(f.done() and f.exception() is None for f in queued), "every queued command answered"
        with pytest.raises(Unavailable):
            exchange.sequencer.submit(
                Deposit(ts_ns=time.time_ns(), account=1, asset=2, amount_minor=1, ref="late")
            )
        return int(exchange.sequencer.next_seq - 1)

    last_seq = asyncio.run(scenario())
    assert last_seq == 500
    store = SqliteStore(data_dir / "abyssal.db")
    try:
        assert store.last_seq() == last_seq
        snap = store.latest_snapshot()
        assert snap is not None and snap[0] == last_seq, "the snapshot is at the last committed command"
        recovered = recover(store, load_config().instruments)
        assert recovered.replayed == 0 and recovered.next_seq == last_seq + 1
    finally:
        store.close()
