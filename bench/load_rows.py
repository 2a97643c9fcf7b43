"""Load rows: acknowledged AddOrders/s, latency and CPU per order of one closed-loop run, as a table row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import uvloop
from cpu_meter import CpuMeter
from order_driver import Ack, Driver
from percentile import percentile
from traders import Trader

WARMUP_S = 1.5  # sent but not measured, before each window


@dataclass
class LoadRow:
    label: str
    connections: int
    acked: int
    seconds: float
    p50: float
    p90: float
    p99: float
    max_ms: float
    bad: int
    cpu: dict[str, float]

    @property
    def per_s(self) -> float:
        return self.acked / self.seconds

    def cpu_note(self) -> str:
        total = sum(self.cpu.values())
        per = {k: v / max(1, self.acked) * 1000 for k, v in self.cpu.items() if v > 0}
        parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        return f"{total / self.seconds * 100:.0f} % of a core; ms/order: {parts}"


async def closed_loop(ports: Sequence[int], traders: Sequence[Trader], seconds: float,
                      meter: CpuMeter) -> tuple[Driver, float, list[float], dict[str, float]]:  # fmt: skip
    """Warm up, then measure a window of ``seconds``: (driver, window, latencies in it, CPU in it)."""
    d = Driver(traders, ports)
    await d.connect()
    task = asyncio.create_task(d.run(WARMUP_S + seconds))
    await asyncio.sleep(WARMUP_S)
    t0 = time.perf_counter()
    meter.start()
    await asyncio.sleep(seconds)
    t1 = time.perf_counter()
    cpu = meter.stop()
    await task
    d.close()
    window = [ms for done, ms in d.latencies if t0 <= done < t1]
    return d, t1 - t0, window, cpu


def load_row(label: str, ports: Sequence[int], traders: Sequence[Trader], seconds: float,
             meter: CpuMeter, acked_all: list[Ack]) -> LoadRow:  # fmt: skip
    d, window_s, lat, cpu = uvloop.run(closed_loop(ports, traders, seconds, meter))
    acked_all.extend(d.acks)
    lat.sort()
    if d.bad or d.lost:
        raise AssertionError(f"{label}: {d.bad} refused, {d.lost} connections lost, e.g. {d.err_sample}")
    if not lat:
        raise AssertionError(f"{label}: no answer in the measured window")
    return LoadRow(label, len(traders), len(lat), window_s, percentile(lat, 50), percentile(lat, 90),
                   percentile(lat, 99), lat[-1], d.bad, cpu)  # fmt: skip


def print_load(rows: list[LoadRow]) -> None:
    print("| deployment | K | acked orders/s | p50 ms | p90 ms | p99 ms | max ms | CPU (all processes) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r.label} | {r.connections} | {r.per_s:,.0f} | {r.p50:.2f} | {r.p90:.2f} | {r.p99:.2f} "
              f"| {r.max_ms:.1f} | {r.cpu_note()} |")  # fmt: skip
