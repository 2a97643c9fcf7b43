"""WebSocket v2 fan-out: book subscribers during a steady order stream, engine throughput, idle connections.

Run from the repo root with the project venv (about 3 minutes)::

    python bench/ws_bench.py
    python bench/ws_bench.py --subscribers 1000 --rate 1000 --seconds 10 --idle 10000

Three processes: this orchestrator; the server (the real ``App`` under uvicorn, uvloop, pinned to
CPU 0, with an order driver inside it calling ``Exchange.execute`` directly, so HTTP is not
measured); and the clients (raw asyncio sockets, no permessage-deflate, pinned to CPU 1).
Phases, each on a fresh data directory:

1. no subscribers: a steady stream of ``--rate`` commands/s for ``--seconds``, then the highest
   sustained throughput (``--inflight`` commands kept in flight) for ``--seconds``;
2. ``--subscribers`` connections, each subscribed to ``book`` (depth 10) and ``trade`` on BTC/USD:
   the same steady stream, then the same throughput run. Clients count every frame; ``--probes``
   of them parse frames for delays: trade-to-delivery (the fill's engine time to the client's
   receive time, so it includes the SQLite commit) and publish-to-delivery (the book update's
   ``timestamp``, the moment the committed batch reached the market views, to receive);
3. the same as 2 with the portable ASGI send path (``ABYSSAL_WS_DIRECT=0``);
4. ``--idle`` connections that only receive the status frame: server RSS per connection.

End state asserted: every subscriber got its snapshot, no connection was closed by the server,
the book clients saw checksums only from frames they parsed (probes re-check them), and the
engine acknowledged every command it was sent.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

from machine import cpu_model, package_versions, pin, raise_fd_limit, rss_bytes
from percentile import percentile
from ws_clients import SYMBOL, Client, clients
from ws_driver import MAKERS, MID_TICKS, TAKER, OrderDriver
from ws_phases import Child, idle_phase, phase
from ws_server import serve

# what this script defined before it was split: other scripts import these names from here
__all__ = [
    "HERE", "MAKERS", "MID_TICKS", "SYMBOL", "TAKER", "Child", "Client", "OrderDriver", "clients",
    "idle_phase", "main", "percentile", "phase", "pin", "raise_fd_limit", "report", "rss_bytes", "serve",
]  # fmt: skip

HERE = Path(__file__).resolve()


def report(name: str, r: dict[str, Any], probes: int) -> None:
    s, f = r["steady"], r["flat"]
    print(f"  {name}")
    print(
        f"    steady stream : {s['commands_per_s']:8.0f} commands/s, {s['batches_per_s']:6.0f} batches/s, "
        f"{s['rounds_per_s']:6.0f} publish rounds/s, {s['deliveries_per_s']:7.0f} frames delivered/s; "
        f"server CPU {s['cpu']:.0%}"
        + (f", {s['cpu'] / s['deliveries_per_s'] * 1e6:.2f} µs per frame" if s["deliveries_per_s"] else "")
    )
    print(
        f"    flat out      : {f['commands_per_s']:8.0f} commands/s (engine throughput, "
        f"{r['sessions']['subscribed']} subscribers, {f['mean_batch']:.0f} commands per commit)"
    )
    c = r.get("clients")
    if c:
        seconds = (s["window_ns"][1] - s["window_ns"][0]) / 1e9
        print(
            f"    clients       : {c['bytes'] / 1e6:.1f} MB received in total, probes parsed "
            f"{c['probe_frames']} frames; lost {c['lost']}, closed by server {c['closed_by_server']}, "
            f"server-side closed {r['after']['closed']}; client CPU {c['cpu']:.0%}"
        )
        print(
            f"    trade->client : p50 {c['trade_ms'][0]:.2f} ms  p99 {c['trade_ms'][1]:.2f} ms  "
            f"p99.9 {c['trade_ms'][2]:.2f} ms  ({c['trade_n']} samples over {seconds:.0f} s, "
            f"{probes} probes)"
        )
        print(
            f"    views->client : p50 {c['book_ms'][0]:.2f} ms  p99 {c['book_ms'][1]:.2f} ms  "
            f"p99.9 {c['book_ms'][2]:.2f} ms  (book update timestamp to receive; {c['book_n']} samples)"
        )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", default="100,1000", help="comma-separated subscriber counts")
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="steady commands per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inflight", type=int, default=512)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--skip-asgi", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place the processes")
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--clients", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args()


def _subscriber_phases(args: argparse.Namespace) -> None:
    """No subscribers, then each count with direct writes (and the ASGI send path): figures and checks."""
    results = {"none": phase(args, 0)}
    report("no subscribers", results["none"], args.probes)
    counts = [int(x) for x in args.subscribers.split(",")]
    for count in counts:
        paths = [("direct", None)] + ([] if args.skip_asgi else [("asgi", {"ABYSSAL_WS_DIRECT": "0"})])
        for name, env in paths:
            r = results[f"{name}-{count}"] = phase(args, count, env)
            report(
                f"{count} subscribers, {'direct transport writes' if name == 'direct' else 'ASGI send path'}",
                r,
                args.probes,
            )
            assert r["sessions"]["subscribed"] == count, "every subscriber got its snapshot"
            assert r["clients"]["lost"] == 0 and r["after"]["closed"] == 0, "the server closed no subscriber"
    none_tp = results["none"]["flat"]["commands_per_s"]
    for count in counts:
        with_tp = results[f"direct-{count}"]["flat"]["commands_per_s"]
        print(
            f"  engine throughput with {count} subscribers: {with_tp / none_tp:.0%} of the throughput without"
        )


def main() -> None:
    args = _parse()
    limit = raise_fd_limit()
    if args.cpu >= 0:
        pin(args.cpu)
    if args.serve:
        import uvloop

        uvloop.run(serve(int(args.serve[0]), Path(args.serve[1])))
        return
    if args.clients:
        import uvloop

        port, count, probes, subscribe = (int(x) for x in args.clients)
        uvloop.run(clients(port, count, probes, bool(subscribe)))
        return
    versions = package_versions(("uvicorn", "websockets", "uvloop", "msgspec"))
    print(
        f"machine: {cpu_model()} x{os.cpu_count()}, Python {platform.python_version()}, {versions}; "
        f"fd limit {limit}; load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'no pinning' if args.no_pin else 'server pinned to CPU 0, clients to CPU 1'}; steady stream "
        f"{args.rate:.0f} commands/s for {args.seconds:.0f} s (orders, IOC takers, cancels on BTC/USD); "
        "subscribers take book depth 10 + trade"
    )
    _subscriber_phases(args)
    if args.idle:
        idle = idle_phase(args.idle)
        assert idle["sessions"] == args.idle, "every idle connection was accepted"
        print(
            f"  {args.idle} idle connections: server RSS {idle['rss_before'] / 1e6:.0f} MB -> "
            f"{idle['rss_after'] / 1e6:.0f} MB, {idle['rss_per_connection'] / 1024:.1f} KiB per connection"
        )


if __name__ == "__main__":
    main()
