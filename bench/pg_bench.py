"""PostgreSQL and Kafka adapters: ledger postings/s against COPY, the driver choice, Kafka throughput.

Run from the repo root with the project venv (starts its own throwaway PostgreSQL 15 and Tansu)::

    python bench/pg_bench.py                    # everything, about a minute
    python bench/pg_bench.py --only ledger      # or: drivers, kafka

- ledger: balanced ledger lines (5 per posting) written the way ``PostgresStore.write_batch`` writes
  them (one ``INSERT ... SELECT FROM unnest`` per batch, deferred balance trigger, durable commit)
  against ``COPY`` of the same rows into the same table, and into a trigger-less copy of it. Goal:
  the batched rate is at least half the COPY rate. End state asserted: row counts, Σ = 0 per asset.
- drivers: engine-made command batches (orders, fills, ledger, balances) through psycopg 3 (the
  store) and through asyncpg running the same statements; then REST-style read latency (the
  ``ledger`` page query) on each. Figures for docs/adr/0006-postgres-driver.md.
- kafka: ``KafkaPublisher`` throughput (idempotent, acks=all, batches of 500) and the latency from
  ``publish`` to the subscriber's handler, p50/p99, through ``KafkaSubscriber``.

The server runs with fsync on (durable commits) on the same machine as the client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from tests.kafka.broker import Tansu
from tests.postgres.cluster import PgCluster
from tests.postgres.test_store_postgres import batches, commands

from abyssal.adapters import sqlite_reads
from abyssal.adapters.kafka_bus import KafkaPublisher, KafkaSubscriber
from abyssal.adapters.postgres import PostgresStore
from abyssal.adapters.postgres_batch import INSERT_LEDGER, LEDGER_COLUMNS, batch_statements, columns
from abyssal.config import load_config
from abyssal.ports import BusMessage

LINES_PER_POSTING = 5


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))] if s else 0.0


def postings(first_seq: int, count: int) -> list[tuple[Any, ...]]:
    """Trade-shaped balanced postings: buyer and seller legs in two assets plus the house fee."""
    out: list[tuple[Any, ...]] = []
    for seq in range(first_seq, first_seq + count):
        a, b = 1 + seq % 1000, 1001 + seq % 1000
        for leg, (acct, asset, amount, fee) in enumerate(
            ((a, 0, -10_000, 40), (b, 0, 10_000, 0), (0, 0, 40, 0), (a, 1, 25, 0), (b, 1, -25, 0))
        ):
            out.append((seq, 0, leg, acct, asset, "trade", "", f"T{seq}", seq, amount, fee, 0))
    return out


def bench_ledger(dsn: str, total_postings: int, batch_postings: int) -> None:
    store = PostgresStore(dsn)
    conn = store.conn().raw
    conn.execute("CREATE TABLE ledger_raw (LIKE ledger INCLUDING ALL)")
    seq = 1
    start = time.perf_counter()
    while seq <= total_postings:
        lines = postings(seq, batch_postings)
        with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            cur.execute(INSERT_LEDGER, columns(lines, 12))
        seq += batch_postings
    batched_s = time.perf_counter() - start
    rates = {"batched unnest (write_batch shape)": total_postings * LINES_PER_POSTING / batched_s}
    for table, label in (("ledger", "COPY into ledger (same triggers)"), ("ledger_raw", "COPY, no triggers")):
        base = seq if table == "ledger" else 1
        start = time.perf_counter()
        for first in range(base, base + total_postings, total_postings // 2):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY {table} ({LEDGER_COLUMNS}) FROM STDIN") as copy,
            ):
                for line in postings(first, total_postings // 2):
                    copy.write_row(line)
        rates[label] = total_postings * LINES_PER_POSTING / (time.perf_counter() - start)
    rows = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()
    assert rows is not None and rows[0] == 2 * total_postings * LINES_PER_POSTING, rows
    assert (
        conn.execute("SELECT asset FROM ledger GROUP BY asset HAVING SUM(amount - fee) <> 0").fetchall() == []
    )
    print(f"\nledger lines/s ({total_postings} postings x {LINES_PER_POSTING} lines, "
          f"{batch_postings} postings per transaction):")  # fmt: skip
    for label, rate in rates.items():
        print(f"  {label:38s} {rate:>10,.0f}")
    ratio = rates["batched unnest (write_batch shape)"] / rates["COPY into ledger (same triggers)"]
    ratio_raw = rates["batched unnest (write_batch shape)"] / rates["COPY, no triggers"]
    print(
        f"  batched / COPY same table: {ratio:.2f}  (goal >= 0.5)   "
        f"batched / COPY no triggers: {ratio_raw:.2f}"
    )
    store.close()


def dollar(sql: str) -> str:
    n = iter(range(1, 10_000))
    return re.sub(r"%s", lambda _: f"${next(n)}", sql.replace("?", "%s"))


async def asyncpg_writes(dsn: str, records: list[Any]) -> list[float]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    times: list[float] = []
    for record in records:
        t0 = time.perf_counter()
        async with conn.transaction():
            for sql, params, many in batch_statements(record):
                if many:
                    await conn.executemany(dollar(sql), params)
                else:
                    await conn.execute(dollar(sql), *params)
        times.append(time.perf_counter() - t0)
    await conn.close()
    return times


async def asyncpg_reads(dsn: str, account: int, n: int) -> list[float]:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    count_sql = dollar("SELECT COUNT(*) AS n FROM ledger WHERE account = ?")
    page_sql = dollar("SELECT * FROM ledger WHERE account = ? ORDER BY entry_no DESC LIMIT ? OFFSET ?")
    times: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with pool.acquire() as c:
            await c.fetchval(count_sql, account)
            await c.fetch(page_sql, account, 50, 0)
        times.append(time.perf_counter() - t0)
    await pool.close()
    return times


def bench_drivers(cluster: PgCluster, orders: int, batch_size: int) -> None:
    instruments = load_config(None).instruments
    records = batches(instruments, commands(instruments, orders), size=batch_size, snapshot_every=10**9)
    n_commands = sum(len(r.command_rows) for r in records)
    print(f"\ndriver comparison: {len(records)} engine batches of {batch_size} commands "
          f"({n_commands} commands, {sum(len(r.rows.ledger) for r in records)} ledger lines)")  # fmt: skip
    store = PostgresStore(cluster.create_database("drv_psycopg"))
    ps: list[float] = []
    for record in records:
        t0 = time.perf_counter()
        store.write_batch(record)
        ps.append(time.perf_counter() - t0)
    apg_url = cluster.create_database("drv_asyncpg")
    PostgresStore(apg_url).close()  # same schema
    ap = asyncio.run(asyncpg_writes(apg_url, records))
    for name, t in (("psycopg 3 (sync, pipeline)", ps), ("asyncpg", ap)):
        print(f"  write  {name:28s} {n_commands / sum(t):>9,.0f} commands/s   "
              f"batch p50 {pct(t, 50) * 1e3:6.2f} ms  p99 {pct(t, 99) * 1e3:6.2f} ms")  # fmt: skip
    reads = 2000
    rs: list[float] = []
    for _ in range(reads):
        t0 = time.perf_counter()
        sqlite_reads.ledger(store, 1, None, None, sqlite_reads.Window())
        rs.append(time.perf_counter() - t0)
    ar = asyncio.run(asyncpg_reads(apg_url, 1, reads))
    for name, t in (("psycopg 3 (store.conn())", rs), ("asyncpg (pool)", ar)):
        print(
            f"  read   {name:28s} ledger page + count: "
            f"p50 {pct(t, 50) * 1e3:6.3f} ms  p99 {pct(t, 99) * 1e3:6.3f} ms"
        )
    store.close()


async def bench_kafka(broker: Tansu, events: int, samples: int) -> None:
    broker.create_topic("bench", partitions=8)
    pub = KafkaPublisher(broker.url)
    msgs = [
        BusMessage("bench", f"k{i % 64}", f"e{i}", "bench.event", 1, b'{"amount":"1.00"}')
        for i in range(events)
    ]
    t0 = time.perf_counter()
    for i in range(0, events, 500):
        await pub.publish(msgs[i : i + 500])
    publish_s = time.perf_counter() - t0
    broker.create_topic("latency", partitions=1)
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def handler(m: BusMessage) -> None:
        latencies.append(time.perf_counter() - sent[m.event_id])

    sub = KafkaSubscriber(broker.url, config={"session.timeout.ms": 2000, "heartbeat.interval.ms": 500})
    task = asyncio.create_task(sub.run(["latency"], "bench-latency", handler))
    await pub.publish([BusMessage("latency", "w", "warm", "bench.event", 1, b"{}")])
    sent["warm"] = time.perf_counter()
    while not latencies:
        await asyncio.sleep(0.01)
    latencies.clear()
    for i in range(samples):
        sent[f"l{i}"] = time.perf_counter()
        await pub.publish([BusMessage("latency", "k", f"l{i}", "bench.event", 1, b"{}")])
        await asyncio.sleep(0.002)
    deadline = time.monotonic() + 30
    while len(latencies) < samples and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await sub.close()
    await task
    await pub.close()
    assert len(latencies) == samples, f"{len(latencies)}/{samples} delivered"
    print("\nkafka (Tansu memory storage, confluent-kafka idempotent producer, acks=all):")
    print(f"  publish throughput: {events / publish_s:,.0f} events/s ({events} events, batches of 500)")
    print(f"  publish -> handler latency ({samples} single-event publishes): "
          f"p50 {pct(latencies, 50) * 1e3:.2f} ms  p99 {pct(latencies, 99) * 1e3:.2f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["ledger", "drivers", "kafka"], default=None)
    parser.add_argument("--postings", type=int, default=40_000)
    parser.add_argument("--batch-postings", type=int, default=1_000)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"{platform.node()} {os.cpu_count()} cpus, load {load[0]:.1f} {load[1]:.1f}; "
          f"Python {platform.python_version()}; psycopg {psycopg.__version__}")  # fmt: skip
    if args.only in (None, "ledger", "drivers"):
        cluster = PgCluster(durable=True, extra=("shared_buffers=512MB", "max_wal_size=4GB"))
        cluster.start()
        try:
            if args.only in (None, "ledger"):
                bench_ledger(cluster.create_database("ledger"), args.postings, args.batch_postings)
            if args.only in (None, "drivers"):
                bench_drivers(cluster, orders=6_000, batch_size=100)
        finally:
            cluster.stop()
    if args.only in (None, "kafka"):
        broker = Tansu()
        broker.start()
        try:
            asyncio.run(bench_kafka(broker, events=50_000, samples=300))
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
