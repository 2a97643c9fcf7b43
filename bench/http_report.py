"""HTTP report: the header, table and closing figures http_bench.py prints, and its performance goals."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from http_load import CONNECTIONS, LoadResult
from machine import contention, machine_lines, package_versions
from wrk_load import wrk_version

GOAL_RATIO = 0.5  # AddOrder/s at least half of Time/s
GOAL_P999_MS = 3.0  # p99.9 at half of the maximum AddOrder rate
CLIENT_SATURATED_PCT = 90.0


@dataclass(frozen=True)
class EndState:
    """What the end-state checks found: acknowledged orders, ``orders`` rows, open rows, QueryOrders hits."""

    acknowledged: int
    rows: int
    open_rows: int
    sampled: int


def _versions() -> str:
    return f"{package_versions(['uvicorn', 'uvloop', 'httptools'])}; {wrk_version()}"


def print_header(server_cpus: str, client_cpus: str) -> None:
    print("# Abyssal HTTP benchmark: signed AddOrder vs /0/public/Time (loopback)")
    for line in machine_lines():
        print(line)
    print(_versions())
    print(f"server: abyssal serve (raw ASGI, uvicorn + uvloop + httptools, 1 process) "
          f"on CPU {server_cpus}; "
          f"load generators on CPU {client_cpus}; {CONNECTIONS} connections")  # fmt: skip


def print_table_header() -> None:
    print()
    print("| run | req/s | p50 ms | p99 ms | p99.9 ms | max ms | socket errors | client CPU | server CPU "
          "| server CPU µs/req | sequencer, paced client |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)


def print_summary(times: list[LoadResult], adds: list[LoadResult], paced: LoadResult, end: EndState) -> bool:
    """The medians, the paced latencies, the end state and the goals; returns whether both goals were met."""
    print()
    time_max = statistics.median(r.per_s for r in times)
    add_max = statistics.median(r.per_s for r in adds)
    rate = add_max / 2
    ratio = add_max / time_max
    time_cpu_us = statistics.median(r.server_cpu_us for r in times)
    add_cpu_us = statistics.median(r.server_cpu_us for r in adds)
    cpu_ratio = time_cpu_us / add_cpu_us
    client_max = max(r.client_cpu_pct for r in [*times, *adds, paced])
    print(f"median /0/public/Time: {time_max:,.0f} req/s; median signed AddOrder: {add_max:,.0f} orders/s "
          f"(ratio {ratio:.2f}; by server CPU per request {cpu_ratio:.2f})")  # fmt: skip
    print(f"AddOrder at max: p50 {statistics.median(r.p50_ms for r in adds):.2f} ms, "
          f"p99 {statistics.median(r.p99_ms for r in adds):.2f} ms, "
          f"p99.9 {statistics.median(r.p999_ms for r in adds):.2f} ms (medians of the runs)")  # fmt: skip
    print(f"AddOrder at {rate:,.0f}/s (half the max, open loop, {paced.requests:,} orders): "
          f"p50 {paced.p50_ms:.2f} ms, p99 {paced.p99_ms:.2f} ms, p99.9 {paced.p999_ms:.2f} ms, "
          f"max {paced.max_ms:.1f} ms")  # fmt: skip
    saturated = client_max >= CLIENT_SATURATED_PCT
    print(f"load generator CPU: at most {client_max:.0f} % of a core "
          f"({'SATURATED: figures are client-bound' if saturated else 'not saturated'})")  # fmt: skip
    print(f"end state: {end.acknowledged:,} acknowledged orders, all in abyssal.db ({end.rows:,} rows in "
          f"orders, {end.open_rows:,} open; 2 are the format checks); QueryOrders found all {end.sampled} "
          f"sampled txids; audit == []")  # fmt: skip
    goal_ratio = ratio >= GOAL_RATIO
    goal_p999 = paced.p999_ms < GOAL_P999_MS
    print(f"goal AddOrder >= {GOAL_RATIO:.0%} of Time: {'MET' if goal_ratio else 'MISSED'}; "
          f"goal p99.9 < {GOAL_P999_MS:g} ms at half max: {'MET' if goal_p999 else 'MISSED'}")  # fmt: skip
    print(f"other load at the end: {contention()}")
    return goal_ratio and goal_p999
