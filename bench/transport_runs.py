"""Transport runs: one path measured in fresh engine processes (closed loop, then K in flight), as a row."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from percentile import percentile
from tests.harness import free_port, terminate
from transport_gateways import GrpcGateway, LogGateway
from transport_wire import PAYLOAD

if TYPE_CHECKING:
    from tests.kafka.broker import Tansu

BENCH_SCRIPT = Path(__file__).with_name("transport_bench.py")  # re-executed as the engine roles


@dataclass
class Result:
    name: str
    lat_ms: list[float]  # closed loop, one at a time
    tput: float  # completed calls/s with K in flight
    tput_lat_ms: list[float]
    errors: int
    params: dict[str, float]


def pct(xs: list[float], p: float) -> float:
    """The nearest-rank percentile of unsorted samples; nan where there are none."""
    return percentile(sorted(xs), p) if xs else float("nan")


async def closed_loop(
    gw: GrpcGateway | LogGateway, n: int, warmup: int, budget_s: float
) -> tuple[list[float], int]:
    """One call at a time; stops early (fewer than n samples, shown in the N column) after budget_s."""
    errors = 0
    for _ in range(warmup):
        await gw.call(PAYLOAD)
    out: list[float] = []
    stop_at = time.perf_counter() + budget_s
    for _ in range(n):
        t0 = time.perf_counter_ns()
        try:
            reply = await gw.call(PAYLOAD)
            assert reply[8:] == PAYLOAD
        except Exception:
            errors += 1
            continue
        out.append((time.perf_counter_ns() - t0) / 1e6)
        if time.perf_counter() > stop_at:
            break
    return out, errors


async def concurrent(gw: GrpcGateway | LogGateway, k: int, seconds: float) -> tuple[float, list[float], int]:
    lat: list[float] = []
    errors = 0
    end = 0.0

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            try:
                await gw.call(PAYLOAD)
            except Exception:
                errors += 1
                continue
            lat.append((time.perf_counter_ns() - t0) / 1e6)

    end = time.perf_counter() + min(1.0, seconds / 4)  # warm-up at full concurrency, not counted
    await asyncio.gather(*(worker() for _ in range(k)))
    lat.clear()
    errors = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    await asyncio.gather(*(worker() for _ in range(k)))
    return len(lat) / (time.perf_counter() - t0), lat, errors


ENGINES: set[subprocess.Popen[str]] = set()


def start_engine(role: str, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(BENCH_SCRIPT), role, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # stdin: the engine exits when it reads EOF (this process is gone)
    ENGINES.add(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        stop_engine(proc)
        raise RuntimeError(f"engine {role} failed to start: {line!r}")
    return proc


def stop_engine(proc: subprocess.Popen[str]) -> None:
    ENGINES.discard(proc)
    terminate(proc, 10.0)  # type: ignore[arg-type]  # a text-mode Popen stops the same way


Gateway = GrpcGateway | LogGateway
Fresh = Callable[[], tuple[subprocess.Popen[str], Callable[[], Gateway]]]


async def measure(name: str, params: dict[str, float], fresh: Fresh, n: int, warmup: int, k: int,
                  seconds: float, budget_s: float) -> Result:  # fmt: skip
    """Closed loop, then K in flight, each in a fresh engine and gateway (``fresh``) on fresh topics."""
    lat: list[float] = []
    errors = 0
    tput, tlat = 0.0, []
    for phase in ("closed", "concurrent"):
        proc, gateway = fresh()
        try:
            gw = gateway()
            if phase == "closed":
                lat, e = await closed_loop(gw, n, warmup, budget_s)
            else:
                tput, tlat, e = await concurrent(gw, k, seconds)
            errors += e + gw.delivery_errors
            await gw.close()
        finally:
            stop_engine(proc)
    return Result(name, lat, tput, tlat, errors, params)


async def run_grpc(broker: Tansu, append: bool, linger: float, n: int, warmup: int, k: int, seconds: float,
                   budget_s: float) -> Result:  # fmt: skip
    """Path A (or A0 without ``append``): a gRPC engine that appends to a fresh command topic."""

    def fresh() -> tuple[subprocess.Popen[str], Callable[[], Gateway]]:
        topic = f"cmd-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, partitions=1)
        port = free_port()
        extra = ["--bootstrap", broker.bootstrap, "--port", str(port), "--cmd-topic", topic,
                 "--linger", str(linger)]  # fmt: skip
        proc = start_engine("engine-grpc", *extra, *(["--append"] if append else []))
        return proc, lambda: GrpcGateway(port)

    name = f"A gRPC + leader append, linger={linger:g}" if append else "A0 gRPC only, no Kafka (floor)"
    return await measure(name, {"linger": linger}, fresh, n, warmup, k, seconds, budget_s)


async def run_log(broker: Tansu, fetch_wait: int, linger: float, n: int, warmup: int, k: int, seconds: float,
                  budget_s: float) -> Result:  # fmt: skip
    """Path B: a log engine and a log gateway on a fresh command and events topic."""

    def fresh() -> tuple[subprocess.Popen[str], Callable[[], Gateway]]:
        cmd, events = f"cmd-{uuid.uuid4().hex[:8]}", f"ev-{uuid.uuid4().hex[:8]}"
        for topic in (cmd, events):
            broker.create_topic(topic, partitions=1)
        extra = ["--bootstrap", broker.bootstrap, "--cmd-topic", cmd, "--events-topic", events,
                 "--fetch-wait", str(fetch_wait), "--linger", str(linger)]  # fmt: skip
        proc = start_engine("engine-log", *extra)
        return proc, lambda: LogGateway(broker.bootstrap, cmd, events, fetch_wait, linger)

    name = f"B log, fetch.wait={fetch_wait} linger={linger:g}"
    params: dict[str, float] = {"fetch_wait": fetch_wait, "linger": linger}
    return await measure(name, params, fresh, n, warmup, k, seconds, budget_s)


def row(r: Result) -> str:
    cells = [r.name, str(len(r.lat_ms))]
    cells += [f"{pct(r.lat_ms, q):.2f}" for q in (50, 90, 99)] + [f"{max(r.lat_ms):.2f}"]
    cells += [
        f"{r.tput:,.0f}",
        f"{pct(r.tput_lat_ms, 50):.1f}",
        f"{pct(r.tput_lat_ms, 99):.1f}",
        str(r.errors),
    ]
    return "| " + " | ".join(cells) + " |"


COLUMNS = [
    "path",
    "N",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "calls/s @K",
    "p50 ms @K",
    "p99 ms @K",
    "errors",
]
HEADER = "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|"
