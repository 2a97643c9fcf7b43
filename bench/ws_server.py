"""WS server: the real ``App`` under uvicorn, the order driver inside, answering the orchestrator on stdin.

The orchestrator (ws_phases.py) writes one command a line and reads one JSON answer a line:
``sessions``, ``steady RATE SECONDS``, ``flat INFLIGHT SECONDS``, ``quit``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine import bench_config, rss_bytes
from ws_driver import OrderDriver
from ws_phases import answer, commands

if TYPE_CHECKING:  # imported in serve(): the orchestrator and the clients import this module too
    from abyssal.gateway.app import App


def _sessions(app: App) -> dict[str, Any]:
    ws = app.websocket
    return {
        "sessions": len(ws.sessions),
        "subscribed": sum(1 for s in ws.sessions if s.subs),
        "closed": sum(1 for s in ws.sessions if s.wire.closed),
        "rss": rss_bytes(os.getpid()),
    }


async def _steady(driver: OrderDriver, rate: float, seconds: float) -> dict[str, Any]:
    profile_to = os.environ.get("WS_BENCH_PROFILE")
    if not profile_to:
        return await driver.steady(rate, seconds)
    import cProfile  # a developer aid: cProfile of the server during the steady stream

    profiler = cProfile.Profile()
    profiler.enable()
    result = await driver.steady(rate, seconds)
    profiler.disable()
    profiler.dump_stats(profile_to)
    return result


async def _answer(driver: OrderDriver, app: App) -> None:
    """One JSON line for each command line on stdin, until ``quit`` or end of input."""
    async for line in commands():
        if line[0] == "sessions":
            answer(_sessions(app))
        elif line[0] == "steady":
            answer(await _steady(driver, float(line[1]), float(line[2])))
        elif line[0] == "flat":
            answer(await driver.flat_out(int(line[1]), float(line[2])))


async def serve(port: int, data_dir: Path) -> None:
    import structlog
    import uvicorn

    from abyssal.gateway.app import App
    from abyssal.runtime.exchange import Exchange

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    config = bench_config()  # the packaged defaults, the open-orders limit raised for load
    exchange = Exchange(config, data_dir)
    app = App(exchange)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="none",
            http="httptools",
            lifespan="on",
            log_level="error",
            access_log=False,
            backlog=4096,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not exchange.opened:
        await asyncio.sleep(0.01)
    driver = OrderDriver(exchange, app, config.instruments.pairs[0])
    await driver.prime()
    answer({"ready": True, "pid": os.getpid()})
    await _answer(driver, app)
    assert driver.acked == driver.sent, "every command sent was acknowledged"
    server.should_exit = True
    await serving
