"""What the HTTP goal leaves for the exchange: signed AddOrder with and without the exchange behind it.

Run from the repository root with the project venv (needs ``wrk``; about 2 minutes)::

    python bench/http_bounds.py                      # 2 interleaved rounds of 5 s per run
    python bench/http_bounds.py --seconds 8 --rounds 3

Issue 3 asks signed AddOrder for half the throughput of the same server's ``/0/public/Time``
(``http_bench.py``). This starts two servers as ``http_bench.py`` does (pinned to CPU 0 with their
batch writer child, wrk on CPU 1, 64 connections), one after the other:

- the real one (``abyssal serve``);
- a bound (``python bench/http_bounds.py serve ...``): the same server, whose AddOrder does
  everything up to the exchange (signature, nonce, permissions, form and order parameters, the
  per-pair rate counter, the order description) and answers with a made-up txid instead of
  sequencing, applying and committing the order.

In each it measures Time and AddOrder with wrk, alternately, and prints the ratios and the CPU
per request they imply: what the gateway alone costs an order, and so what the goal leaves for
sequencing, matching and the durable commit (on the same core as the HTTP work, since the
benchmark gives the client the machine's other one). ``bench/README_http.md`` ("The bounds of
the HTTP goal") has the figures and the reading.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from abyssal_server import Server
from http_load import CLIENT_CPUS
from machine import machine_lines
from signed_orders import Signer, setup_accounts
from wrk_load import run_wrk

PRESIGN_PER_S = 60_000  # more signed requests per second of wrk than the bound server can answer


def serve_without_exchange(argv: list[str]) -> int:
    """``abyssal serve`` with an AddOrder that stops where the exchange would begin."""
    from abyssal.cli import main as cli_main
    from abyssal.core import ids
    from abyssal.gateway import app
    from abyssal.gateway import trading_limits as limits
    from abyssal.gateway.context import Ctx
    from abyssal.gateway.kraken_trading import check_deadline, order_descr
    from abyssal.gateway.order_params import place_order
    from abyssal.gateway.params import Params

    numbers = itertools.count(1)

    async def add_order_until_the_exchange(ctx: Ctx, p: Params) -> Any:
        check_deadline(ctx, p)
        ins = ctx.exchange.instruments
        cmd = place_order(ins, p, ctx.account, ctx.now_ns)
        await limits.charge_add(ctx.exchange, ctx.account, ins.pairs[cmd.pair].id, ctx.now_ns)
        return {"descr": order_descr(ins.pairs[cmd.pair], cmd), "txid": [ids.order_id(next(numbers))]}

    app.PRIVATE["AddOrder"] = add_order_until_the_exchange
    return cli_main(argv)


def measure(
    label: str, launcher: tuple[str, ...], rounds: int, seconds: float, cpus: str
) -> tuple[float, float]:
    """Median Time and AddOrder requests/s of ``rounds`` alternating wrk runs on a fresh server."""
    work = Path(tempfile.mkdtemp(prefix="abyssal-httpbounds-"))
    server = Server(work / "data", launcher=launcher)
    server.start()
    try:
        signer = Signer(*setup_accounts(server))
        run_wrk(server, "warm-up Time", 2, work, None, cpus)
        times, adds = [], []
        for n in range(1, rounds + 1):
            t = run_wrk(server, f"Time {n}", seconds, work, None, cpus)
            requests = work / "add.req"
            signer.write(int(PRESIGN_PER_S * seconds), requests)
            a = run_wrk(server, f"AddOrder {n}", seconds, work, requests, cpus)
            if a.bad or a.ok == 0:
                raise SystemExit(f"http_bounds: {label}: {a.bad} refused AddOrders: {a.err_sample}")
            times.append(t.per_s)
            adds.append(a.per_s)
            print(f"{label:34s} round {n}: Time {t.per_s:>9,.0f}/s  AddOrder {a.per_s:>9,.0f}/s", flush=True)
        return statistics.median(times), statistics.median(adds)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["serve"]:
        return serve_without_exchange(args_in)
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="each wrk run")
    ap.add_argument("--rounds", type=int, default=2, help="Time and AddOrder runs per server")
    ap.add_argument("--client-cpus", default=CLIENT_CPUS)
    args = ap.parse_args(args_in)
    print("# Abyssal: the bounds of the HTTP goal (wrk, 64 connections, server on CPU 0)")
    for line in machine_lines():
        print(line)
    here = str(Path(__file__).resolve())
    bound_time, bound_add = measure("AddOrder without the exchange", (here,), args.rounds, args.seconds,
                                    args.client_cpus)  # fmt: skip
    real_time, real_add = measure("abyssal serve", ("-m", "abyssal.cli"), args.rounds, args.seconds,
                                  args.client_cpus)  # fmt: skip
    time_us = 1e6 / ((bound_time + real_time) / 2)
    print()
    print("| server | Time req/s | AddOrder req/s | ratio | µs per AddOrder | of which beyond Time |")
    print("|---|---:|---:|---:|---:|---:|")
    pairs = (("AddOrder without the exchange", bound_time, bound_add), ("abyssal serve", real_time, real_add))
    for label, t, a in pairs:
        print(f"| {label} | {t:,.0f} | {a:,.0f} | {a / t:.2f} | {1e6 / a:.1f} | {1e6 / a - 1e6 / t:.1f} |")
    budget = 2 * time_us
    gateway = 1e6 / bound_add
    print()
    exchange = 1e6 / real_add - gateway
    print(f"goal: AddOrder >= 0.5 x Time, i.e. at most {budget:.1f} µs per order (Time: {time_us:.1f} µs); "
          f"the gateway alone takes {gateway:.1f}, which leaves {budget - gateway:.1f} µs per order for "
          f"sequencing, matching, projecting and committing it; today they take {exchange:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
