"""HTTP: signed AddOrder against /0/public/Time on one ``abyssal serve`` process over loopback.

Run from the repo root with the project venv (needs ``wrk``: ``apt-get install -y wrk``)::

    python bench/http_bench.py            # about 1.5 minutes
    python bench/http_bench.py --seconds 5 --runs 1 --paced-seconds 10

What it does:

1. starts ``abyssal serve`` pinned to CPU 0 (``taskset``; ``--server-cpus``) on a free port with a
   fresh data directory; every load generator runs pinned to CPU 1 (``--client-cpus``);
2. creates two accounts through the admin API (a buyer and a seller, so self-trade prevention never
   fires), each with a key whose nonce window tolerates the reordering of 64 connections, and funds both
   with far more USD and XBT than any run can hold or spend;
3. pre-signs AddOrder requests with ``abyssal.gateway.auth.sign``: one unique, increasing nonce per
   request, bodies from ``OrderMix`` (sequencer_bench.py): 80 % GTC limit orders resting up to 50 USD
   either side of a drifting 30,000 USD mid, 20 % marketable IOC orders priced 60 USD through the mid,
   which trade against the resting ones; the book, trades, ledger and balances grow as they would;
4. maximum throughput, closed loop: ``wrk -t1 -c64`` on ``GET /0/public/Time`` and on the signed
   AddOrders (``bench/http_bench.lua`` sends each pre-signed request once and checks every answer
   for ``"error":[]`` and a txid), alternating, ``--runs`` times each; medians are compared;
5. latency at a fixed rate of half the median AddOrder maximum, open loop: a paced Python client
   (uvloop + httptools, 64 connections, requests released every millisecond on schedule; latency is
   measured from release, so time spent waiting for a free connection counts);
6. asserts the end state: no request failed or was answered with a Kraken error, ``/admin/status``
   audit is ``[]``, a random sample of acknowledged txids is found by ``QueryOrders`` with the owner's
   key, and, after a clean shutdown, every acknowledged txid is a row of ``orders`` in ``abyssal.db``.

Figures print with the Python version, CPU model, nproc, the other load on the machine (load average,
CPU pressure), each run's client and server CPU, the server's CPU per request (steadier than req/s
on a shared machine) and the sequencer's batches (from ``/metrics``). The exit status is non-zero
when the end state is wrong; performance goals are reported as MET or MISSED (``--strict`` fails on a
miss).

The server runs with the packaged defaults (no ``--config``): ``batch_commands_max`` 256, intake
65,536, a snapshot every 100,000 commands (taken on the event loop, so a run that crosses one shows it
in its tail latency), no rate limits.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sequencer_bench import OrderMix, contention, machine_lines, percentile

from abyssal.core import ids
from abyssal.core.messages import Side
from abyssal.gateway.auth import sign

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "http_bench.lua"
SERVER_CPUS = "0"  # taskset lists; --server-cpus/--client-cpus override them
CLIENT_CPUS = "1"
CONNECTIONS = 64
RUN_SECONDS_DEFAULT = 8
RUNS_DEFAULT = 3
PACED_SECONDS_DEFAULT = 20
WARMUP_SECONDS = 3
WRK_TIMEOUT_S = 2
PACED_TICK_S = 0.001  # the paced client releases what is due every millisecond
PACED_DRAIN_S = 30.0  # after the schedule, how long unanswered requests may take
PRESIGN_HEADROOM = 2.0  # pre-sign twice what the measured rate would send, plus a floor
PRESIGN_FLOOR = 20_000
NONCE_WINDOW = 1_000_000  # in our nonce units (1 per request); reordering across 64 connections is << this
QUERY_SAMPLE = 500  # acknowledged txids checked through QueryOrders (50 per call)
QUERY_ORDERS_MAX = 50
ADMIN_TOKEN = "bench-admin-token"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
FUNDING = {"ZUSD": "10000000000", "XXBT": "1000000"}
GOAL_RATIO = 0.5  # AddOrder/s at least half of Time/s
GOAL_P999_MS = 3.0  # p99.9 at half of the maximum AddOrder rate
CLIENT_SATURATED_PCT = 90.0
ADD_ORDER_PATH = "/0/private/AddOrder"
FORMAT_CHECK_ORDERS = 2  # one buy and one sell through urllib before the runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server (the few lines of tests/conftest.py's Server it needs, plus taskset) -------------


@dataclass
class Server:
    data_dir: Path
    cpus: str = SERVER_CPUS
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "ABYSSAL_ADMIN_TOKEN": ADMIN_TOKEN}
        self.log_path = self.data_dir.parent / "server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        cmd = ["taskset", "-c", self.cpus, sys.executable, "-m", "abyssal.cli", "serve",
               "--data-dir", str(self.data_dir), "--port", str(self.port)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/0/public/Time", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM and wait (the sequencer drains its queue); returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def cpu_s(self) -> float:
        """User + system CPU of the server process so far (all its threads)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())


