"""Signed AddOrder at fixed rates: latency, and what an order costs the server at each rate.

Run from the repo root with the project venv (about 1.5 minutes)::

    python bench/http_rates.py                            # 500, 1,000, 2,000, 3,000, 4,000 orders/s
    python bench/http_rates.py --rates 1000,3000 --seconds 5 --config thread.toml

Why: ``http_bench.py`` judges latency at half the maximum throughput, but it reaches the maximum
with batches of about 25 commands and half of it with batches of about 4, and an order's CPU
depends on its batch: a commit, a hand-over to the batch writer and a wake-up of the event loop
cost about the same for one command as for 25. This shows where the server's core fills up.

It starts ``abyssal serve`` as ``http_bench.py`` does (pinned to ``--server-cpus``, a fresh data
directory, two funded accounts; ``--config`` is passed on, e.g. ``engine.batch_writer =
"thread"``), then for each rate runs the paced open-loop client of ``http_bench.py`` (pinned to
the other CPU, 64 connections, latency from each request's scheduled release) and prints its
latency percentiles, the CPU per order of the server's main process and of its batch writer
child apart (from ``/proc``), the share of the server CPU used, and the sequencer's mean batch.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from pathlib import Path

from abyssal_server import SERVER_CPUS, Server
from http_load import CLIENT_CPUS
from machine import children, contention, machine_lines, process_cpu_s
from paced_client import run_paced
from sequencer_metrics import scrape, sequencer_note
from signed_orders import Signer, setup_accounts

RATES_DEFAULT = "500,1000,2000,3000,4000"
SECONDS_DEFAULT = 8.0


def _children_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a forked snapshot may have exited
            total += process_cpu_s(pid)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rates", default=RATES_DEFAULT, help="orders/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=SECONDS_DEFAULT, help="per rate")
    ap.add_argument("--config", type=Path, default=None, help="passed to abyssal serve")
    ap.add_argument("--server-cpus", default=SERVER_CPUS)
    ap.add_argument("--client-cpus", default=CLIENT_CPUS)
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    print("# Abyssal: signed AddOrder at fixed rates (paced, open loop, 64 connections)")
    for line in machine_lines():
        print(line)
    print(f"server on CPU {args.server_cpus}, paced client on CPU {args.client_cpus}; config: {args.config}")
    print()
    print("| orders/s | p50 ms | p99 ms | p99.9 ms | max ms | main µs/order | writer child µs/order "
          "| server CPU | mean batch |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    work = Path(tempfile.mkdtemp(prefix="abyssal-httprates-"))
    server = Server(work / "data", args.server_cpus, config=args.config)
    server.start()
    try:
        signer = Signer(*setup_accounts(server))
        assert server.proc is not None
        pid = server.proc.pid
        for rate in rates:
            requests = work / "paced.req"
            signer.write(int(rate * args.seconds) + 1, requests)
            kids = children(pid)
            metrics0, main0, child0 = scrape(server), process_cpu_s(pid), _children_cpu_s(kids)
            result = run_paced(server, rate, args.seconds, requests, work, args.client_cpus)
            main_s, child_s = process_cpu_s(pid) - main0, _children_cpu_s(kids) - child0
            n = max(1, result.requests)
            note = sequencer_note(metrics0, scrape(server)).split(",")[0].replace(" mean batch ", "")
            print(
                f"| {rate:,.0f} | {result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.p999_ms:.2f} "
                f"| {result.max_ms:.1f} | {main_s * 1e6 / n:.0f} | {child_s * 1e6 / n:.0f} "
                f"| {result.server_cpu_pct:.0f} % | {note} |",
                flush=True,
            )
            assert result.bad == 0 and result.socket_errors == 0, result.err_sample
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nother load at the end: {contention()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
