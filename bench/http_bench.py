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
   request, bodies from ``OrderMix`` (order_mix.py): 80 % GTC limit orders resting up to 50 USD
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
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from abyssal_server import ADMIN_TOKEN, SERVER_CPUS, START_TIMEOUT_S, STOP_TIMEOUT_S, Server, free_port
from end_state import QUERY_ORDERS_MAX, QUERY_SAMPLE, check_database, check_query_orders
from http_load import CLIENT_CPUS, CONNECTIONS, LoadResult, check_load
from http_report import (
    CLIENT_SATURATED_PCT,
    GOAL_P999_MS,
    GOAL_RATIO,
    EndState,
    print_header,
    print_summary,
    print_table_header,
)
from machine import contention, machine_lines
from order_mix import OrderMix
from paced_client import PACED_DRAIN_S, PACED_TICK_S, paced_client_cli, paced_client_main, run_paced
from percentile import percentile
from sequencer_metrics import SEQUENCER_SERIES, scrape, sequencer_note
from signed_orders import (
    ADD_ORDER_PATH,
    FORMAT_CHECK_ORDERS,
    FUNDING,
    NONCE_WINDOW,
    Key,
    Signer,
    check_format,
    setup_accounts,
)
from wrk_load import LUA_SCRIPT, WRK_TIMEOUT_S, run_wrk

# what this script defined before it was split: other scripts import these names from here
__all__ = [
    "ADD_ORDER_PATH", "ADMIN_TOKEN", "BENCH_DIR", "CLIENT_CPUS", "CLIENT_SATURATED_PCT", "CONNECTIONS",
    "FORMAT_CHECK_ORDERS", "FUNDING", "GOAL_P999_MS", "GOAL_RATIO", "LUA_SCRIPT", "NONCE_WINDOW",
    "PACED_DRAIN_S", "PACED_SECONDS_DEFAULT", "PACED_TICK_S", "PRESIGN_FLOOR", "PRESIGN_HEADROOM",
    "QUERY_ORDERS_MAX", "QUERY_SAMPLE", "RUNS_DEFAULT", "RUN_SECONDS_DEFAULT", "SEQUENCER_SERIES",
    "SERVER_CPUS", "START_TIMEOUT_S", "STOP_TIMEOUT_S", "WARMUP_SECONDS", "WRK_TIMEOUT_S", "Key",
    "LoadResult", "OrderMix", "Server", "Signer", "check_database", "check_query_orders", "contention",
    "free_port", "machine_lines", "main", "paced_client_main", "percentile", "run_paced", "run_wrk",
    "scrape", "sequencer_note",
]  # fmt: skip

BENCH_DIR = Path(__file__).resolve().parent
RUN_SECONDS_DEFAULT = 8
RUNS_DEFAULT = 3
PACED_SECONDS_DEFAULT = 20
WARMUP_SECONDS = 3
PRESIGN_HEADROOM = 2.0  # pre-sign twice what the measured rate would send, plus a floor
PRESIGN_FLOOR = 20_000


@dataclass
class Loads:
    """Every load run of one benchmark, and the txids acknowledged across all of them."""

    times: list[LoadResult]
    adds: list[LoadResult]
    paced: LoadResult
    acked: list[str]


def _presign_count(rate: float, seconds: float) -> int:
    return int(rate * seconds * PRESIGN_HEADROOM) + PRESIGN_FLOOR


def _parse(argv: list[str] | None) -> argparse.Namespace:
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
    return ap.parse_args(argv)


def _warm_up(server: Server, signer: Signer, work: Path, cpus: str) -> LoadResult:
    t0 = time.perf_counter()
    run_wrk(server, "warm-up Time", WARMUP_SECONDS, work, None, cpus)
    warm_file = work / "warmup.req"
    signer.write(_presign_count(10_000, WARMUP_SECONDS), warm_file)
    warm = run_wrk(server, "warm-up AddOrder", WARMUP_SECONDS, work, warm_file, cpus)
    check_load(warm)
    print(f"warm-up: {warm.per_s:,.0f} AddOrder/s ({time.perf_counter() - t0:.1f} s incl. signing)")
    return warm


def _measure(server: Server, signer: Signer, work: Path, args: argparse.Namespace) -> Loads:
    """Warm-up, ``--runs`` alternating wrk runs of Time and AddOrder, then the paced run at half the max."""
    cpus = args.client_cpus
    warm = _warm_up(server, signer, work, cpus)
    acked = list(warm.txids)
    print_table_header()
    times: list[LoadResult] = []
    adds: list[LoadResult] = []
    rate_guess = warm.per_s
    for run in range(1, args.runs + 1):
        times.append(run_wrk(server, f"Time #{run}", args.seconds, work, None, cpus))
        print(times[-1].row(), flush=True)
        check_load(times[-1])
        req_file = work / f"add{run}.req"
        signer.write(_presign_count(rate_guess, args.seconds), req_file)
        adds.append(run_wrk(server, f"AddOrder #{run}", args.seconds, work, req_file, cpus))
        print(adds[-1].row(), flush=True)
        check_load(adds[-1])
        acked += adds[-1].txids
        rate_guess = max(rate_guess, adds[-1].per_s)
        req_file.unlink()

    rate = statistics.median(r.per_s for r in adds) / 2
    paced_file = work / "paced.req"
    signer.write(int(rate * args.paced_seconds) + 1, paced_file)
    paced = run_paced(server, rate, args.paced_seconds, paced_file, work, cpus)
    print(paced.row(), flush=True)
    check_load(paced)
    acked += paced.txids
    return Loads(times, adds, paced, acked)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    print_header(args.server_cpus, args.client_cpus)
    work = Path(tempfile.mkdtemp(prefix="abyssal-httpbench-"))
    server = Server(work / "data", args.server_cpus)
    server.start()
    stopped = False
    try:
        signer = Signer(*setup_accounts(server))
        check_format(server, signer)
        loads = _measure(server, signer, work, args)
        status = server.admin("GET", "/admin/status")
        assert status["audit"] == [], f"ledger audit: {status['audit']}"
        sampled = check_query_orders(server, signer, loads.acked, random.Random(7))
        code = server.stop()
        stopped = True
        # uvicorn re-raises the SIGTERM it handled once shutdown (and the sequencer's drain) is done
        assert code in (0, -signal.SIGTERM), f"server exit status {code}:\n{server.log()[-2000:]}"
        assert '"level": "error"' not in server.log(), server.log()[-2000:]
        n_acked, rows, open_rows = check_database(work / "data" / "abyssal.db", loads.acked)
    finally:
        if not stopped:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    met = print_summary(loads.times, loads.adds, loads.paced, EndState(n_acked, rows, open_rows, sampled))
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--paced-client":
        sys.exit(paced_client_cli(sys.argv[2:]))
    sys.exit(main())