# --- keys, nonces and pre-signed requests ---------------------------------------------------------


@dataclass(frozen=True)
class Key:
    name: str
    api_key: str
    secret_b64: str


class Signer:
    """Pre-signs AddOrders from the order mix; one nonce counter, so every key's nonces increase."""

    def __init__(self, buyer: Key, seller: Key) -> None:
        self.keys = {Side.buy: buyer, Side.sell: seller}
        self.mix = OrderMix()
        self._nonce = itertools.count(1)

    def nonce(self) -> int:
        return next(self._nonce)

    def write(self, count: int, path: Path) -> None:
        assert count > 0
        lines = []
        for _ in range(count):
            order = self.mix.next()
            key = self.keys[order.side]
            nonce = self.nonce()
            body = (
                f"nonce={nonce}&ordertype=limit&pair=XXBTZUSD&price={order.price_text()}"
                f"&type={'buy' if order.side == Side.buy else 'sell'}&volume={order.volume_text()}"
            )
            if order.ioc:
                body += "&timeinforce=IOC"
            signature = sign(key.secret_b64, ADD_ORDER_PATH, str(nonce), body.encode())
            lines.append(f"{key.api_key}\t{signature}\t{body}\n")
        path.write_text("".join(lines))

    def private(self, server: Server, key: Key, method: str, params: dict[str, str]) -> Any:
        """One signed call with urllib (setup and checks only, never timed)."""
        nonce = self.nonce()
        body = urllib.parse.urlencode({"nonce": str(nonce), **params}).encode()
        path = f"/0/private/{method}"
        req = urllib.request.Request(server.url + path, data=body, method="POST")
        req.add_header("API-Key", key.api_key)
        req.add_header("API-Sign", sign(key.secret_b64, path, str(nonce), body))
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())


# --- wrk ------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    socket_errors: int
    ok: int  # AddOrder: answered with "error":[] and a txid
    bad: int  # AddOrder: anything else
    exhausted: int
    client_cpu_pct: float
    server_cpu_pct: float
    server_cpu_s: float
    err_sample: str = ""
    txids: list[str] = field(default_factory=list)
    extra: str = ""

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_us(self) -> float:
        """Server CPU per answered request: robust to other load on the machine, unlike req/s."""
        return self.server_cpu_s / self.requests * 1e6

    def row(self) -> str:
        cells = [
            self.label, f"{self.per_s:,.0f}", f"{self.p50_ms:.2f}", f"{self.p99_ms:.2f}",
            f"{self.p999_ms:.2f}", f"{self.max_ms:.1f}", str(self.socket_errors),
            f"{self.client_cpu_pct:.0f} %", f"{self.server_cpu_pct:.0f} %", f"{self.server_cpu_us:.0f}",
        ]  # fmt: skip
        return "| " + " | ".join([*cells, self.extra.strip(" ;")]) + " |"


SEQUENCER_SERIES = (
    "abyssal_sequencer_batch_commands_sum",
    "abyssal_sequencer_batch_commands_count",
    "abyssal_sequencer_commit_duration_seconds_sum",
    "abyssal_engine_apply_duration_seconds_sum",
)


def scrape(server: Server) -> dict[str, float]:
    """The sequencer's batch and commit series from /metrics (empty when the server has none)."""
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name in SEQUENCER_SERIES:
            out[name] = out.get(name, 0.0) + float(value)
    return out


