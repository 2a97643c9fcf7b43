"""What a scaled-out gateway pays per request for the state it shares through PostgreSQL.

Run from the repo root with the project venv (starts its own throwaway PostgreSQL 15)::

    python bench/shared_state_bench.py            # about 20 seconds
    python bench/shared_state_bench.py --calls 20000

Times, one call at a time on one connection (as a gateway's read-pool thread makes them), the
statements of ``abyssal.cluster.shared.SharedState``: the strict nonce check (one conditional
UPDATE), the windowed nonce check (a short transaction), the REST call counter (one upsert),
a WebSocket token lookup, and the seq read a gateway makes before each private call
(read-your-writes). Prints p50/p90/p99/max in microseconds and calls per second. The server runs
with fsync off (a throwaway cluster): on a durable server each write also waits for a WAL flush.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.postgres.cluster import PgCluster

from abyssal.adapters.postgres import PostgresStore
from abyssal.cluster import schema
from abyssal.cluster.shared import SharedState


def timed(name: str, calls: int, fn: Callable[[int], object]) -> tuple[str, list[float]]:
    for i in range(min(200, calls)):  # warm-up
        fn(-i - 1)
    out = []
    for i in range(calls):
        t = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t) / 1000)
    return name, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    pg = PgCluster()
    pg.start()
    try:
        url = pg.create_database("shared_bench")
        store = PostgresStore(url)
        schema.ensure(store.conn().raw)
        account = store.create_account("bench", 0)
        strict = store.insert_api_key("k-strict", account, b"x", 1, 0, 0)
        windowed = store.insert_api_key("k-window", account, b"x", 1, 1000, 0)
        shared = SharedState(store)
        shared.put_ws_token("token-1", strict, 2**62)
        base = time.time_ns()
        rows = [
            timed("nonce, strict (UPDATE ... WHERE last < n)", args.calls,
                  lambda i: shared.check_nonce(strict, base + i + 1000, 0)),
            timed("nonce, window 1000 (transaction)", args.calls,
                  lambda i: shared.check_nonce(windowed, base + i + 1000, 1000)),
            timed("call counter (upsert)", args.calls,
                  lambda i: shared.spend("call:k", 1_000_000, 10**15, 330_000, time.time_ns())),
            timed("WebSocket token lookup", args.calls, lambda i: shared.ws_token("token-1")),
            timed("projected seq (read-your-writes)", args.calls, lambda i: shared.projected_seq()),
        ]  # fmt: skip
        print(f"python {platform.python_version()}, nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, "
              f"{args.calls} sequential calls each, loopback TCP, fsync off")  # fmt: skip
        print(f"{'statement':<44} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'max us':>8} {'calls/s':>8}")
        for name, xs in rows:
            q = statistics.quantiles(xs, n=100)
            rate = len(xs) / (sum(xs) / 1e6)
            print(f"{name:<44} {q[49]:8.0f} {q[89]:8.0f} {q[98]:8.0f} {max(xs):8.0f} {rate:8.0f}")
        store.close()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
