"""Paced client: open-loop AddOrders at a fixed rate, run as its own process pinned to the client CPU.

``python bench/paced_client.py REQUESTS OUT PORT RATE SECONDS`` (what ``run_paced`` starts; also
reachable as ``python bench/http_bench.py --paced-client ...``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from abyssal_server import Server
from http_load import CLIENT_CPUS, CONNECTIONS, LoadResult
from percentile import percentile
from sequencer_metrics import scrape, sequencer_note
from signed_orders import raw_add_order

PACED_TICK_S = 0.001  # the paced client releases what is due every millisecond
PACED_DRAIN_S = 30.0  # after the schedule, how long unanswered requests may take


def _raw_requests(requests_file: Path, host: str) -> list[bytes]:
    reqs = []
    for line in requests_file.read_text().splitlines():
        key, signature, body = line.split("\t")
        reqs.append(raw_add_order(host, key, signature, body))
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


def paced_client_cli(argv: list[str]) -> int:
    """``REQUESTS OUT PORT RATE SECONDS``: the child process's command line."""
    req, out, port, rate, secs = argv
    return paced_client_main(Path(req), Path(out), int(port), float(rate), float(secs))


def run_paced(
    server: Server, rate: float, seconds: float, requests_file: Path, work: Path, cpus: str = CLIENT_CPUS
) -> LoadResult:
    out_file = work / "paced.json"
    cmd = ["taskset", "-c", cpus, sys.executable, str(Path(__file__).resolve()),
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


if __name__ == "__main__":
    sys.exit(paced_client_cli(sys.argv[1:]))
