"""Failover: SIGKILL the leader engine under a paced order stream, time the takeover and the catch-up.

The failover time runs from the kill to the first acknowledgement of an order *sent after* the kill
(only the new leader can have applied it); the killed replica then comes back as the standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from typing import Any

import uvloop
from order_driver import Ack, Driver
from percentile import percentile
from tests.cluster.harness import Cluster, RoleProc
from traders import Trader

STREAM_RATE = 50.0  # orders/s during the failover runs
STREAM_POOL = 48  # connections (traders) of the failover stream; more than the rate x outage needs
STREAM_MAX_S = 3600  # the stream runs until the kills are done
STEADY_BEFORE_KILL_S = 1.0
FAILOVER_WAIT_MAX_S = 30.0
CATCH_UP_MAX_S = 60.0
GOAL_TTL_S = 2.0  # the goal: the new leader takes over within 5 s at lease TTL 2 s
TAKEOVER_GOAL_S = 5.0


def leader_took_ms(engine: RoleProc, after: int) -> float | None:
    """How long the newest ``engine_leading`` of ``engine``'s log after byte ``after`` took, in ms.

    The log line carries ``duration_us`` (it said ``took_ms`` before the roles' log vocabulary).
    """
    took = None
    for line in engine.log()[after:].splitlines():
        if "engine_leading" in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                took = float(record["took_ms"]) if "took_ms" in record else record["duration_us"] / 1000
    return took


def debug_dump(cluster: Cluster) -> None:
    if not os.environ.get("CLUSTER_BENCH_DEBUG"):
        return
    import subprocess

    from abyssal.cluster.kafka_log import end_offset
    from abyssal.cluster.records import commands_topic, events_topic

    print(
        "end offsets: commands",
        end_offset(cluster.bus, commands_topic(0)),
        "events",
        end_offset(cluster.bus, events_topic(0)),
    )
    for e in cluster.engines:
        if e.alive():
            with contextlib.suppress(OSError):
                print(e.status())
            assert e.proc is not None
            print(
                subprocess.run(
                    ["py-spy", "dump", "--pid", str(e.proc.pid)], capture_output=True, text=True
                ).stdout
            )


def positions(cluster: Cluster) -> str:
    """The end offsets of both topics and each live replica's seq, for a stall report."""
    from abyssal.cluster.kafka_log import end_offset
    from abyssal.cluster.records import commands_topic, events_topic

    parts = [f"command topic end {end_offset(cluster.bus, commands_topic(0))}",
             f"event topic end {end_offset(cluster.bus, events_topic(0))}"]  # fmt: skip
    for e in cluster.engines:
        with contextlib.suppress(OSError):
            st = e.status()
            parts.append(f"{st['node']} {'leader' if st['leader'] else 'standby'} seq {st['seq']}")
    return ", ".join(parts)


def wait_caught_up(standby: RoleProc, leader: RoleProc) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < CATCH_UP_MAX_S:
        target = leader.status()["seq"]
        if standby.status()["seq"] >= target:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


async def first_ack_after(d: Driver, sent_after: float) -> float | None:
    """When the first order sent after ``sent_after`` was acknowledged; None if none in the wait."""
    while time.perf_counter() - sent_after < FAILOVER_WAIT_MAX_S:
        after = [a.done for a in d.acks if a.sent >= sent_after]
        if after:
            return min(after)
        await asyncio.sleep(0.005)
    return None


def restart_as_standby(cluster: Cluster, killed: RoleProc, ttl: float) -> RoleProc:
    """The killed replica comes back as the standby, under the same node id."""
    node_id = killed.extra[killed.extra.index("--node-id") + 1]
    cluster.engines.remove(killed)
    killed.stop()
    again = cluster.role("engine", "--node-id", node_id, "--lease-ttl", str(ttl))
    again.start()
    cluster.engines.append(again)
    return again


def failover_runs(cluster: Cluster, traders: list[Trader], kills: int, acked_all: list[Ack],
                  ttl: float) -> dict[str, Any]:  # fmt: skip
    """``kills`` times: SIGKILL the leader under a paced stream, time the first ack of an order sent
    after the kill, restart the killed replica as standby and wait until it caught up."""
    ports = [g.port for g in cluster.gateways]
    results: dict[str, Any] = {"failover_s": [], "took_ms": [], "catch_up_s": [], "refused": 0, "skipped": 0,
                               "acked": 0, "stalls": []}  # fmt: skip

    async def stalled(i: int, what: str) -> None:
        note = await asyncio.get_running_loop().run_in_executor(None, positions, cluster)
        results["stalls"].append(f"kill {i + 1}: {what}; {note}")
        print(f"  {results['stalls'][-1]}", flush=True)

    async def main() -> None:
        d = Driver(traders, ports, rate=STREAM_RATE)
        await d.connect()
        stop = asyncio.Event()
        stream = asyncio.create_task(d.run(STREAM_MAX_S, stop))
        loop = asyncio.get_running_loop()
        try:
            for i in range(kills):
                await asyncio.sleep(STEADY_BEFORE_KILL_S)
                leader = await loop.run_in_executor(None, cluster.wait_for_leader)
                standby = next(e for e in cluster.engines if e is not leader and e.alive())
                mark = len(standby.log())
                killed_at = time.perf_counter()
                await loop.run_in_executor(None, leader.kill)
                first = await first_ack_after(d, time.perf_counter())
                if first is None:
                    await stalled(i, f"nothing acknowledged in {FAILOVER_WAIT_MAX_S:g} s")
                    await loop.run_in_executor(None, debug_dump, cluster)
                    break
                results["failover_s"].append(first - killed_at)
                results["took_ms"].append(leader_took_ms(standby, mark))
                again = await loop.run_in_executor(None, restart_as_standby, cluster, leader, ttl)
                caught = await loop.run_in_executor(None, wait_caught_up, again, standby)
                if caught is None:
                    await stalled(i, f"restarted standby not caught up in {CATCH_UP_MAX_S:g} s")
                    break
                results["catch_up_s"].append(caught)
                print(f"  kill {i + 1}/{kills}: failover {results['failover_s'][-1]:.2f} s "
                      f"(took_ms {results['took_ms'][-1]}), standby caught up in "
                      f"{results['catch_up_s'][-1]:.2f} s", flush=True)  # fmt: skip
            await asyncio.sleep(STEADY_BEFORE_KILL_S)
        finally:
            stop.set()
            await stream
            d.close()
        results["refused"] = d.bad
        results["err_sample"] = d.err_sample
        results["skipped"] = d.skipped
        results["lost"] = d.lost
        results["acked"] = len(d.acks)
        acked_all.extend(d.acks)

    uvloop.run(main())
    return results


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return (f"min {v[0]:.2f}, median {statistics.median(v):.2f}, p90 {percentile(v, 90):.2f}, "
            f"max {v[-1]:.2f}")  # fmt: skip


def print_failover(series: list[tuple[float, dict[str, Any]]]) -> bool:
    """The failover table, one row per lease TTL; False where a series stalled."""
    ok = True
    print(
        "\n| lease TTL | kills | kill -> first ack of an order sent after it (s) "
        "| new leader's took_ms | restarted standby caught up (s) | stream acked / refused / not sent |"
    )
    print("|---:|---:|---|---|---|---|")
    for ttl, r in series:
        took = [t for t in r["took_ms"] if t is not None]
        print(f"| {ttl:g} s | {len(r['failover_s'])} | {summary(r['failover_s'])} | "
              f"{summary(took) if took else '?'} | {summary(r['catch_up_s'])} | "
              f"{r['acked']} / {r['refused']} / {r['skipped']} |")  # fmt: skip
        if r["refused"]:
            print(f"  refused e.g. {r['err_sample']}")
        for stall in r["stalls"]:
            print(f"  STALL: {stall}")
            ok = False
    two = next(r for ttl, r in series if ttl == GOAL_TTL_S)
    if two["failover_s"]:
        worst = max(two["failover_s"])
        met = worst < TAKEOVER_GOAL_S and not two["stalls"]
        print(f"goal: takeover within 5 s at lease TTL 2 s: {'MET' if met else 'MISSED'} "
              f"(worst {worst:.2f} s over {len(two['failover_s'])} kills)")  # fmt: skip
    return ok
