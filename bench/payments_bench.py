"""Payments: deposit captures per second through /v1 on one ``abyssal serve`` (SQLite, WAL).

Run from the repo root with the project venv::

    python bench/payments_bench.py                      # about 20 seconds
    python bench/payments_bench.py --seconds 5 --connections 32
    python bench/payments_bench.py --in-process          # the service alone, no HTTP

What it does:

1. starts ``abyssal serve`` on a free port with a fresh data directory (``--database`` is passed
   through when given, for the PostgreSQL figure of the scaled-out mode);
2. creates ``--tenants`` accounts, each with a payments token;
3. closed loop: ``--connections`` keep-alive HTTP/1.1 clients (httpx) POST ``/v1/deposits`` with a
   fresh ``Idempotency-Key`` each, spread over the tenants, for ``--seconds``; then the same number of
   retries of already-used keys (replays) for comparison
   (``--in-process``: the same loop on ``PaymentService.capture_deposit`` in an in-process exchange,
   no HTTP: the storage path's figure, without the HTTP stack and client on the same two cores);
4. asserts the end state: every capture answered 201 ``captured``, every replay was byte-identical
   with ``Idempotency-Replayed: true``, each tenant's USD balance equals the sum of its captures, the
   ledger has exactly one deposit entry per key, and ``/admin/status`` audit is ``[]``.

Prints captures/s, replays/s and latency percentiles with the Python version, CPU model and load
average. A first capture is three durable transactions (claim + open, the engine batch, capture +
stored answer + outbox), each with ``synchronous=FULL`` on SQLite; concurrent captures share them
(the sequencer's batch, and the payments group commit on SQLite), so the figure is bounded by
fsyncs and by the Python HTTP path, and moves with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model, server_cpu_s
from percentile import percentile
from tests.harness import Server


async def _drive(
    url: str, tokens: list[str], seconds: float, connections: int, replay: list[tuple[int, str, bytes]]
) -> tuple[list[float], list[tuple[int, str, bytes]], int]:
    """Closed loop; returns latencies (s), the (tenant, key, body) of each capture, and failures."""
    done: list[tuple[int, str, bytes]] = []
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker(http: httpx.AsyncClient, w: int) -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            n = next(counter)
            if replay:
                if n >= len(replay):
                    return
                tenant, key, _ = replay[n]
            else:
                tenant, key = n % len(tokens), f"bench-{n}"
            headers = {"Authorization": f"Bearer {tokens[tenant]}", "Idempotency-Key": key}
            t0 = time.perf_counter()
            r = await http.post("/v1/deposits", json={"asset": "USD", "amount": "1.25"}, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 201 or (replay and r.headers.get("idempotency-replayed") != "true"):
                failures += 1
            done.append((tenant, key, r.content))

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        await asyncio.gather(*[worker(http, w) for w in range(connections)])
    return latencies, done, failures


async def _service(args: argparse.Namespace, data: Path) -> tuple[Any, ...]:
    """The same closed loop on ``PaymentService.capture_deposit`` in process: no HTTP, no client
    CPU on the machine's two cores, so the figure is the storage path's (commits, not parsing)."""
    from tests.payments.paykit import exchange_env

    if args.payment_threads:  # what a PostgreSQL deployment could use (exchange.PAYMENT_THREADS)
        import abyssal.runtime.exchange

        abyssal.runtime.exchange.PAYMENT_THREADS = args.payment_threads  # type: ignore[misc]
    async with exchange_env(data.parent, args.database) as env:
        svc = env.exchange.payments
        usd = env.exchange.instruments.asset("USD")
        assert svc is not None and usd is not None
        accounts = [(await env.tenant(f"t{i}")).account for i in range(args.tenants)]

        async def drive(replay: list[tuple[int, str, bytes]]) -> tuple[list[float], list[Any], int, float]:
            done: list[tuple[int, str, bytes]] = []
            latencies: list[float] = []
            failures = 0
            counter = iter(range(10**9))
            start = time.perf_counter()
            deadline = start + args.seconds

            async def worker() -> None:
                nonlocal failures
                while time.perf_counter() < deadline:
                    n = next(counter)
                    if replay and n >= len(replay):
                        return
                    tenant, key = (
                        (replay[n][0], replay[n][1]) if replay else (n % len(accounts), f"bench-{n}")
                    )
                    t0 = time.perf_counter()
                    a = await svc.capture_deposit(accounts[tenant], "api", key, usd.index, 12_500)
                    latencies.append(time.perf_counter() - t0)
                    failures += a.status != 201 or (bool(replay) and not a.replayed)
                    done.append((tenant, key, a.body))

            await asyncio.gather(*[worker() for _ in range(args.connections)])
            return latencies, done, failures, time.perf_counter() - start

        lat, done, failures, capture_s = await drive([])
        rlat, replayed, rfail, replay_s = await drive(done)
        audit = await env.audit()
    return lat, done, failures, capture_s, rlat, replayed, rfail, replay_s, audit


def _http(args: argparse.Namespace, data: Path) -> tuple[Any, ...]:
    server = Server(data, database=args.database)
    server.start()
    try:
        tokens = []
        for i in range(args.tenants):
            server.account(f"t{i}")
            tokens.append(server.admin("POST", "/admin/payments/tokens", {"account": f"t{i}"})["token"])
        assert server.proc is not None
        cpu0 = server_cpu_s(server.proc.pid)
        t0 = time.perf_counter()
        lat, done, failures = asyncio.run(_drive(server.url, tokens, args.seconds, args.connections, []))
        capture_s = time.perf_counter() - t0
        time.sleep(1.0)  # the relay and consumer finish the captures' events
        cpu_ms = (server_cpu_s(server.proc.pid) - cpu0) * 1000 / max(1, len(done))
        print(f"server CPU per capture (incl. its relay/consumer work): {cpu_ms:.2f} ms")
        t0 = time.perf_counter()
        rlat, replayed, rfail = asyncio.run(_drive(server.url, tokens, args.seconds, args.connections, done))
        replay_s = time.perf_counter() - t0
        audit = server.status()["audit"]
    finally:
        server.stop()
    return lat, done, failures, capture_s, rlat, replayed, rfail, replay_s, audit


def _pct_ms(latencies_s: list[float], pct: float) -> float:
    return percentile(sorted(latencies_s), pct) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--tenants", type=int, default=8)
    ap.add_argument("--database", default=None, help="a postgresql:// URL (default: SQLite)")
    ap.add_argument("--in-process", action="store_true", help="call the service directly, no HTTP")
    ap.add_argument("--payment-threads", type=int, default=0, help="with --in-process: the payments pool")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="abyssal-paybench-")) / "data"
    run = asyncio.run(_service(args, data)) if args.in_process else _http(args, data)
    lat, done, failures, capture_s, rlat, replayed, rfail, replay_s, audit = run
    by_key = {(t, k): b for t, k, b in done}
    mismatched = sum(by_key[(t, k)] != b for t, k, b in replayed)
    conn: Any = psycopg.connect(args.database) if args.database else sqlite3.connect(data / "abyssal.db")
    entries = conn.execute("SELECT COUNT(*) FROM ledger WHERE type = 'deposit' AND account >= 0").fetchone()[
        0
    ]
    usd = conn.execute(
        "SELECT SUM(total) FROM balances WHERE account >= 1 AND asset = "
        "(SELECT asset FROM ledger WHERE type = 'deposit' LIMIT 1)"
    ).fetchone()[0]
    conn.close()
    expected_minor = int(Decimal("1.25") * 10**4) * len(done)  # 12_500 minor units (USD: 4 decimals)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"python {platform.python_version()} on {cpu_model()} ({platform.machine()}), "
          f"nproc {os.cpu_count()}, load {load}, {'postgresql' if args.database else 'sqlite'}, "
          f"{'in process' if args.in_process else 'HTTP'}")  # fmt: skip
    print(
        f"captures: {len(done)} in {capture_s:.1f}s = {len(done) / capture_s:,.0f}/s  "
        f"p50 {_pct_ms(lat, 50):.1f} ms  p99 {_pct_ms(lat, 99):.1f} ms  ({args.connections} connections)"
    )
    print(
        f"replays:  {len(replayed)} in {replay_s:.1f}s = {len(replayed) / replay_s:,.0f}/s  "
        f"p50 {_pct_ms(rlat, 50):.1f} ms  p99 {_pct_ms(rlat, 99):.1f} ms"
    )
    problems = []
    if failures or rfail:
        problems.append(f"{failures} capture and {rfail} replay answers were not 201 (replayed)")
    if mismatched:
        problems.append(f"{mismatched} replays differ from the first answer")
    if entries != len(done):
        problems.append(f"ledger has {entries} deposit entries for {len(done)} keys")
    if int(usd) != expected_minor:
        problems.append(f"balances sum to {usd}, expected {expected_minor}")
    if audit:
        problems.append(f"audit: {audit}")
    print("end state:", "OK" if not problems else "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
