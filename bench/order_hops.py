"""Order hops: where one order's time goes in the scaled-out mode, from the HTTP run and from a probe.

The HTTP run (K=1) is split by the Kafka CreateTime of each order's command and event records; the
probe produces PlaceOrders straight to the command topic and times the broker's ack, the engine, the
event topic's delivery and the ledger writer's NOTIFY.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time

import uvloop
from order_driver import Ack
from order_mix import OrderMix, place_command
from percentile import percentile
from tests.cluster.harness import Cluster

from abyssal.core.messages import Side

HOP_PROBES = 200
HOP_GAP_MAX_S = 0.0  # back to back, as the K=1 HTTP client sends (a gap adds thread wake-ups)
HOP_PROBE_SEED = 7
WALL_MINUS_PERF_MS = (time.time() - time.perf_counter()) * 1000  # perf_counter -> wall-clock ms


def http_hops(cluster: Cluster, acks: list[Ack]) -> dict[str, list[float]]:
    """The K=1 HTTP run, split by the Kafka CreateTime (ms) of each order's command record (stamped
    by the gateway's producer) and event record (stamped by the leader's): one order at a time, so
    the i-th command produced in the run's window is the i-th request."""
    from confluent_kafka import TopicPartition

    from abyssal.cluster import kafka_log
    from abyssal.cluster.records import commands_topic, events_topic

    def created(topic: str) -> list[float]:
        end = kafka_log.end_offset(cluster.bus, topic)
        c = kafka_log._consumer(cluster.bus, "bench-http-hops")
        c.assign([TopicPartition(topic, 0, 0)])
        out: dict[int, float] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(out) < end:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                out.setdefault(int(m.offset() or 0), float(m.timestamp()[1]))
        c.close()
        return [out[o] for o in sorted(out)]

    acks = sorted(acks, key=lambda a: a.sent)
    lo = acks[0].sent * 1000 + WALL_MINUS_PERF_MS - 1
    hi = acks[-1].done * 1000 + WALL_MINUS_PERF_MS + 1
    commands = created(commands_topic(0))
    events = created(events_topic(0))  # one record per seq (a failover may repeat one; none here)
    window = [(off, t) for off, t in enumerate(commands) if lo <= t <= hi]
    out: dict[str, list[float]] = {k: [] for k in ("gateway_in", "engine", "back", "total")}
    if len(window) != len(acks):
        print(
            f"  (hops: {len(window)} commands in the window for {len(acks)} requests: not split; "
            f"window {lo:.0f}..{hi:.0f}, commands {len(commands)} from {commands[:1]} to {commands[-1:]})"
        )
        return out
    for a, (off, c) in zip(acks, window, strict=True):
        s, r = a.sent * 1000 + WALL_MINUS_PERF_MS, a.done * 1000 + WALL_MINUS_PERF_MS
        e = events[off] if off < len(events) else float("nan")
        out["gateway_in"].append(c - s)
        out["engine"].append(e - c)
        out["back"].append(r - e)
        out["total"].append(r - s)
    return out