def sequencer_note(before: dict[str, float], after: dict[str, float]) -> str:
    """Mean batch, commit and apply per batch during one run, from two scrapes."""
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in SEQUENCER_SERIES}
    batches = d["abyssal_sequencer_batch_commands_count"]
    if not batches:
        return ""
    return (
        f" mean batch {d['abyssal_sequencer_batch_commands_sum'] / batches:.1f} commands, "
        f"commit {d['abyssal_sequencer_commit_duration_seconds_sum'] / batches * 1000:.2f} ms, "
        f"apply {d['abyssal_engine_apply_duration_seconds_sum'] / batches * 1000:.2f} ms per batch"
    )


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_wrk(
    server: Server,
    label: str,
    seconds: float,
    work: Path,
    requests_file: Path | None,
    cpus: str = CLIENT_CPUS,
) -> LoadResult:
    mode = "addorder" if requests_file is not None else "time"
    txid_file = work / f"{label.replace(' ', '_')}.txids"
    env = {**os.environ, "ABYSSAL_WRK_MODE": mode}
    if requests_file is not None:
        env |= {"ABYSSAL_WRK_REQUESTS": str(requests_file), "ABYSSAL_WRK_TXIDS": str(txid_file)}
    url = server.url + ("/0/public/Time" if mode == "time" else ADD_ORDER_PATH)
    cmd = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s",
           f"--timeout={WRK_TIMEOUT_S}s", "-s", str(LUA_SCRIPT), url]  # fmt: skip
    metrics0, cpu0, server0 = scrape(server), _children_cpu_s(), server.cpu_s()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    client_cpu, server_cpu = _children_cpu_s() - cpu0, server.cpu_s() - server0
    note = sequencer_note(metrics0, scrape(server)) if mode == "addorder" else ""
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.removeprefix("BENCH_JSON "))
    txids = txid_file.read_text().split() if mode == "addorder" else []
    assert len(txids) == r["ok"], (len(txids), r["ok"])
    if mode == "addorder":
        assert r["ok"] + r["bad"] + r["exhausted"] == r["requests"], r
    return LoadResult(
        label=label,
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        p999_ms=r["p999_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
        ok=r["ok"] if mode == "addorder" else r["requests"] - r["status"],
        bad=r["bad"] if mode == "addorder" else r["status"],
        exhausted=r["exhausted"],
        # per second of load: wrk reads its script and request list before its clock starts, so the
        # client figure (which includes that) is an upper bound, and the idle server's is exact
        client_cpu_pct=100 * client_cpu / (r["duration_us"] / 1e6),
        server_cpu_pct=100 * server_cpu / (r["duration_us"] / 1e6),
        server_cpu_s=server_cpu,
        err_sample=r["err_sample"],
        txids=txids,
        extra=note,
    )


# --- the paced (open-loop) client: runs as its own process, pinned to the client CPU --------------


def _raw_requests(requests_file: Path, host: str) -> list[bytes]:
    reqs = []
    for line in requests_file.read_text().splitlines():
        key, signature, body = line.split("\t")
        reqs.append(
            (
                f"POST {ADD_ORDER_PATH} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\n"
                f"API-Key: {key}\r\nAPI-Sign: {signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
    return reqs


class _PacedConn(asyncio.Protocol):
    def __init__(self, client: _PacedClient) -> None:
        import httptools

        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.released_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.alive = True
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is not a subclass
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        latency = time.perf_counter() - self.released_at
        body = b"".join(self.body)
        self.body.clear()
        self.busy = False
        self.client.completed(self, self.parser.get_status_code(), body, latency)

    def send(self, request: bytes, released_at: float) -> None:
        assert self.transport is not None and self.alive
        self.released_at = released_at
        self.busy = True
        self.transport.write(request)

    def connection_lost(self, exc: Exception | None) -> None:
        """A connection the server closed: its request in flight is lost, and it is used no more."""
        self.alive = False
        self.client.lost += 1
        self.client.lost_in_flight += int(self.busy)


class _PacedClient:
    def __init__(self, requests: list[bytes]) -> None:
        self.requests = requests
        self.idle: collections.deque[_PacedConn] = collections.deque()
        self.waiting: collections.deque[tuple[bytes, float]] = collections.deque()
        self.latencies_ms: list[float] = []
        self.txids: list[str] = []
        self.bad = 0
        self.err_sample = ""
        self.lost = 0  # connections closed under us
        self.lost_in_flight = 0  # requests that were on them
        self.max_waiting = 0

    def completed(self, conn: _PacedConn, status: int, body: bytes, latency_s: float) -> None:
        self.latencies_ms.append(latency_s * 1000)
        start = body.find(b'"txid":["')
        if status == 200 and body.startswith(b'{"error":[]') and start >= 0:
            start += len(b'"txid":["')
            self.txids.append(body[start : body.index(b'"', start)].decode())
        else:
            self.bad += 1
            self.err_sample = self.err_sample or f"{status} {body[:200]!r}"
        if self.waiting:
            conn.send(*self.waiting.popleft())
        else:
            self.idle.append(conn)

    def release(self, request: bytes, now: float) -> None:
        while self.idle and not self.idle[0].alive:
            self.idle.popleft()
        if self.idle:
            self.idle.popleft().send(request, now)
        else:
            self.waiting.append((request, now))
            self.max_waiting = max(self.max_waiting, len(self.waiting))

    async def run(self, port: int, rate: float, seconds: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        conns = []
        for _ in range(CONNECTIONS):
            _, conn = await loop.create_connection(lambda: _PacedConn(self), "127.0.0.1", port)
            conns.append(conn)
            self.idle.append(conn)
        total = int(rate * seconds)
        assert total <= len(self.requests), "not enough pre-signed requests"
        lags_ms: list[float] = []
        cpu0 = time.process_time()
        start = time.perf_counter()
        sent = 0
        while sent < total:
            now = time.perf_counter()
            due = min(total, int((now - start) * rate) + 1)
            while sent < due:
                lags_ms.append((now - (start + sent / rate)) * 1000)
                self.release(self.requests[sent], now)
                sent += 1
            await asyncio.sleep(PACED_TICK_S)
        schedule_s = time.perf_counter() - start
        deadline = time.perf_counter() + PACED_DRAIN_S
        while (
            len(self.latencies_ms) < total and time.perf_counter() < deadline and any(c.alive for c in conns)
        ):
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        lags_ms.sort()
        return {
            "sent": total,
            "schedule_s": schedule_s,
            "answered": len(self.latencies_ms),
            "latencies_ms": self.latencies_ms,
            "txids": self.txids,
            "bad": self.bad,
            "err_sample": self.err_sample,
            "lost": self.lost,
            "lost_in_flight": self.lost_in_flight,
            "max_waiting": self.max_waiting,
            "cpu_pct": 100 * cpu / wall,
            "lag_p50_ms": percentile(lags_ms, 50),
            "lag_p99_ms": percentile(lags_ms, 99),
        }


def paced_client_main(requests_file: Path, out_file: Path, port: int, rate: float, seconds: float) -> int:
    import uvloop

    client = _PacedClient(_raw_requests(requests_file, f"127.0.0.1:{port}"))
    result = uvloop.run(client.run(port, rate, seconds))
    out_file.write_text(json.dumps(result))
    return 0


def run_paced(
    server: Server, rate: float, seconds: float, requests_file: Path, work: Path, cpus: str = CLIENT_CPUS
) -> LoadResult:
    out_file = work / "paced.json"
    cmd = ["taskset", "-c", cpus, sys.executable, str(Path(__file__).resolve()), "--paced-client",
           str(requests_file), str(out_file), str(server.port), f"{rate:.3f}", f"{seconds:g}"]  # fmt: skip
    metrics0, server0, wall0 = scrape(server), server.cpu_s(), time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - wall0
    server_cpu = server.cpu_s() - server0
    note = sequencer_note(metrics0, scrape(server))
    r = json.loads(out_file.read_text())
    lat = sorted(r["latencies_ms"])
    assert lat, "the paced client got no answers"
    return LoadResult(
        label=f"AddOrder paced {rate:,.0f}/s",
        requests=r["answered"],
        seconds=r["schedule_s"],
        p50_ms=percentile(lat, 50),
        p90_ms=percentile(lat, 90),
        p99_ms=percentile(lat, 99),
        p999_ms=percentile(lat, 99.9),
        max_ms=lat[-1],
        socket_errors=r["sent"] - r["answered"],  # lost in flight, or never sent on a lost connection
        ok=len(r["txids"]),
        bad=r["bad"],
        exhausted=0,
        client_cpu_pct=r["cpu_pct"],
        server_cpu_pct=100 * server_cpu / wall,
        server_cpu_s=server_cpu,
        err_sample=r["err_sample"],
        txids=r["txids"],
        extra=(
            f"{note}; release lag p50 {r['lag_p50_ms']:.2f} ms, p99 {r['lag_p99_ms']:.2f} ms;"
            f" most requests waiting for a free connection: {r['max_waiting']};"
            f" unanswered {r['sent'] - r['answered']}, connections lost {r['lost']}"
        ),
    )


# --- end state ------------------------------------------------------------------------------------


def check_query_orders(server: Server, signer: Signer, txids: list[str], rng: random.Random) -> int:
    """QueryOrders finds each sampled txid with exactly one of the two keys (its owner's)."""
    sample = rng.sample(txids, min(QUERY_SAMPLE, len(txids)))
    found_total = 0
    for i in range(0, len(sample), QUERY_ORDERS_MAX):
        chunk = sample[i : i + QUERY_ORDERS_MAX]
        seen: dict[str, int] = {}
        for key in signer.keys.values():
            answer = signer.private(server, key, "QueryOrders", {"txid": ",".join(chunk)})
            if answer["error"] == ["EOrder:Invalid order"]:
                continue  # none of this chunk belongs to this key
            assert answer["error"] == [], answer["error"]
            for txid, info in answer["result"].items():
                assert info["status"] in ("open", "closed", "canceled"), info
                seen[txid] = seen.get(txid, 0) + 1
        missing = [t for t in chunk if seen.get(t) != 1]
        assert not missing, f"QueryOrders does not find {len(missing)} acknowledged txids, e.g. {missing[:3]}"
        found_total += len(chunk)
    return found_total


def check_database(db: Path, txids: list[str]) -> tuple[int, int, int]:
    """Every acknowledged txid is a row of ``orders``: (acknowledged, rows, open rows)."""
    numbers = [ids.decode("O", t) for t in txids]
    assert all(n is not None for n in numbers), "a txid that is not an order id"
    assert len(set(numbers)) == len(numbers), "a txid acknowledged twice"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("CREATE TEMP TABLE acked (order_no INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO acked VALUES (?)", ((n,) for n in numbers))
        missing = conn.execute(
            "SELECT COUNT(*) FROM acked a LEFT JOIN orders o ON o.order_no = a.order_no "
            "WHERE o.order_no IS NULL"
        ).fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        open_rows = conn.execute("SELECT COUNT(*) FROM orders WHERE status IN (0, 1)").fetchone()[0]
    finally:
        conn.close()
    assert missing == 0, f"{missing} acknowledged orders are not in abyssal.db"
    # wrk stops its clock with requests in flight: the server may have accepted a few more
    assert rows >= len(numbers) + FORMAT_CHECK_ORDERS, (rows, len(numbers))
    return len(numbers), rows, open_rows


# --- main -----------------------------------------------------------------------------------------


def _setup_accounts(server: Server) -> tuple[Key, Key]:
    keys = []
    for name in ("bench-buyer", "bench-seller"):
        created = server.admin("POST", "/admin/accounts", {"name": name, "nonce_window": NONCE_WINDOW})
        assert created["nonce_window"] == NONCE_WINDOW, created
        for asset, amount in FUNDING.items():
            server.admin("POST", "/admin/deposits", {"account": name, "asset": asset, "amount": amount})
        keys.append(Key(name, created["api_key"], created["api_secret"]))
    return keys[0], keys[1]


def _presign_count(rate: float, seconds: float) -> int:
    return int(rate * seconds * PRESIGN_HEADROOM) + PRESIGN_FLOOR


def _versions() -> str:
    from importlib.metadata import version

    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    return (f"uvicorn {version('uvicorn')}, uvloop {version('uvloop')}, httptools {version('httptools')}; "
            f"{wrk[0].split(' Copyright')[0] if wrk else 'wrk ?'}")  # fmt: skip


def _check_load(result: LoadResult) -> None:
    assert result.socket_errors == 0, f"{result.label}: {result.socket_errors} socket errors or timeouts"
    assert result.bad == 0, f"{result.label}: {result.bad} failed answers, e.g. {result.err_sample}"
    assert result.exhausted == 0, f"{result.label}: ran out of pre-signed requests; raise PRESIGN_HEADROOM"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=RUN_SECONDS_DEFAULT, help="each wrk run")
    ap.add_argument("--runs", type=int, default=RUNS_DEFAULT, help="wrk runs per endpoint (median)")
    ap.add_argument("--paced-seconds", type=float, default=PACED_SECONDS_DEFAULT)
    ap.add_argument("--server-cpus", default=SERVER_CPUS, help="taskset CPU list for the server")
    ap.add_argument(
        "--client-cpus", default=CLIENT_CPUS, help="taskset CPU list for wrk and the paced client"
    )
    ap.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a performance goal is missed")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    print("# Abyssal HTTP benchmark: signed AddOrder vs /0/public/Time (loopback)")
    for line in machine_lines():
        print(line)
    print(_versions())
    print(f"server: abyssal serve (raw ASGI, uvicorn + uvloop + httptools, 1 process) "
          f"on CPU {args.server_cpus}; "
          f"load generators on CPU {args.client_cpus}; {CONNECTIONS} connections")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="abyssal-httpbench-"))
    server = Server(work / "data", args.server_cpus)
    server.start()
    stopped = False
    try:
        buyer, seller = _setup_accounts(server)
        signer = Signer(buyer, seller)
        for key, side, price in ((buyer, "buy", "20000"), (seller, "sell", "40000")):  # format check
            params = {
                "pair": "XXBTZUSD",
                "type": side,
                "ordertype": "limit",
                "volume": "0.001",
                "price": price,
            }
            answer = signer.private(server, key, "AddOrder", params)
            assert answer["error"] == [] and len(answer["result"]["txid"]) == 1, answer
        acked: list[str] = []

        t0 = time.perf_counter()
        run_wrk(server, "warm-up Time", WARMUP_SECONDS, work, None, args.client_cpus)
        warm_file = work / "warmup.req"
        signer.write(_presign_count(10_000, WARMUP_SECONDS), warm_file)
        warm = run_wrk(server, "warm-up AddOrder", WARMUP_SECONDS, work, warm_file, args.client_cpus)
        _check_load(warm)
        acked += warm.txids
        print(f"warm-up: {warm.per_s:,.0f} AddOrder/s ({time.perf_counter() - t0:.1f} s incl. signing)")
        print()
        print("| run | req/s | p50 ms | p99 ms | p99.9 ms | max ms | socket errors | client CPU | server CPU "
              "| server CPU µs/req | sequencer, paced client |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)

        times: list[LoadResult] = []
        adds: list[LoadResult] = []
        rate_guess = warm.per_s
        for run in range(1, args.runs + 1):
            times.append(run_wrk(server, f"Time #{run}", args.seconds, work, None, args.client_cpus))
            print(times[-1].row(), flush=True)
            _check_load(times[-1])
            req_file = work / f"add{run}.req"
            signer.write(_presign_count(rate_guess, args.seconds), req_file)
            adds.append(run_wrk(server, f"AddOrder #{run}", args.seconds, work, req_file, args.client_cpus))
            print(adds[-1].row(), flush=True)
            _check_load(adds[-1])
            acked += adds[-1].txids
            rate_guess = max(rate_guess, adds[-1].per_s)
            req_file.unlink()

        time_max = statistics.median(r.per_s for r in times)
        add_max = statistics.median(r.per_s for r in adds)
        rate = add_max / 2
        paced_file = work / "paced.req"
        signer.write(int(rate * args.paced_seconds) + 1, paced_file)
        paced = run_paced(server, rate, args.paced_seconds, paced_file, work, args.client_cpus)
        print(paced.row(), flush=True)
        _check_load(paced)
        acked += paced.txids

        status = server.admin("GET", "/admin/status")
        assert status["audit"] == [], f"ledger audit: {status['audit']}"
        sampled = check_query_orders(server, signer, acked, random.Random(7))
        code = server.stop()
        stopped = True
        # uvicorn re-raises the SIGTERM it handled once shutdown (and the sequencer's drain) is done
        assert code in (0, -signal.SIGTERM), f"server exit status {code}:\n{server.log()[-2000:]}"
        assert '"level": "error"' not in server.log(), server.log()[-2000:]
        n_acked, rows, open_rows = check_database(work / "data" / "abyssal.db", acked)
    finally:
        if not stopped:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
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
    print(f"end state: {n_acked:,} acknowledged orders, all in abyssal.db ({rows:,} rows in orders, "
          f"{open_rows:,} open; 2 are the format checks); QueryOrders found all {sampled} sampled txids; "
          f"audit == []")  # fmt: skip
    goal_ratio = ratio >= GOAL_RATIO
    goal_p999 = paced.p999_ms < GOAL_P999_MS
    print(f"goal AddOrder >= {GOAL_RATIO:.0%} of Time: {'MET' if goal_ratio else 'MISSED'}; "
          f"goal p99.9 < {GOAL_P999_MS:g} ms at half max: {'MET' if goal_p999 else 'MISSED'}")  # fmt: skip
    print(f"other load at the end: {contention()}")
    return 1 if args.strict and not (goal_ratio and goal_p999) else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--paced-client":
        _, _, req, out, port, rate, secs = sys.argv
        sys.exit(paced_client_main(Path(req), Path(out), int(port), float(rate), float(secs)))
    sys.exit(main())