def print_http_hops(h: dict[str, list[float]]) -> None:
    if not h["total"]:
        return
    names = {
        "gateway_in": "client sends -> gateway produces the command (HTTP, HMAC, nonce UPDATE in PostgreSQL)",
        "engine": "command produced -> leader produces its event record (broker ack, engine fetch, apply)",
        "back": "event produced -> client has the answer (event fetch, writer commit, NOTIFY, HTTP reply)",
        "total": "the whole AddOrder, as the client sees it",
    }
    print(f"| hop ({len(h['total'])} AddOrders, K=1, Kafka CreateTime has 1 ms grain) | p50 ms | mean ms "
          "| p90 ms | p99 ms |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    print_hop_rows(h, names, 1)


def hop_probe(cluster: Cluster, account_ids: tuple[int, int], n: int) -> dict[str, list[float]]:
    """PlaceOrders produced straight to the command topic, one at a time; every time is wall-clock ms."""
    import psycopg
    from confluent_kafka import TopicPartition

    from abyssal.cluster import kafka_log
    from abyssal.cluster.records import HEADER_REQUEST, commands_topic, events_topic, record_decoder
    from abyssal.config import load_config
    from abyssal.core.messages import command_encoder

    pair = load_config(None).instruments.pair("XXBTZUSD")
    assert pair is not None
    seen: dict[str, tuple[int, float, float]] = {}  # rid -> (seq, CreateTime ms, received ms)
    notified: list[tuple[int, float]] = []  # (seq, received ms)
    stop = threading.Event()
    cond = threading.Condition()

    def read_events() -> None:
        c = kafka_log._consumer(cluster.bus, "bench-hop-events")
        c.assign([TopicPartition(events_topic(0), 0, kafka_log.end_offset(cluster.bus, events_topic(0)))])
        try:
            while not stop.is_set():
                m = c.poll(kafka_log.READ_POLL_S)
                if m is None or m.error() is not None:
                    continue
                now = time.time() * 1000
                headers = dict(m.headers() or [])
                raw = headers.get(HEADER_REQUEST) or b""
                rid = raw.decode() if isinstance(raw, bytes) else str(raw)
                if rid.startswith("bench-hop:"):
                    with cond:
                        seen[rid] = (
                            record_decoder.decode(m.value() or b"").seq,
                            float(m.timestamp()[1]),
                            now,
                        )
                        cond.notify_all()
        finally:
            c.close()

    def listen() -> None:
        with psycopg.connect(cluster.database, autocommit=True) as conn:
            conn.execute("LISTEN abyssal_projected")
            while not stop.is_set():
                for note in conn.notifies(timeout=0.2, stop_after=64):
                    with cond:
                        notified.append((int(note.payload), time.time() * 1000))
                        cond.notify_all()

    threads = [threading.Thread(target=f, daemon=True) for f in (read_events, listen)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the reader is assigned and the LISTEN is in place

    async def probes() -> dict[str, list[float]]:
        producer = kafka_log.LogProducer(cluster.bus, client_id="bench-hop")
        out: dict[str, list[float]] = {k: [] for k in ("ack", "engine", "event", "notify", "total")}
        mix = OrderMix(seed=HOP_PROBE_SEED)
        loop = asyncio.get_running_loop()
        for i in range(n):
            order = mix.next()
            cmd = place_command(order, pair, account_ids[0] if order.side == Side.buy else account_ids[1])
            rid = f"bench-hop:{i}"
            t0 = time.time() * 1000
            await producer.send(commands_topic(0), command_encoder.encode(cmd),
                                headers=[(HEADER_REQUEST, rid.encode())])  # fmt: skip
            t1 = time.time() * 1000

            def wait_done(rid: str = rid) -> tuple[int, float, float, float]:
                deadline = time.monotonic() + 10
                with cond:
                    while time.monotonic() < deadline:
                        if rid in seen:
                            seq, created, received = seen[rid]
                            hit = [t for s, t in notified if s >= seq]
                            if hit:
                                return seq, created, received, min(hit)
                        cond.wait(0.5)
                raise AssertionError(f"probe {rid} not seen in 10 s")

            _seq, created, received, note = await loop.run_in_executor(None, wait_done)
            out["ack"].append(t1 - t0)
            out["engine"].append(created - t1)
            out["event"].append(received - created)
            out["notify"].append(note - received)
            out["total"].append(note - t0)
            await asyncio.sleep(random.uniform(0, HOP_GAP_MAX_S))
        await loop.run_in_executor(None, producer.close)
        return out

    try:
        return uvloop.run(probes())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=3)


def print_hops(h: dict[str, list[float]]) -> None:
    names = {
        "ack": "gateway's produce to the command topic -> broker's ack (LogProducer.send)",
        "engine": "ack -> leader applied it and produced its record (record CreateTime, 1 ms grain)",
        "event": "record produced -> delivered to an event-topic reader (gateway/writer fetch)",
        "notify": "delivered -> NOTIFY that the ledger writer committed that seq",
        "total": "produce -> NOTIFY (what the gateway waits for, without HTTP, auth and nonce)",
    }
    print("| hop | p50 ms | mean ms | p90 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    print_hop_rows(h, names, 2)


def print_hop_rows(h: dict[str, list[float]], names: dict[str, str], digits: int) -> None:
    """One row per hop: p50, mean, p90, p99 of its times, with ``digits`` decimals."""
    for k, text in names.items():
        v = sorted(h[k])
        cells = (percentile(v, 50), statistics.fmean(v), percentile(v, 90), percentile(v, 99))
        print(f"| {text} | " + " | ".join(f"{c:.{digits}f}" for c in cells) + " |")
