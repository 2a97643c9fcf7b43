"""Sequencer alone: durable, acknowledged commands per second, group commit against one commit per command.

Run from the repo root with the project venv::

    python bench/sequencer_bench.py            # about 2.5 minutes
    python bench/sequencer_bench.py --seconds 3 --repeat 1 --runs 1:256,256:256   # limit:clients

What it does, for each row (``batch_commands_max`` 1, 16, 256 and 1024 with 256 clients, then 1024
with 1024 clients, because 256 commands in flight never fill a batch of 1024, then 256 with 1024 and
1024 with 4096 clients: with more clients than a batch holds the next batch is queued while one
commits, so its apply overlaps the commit), ``--repeat`` times:

- wires the sequencer exactly as ``abyssal.runtime.exchange`` does, with the packaged config's
  intake bound and snapshot interval: a ``SqliteStore`` (WAL, ``synchronous=FULL``: a command is
  acknowledged only after its batch is on disk) in a fresh directory under ``/tmp`` (``--tmp``),
  ``recover``, ``Projector``, ``Sequencer`` and its batch writer (the config's: a child process
  that commits, adapters/sqlite_writer.py; ``--batch-writer thread`` for the writer thread), under uvloop;
- funds two accounts with ``Deposit`` commands (a buyer and a seller, so self-trade prevention never fires),
  then settles the heap as the exchange does once it has recovered (``runtime/heap.settle_heap``:
  the state frozen out of the cyclic GC, young collections every 50,000 allocations, not 700);
- runs the clients, each awaiting ``seq.execute(PlaceOrder(...))`` in a loop for ``--seconds``: resting
  limit buys and sells around a drifting mid price plus marketable IOC orders that trade against them
  (``OrderMix`` in order_mix.py, also used by ``http_bench.py``), so the book, trades, fills, ledger
  and balances grow as they would in production. The commands are made before the clock starts
  (as ``http_bench.py`` signs its requests in advance), so drawing them costs the event loop
  nothing during the run; each client takes the next one;
- prints commands/s, ack latency percentiles (from the call to ``execute`` to its return: queueing,
  engine apply, projection and the durable commit), the mean batch, and where a batch's time goes
  (apply on the event loop, commit in the batch writer);
- stops the sequencer as the server does (graceful shutdown, which may write a snapshot) and asserts
  the end state: every acknowledged order is in ``orders``, the logs hold every sequenced command,
  the ledger audit is empty, open rows equal the engine's live orders, replaying the whole log from
  genesis reproduces every event and the live state hash, and ``recover`` reaches the same hash.

The machine line shows load average and CPU pressure: other work only slows a row, so the goal is
judged on each row's best pass. The disk line shows fdatasync latency, which sets the one-commit-
per-command baseline, so the group-commit ratio depends on the disk as much as on the code.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import structlog
import uvloop
from end_state import check_end_state
from machine import FSYNC_PROBES, bench_config, contention, fdatasync_ms, fs_type, machine_lines
from order_mix import (
    CROSSING_LOTS_CHOICES,
    CROSSING_OFFSET_TICKS,
    CROSSING_SHARE_PPM,
    DRIFT_SHARE_PPM,
    MID_PRICE_TICKS,
    PAIR,
    RESTING_LOTS_CHOICES,
    RESTING_OFFSET_TICKS_MAX,
    SEED,
    Order,
    OrderMix,
    place_command,
)
from percentile import percentile
from sequencer_run import (
    BUYER_ACCOUNT,
    FUNDING_USD,
    FUNDING_XBT,
    SELLER_ACCOUNT,
    LiveState,
    RunResult,
    TimedSequencer,
    TimedStore,
    run_row,
)

# what this script defined before it was split: other scripts import these names from here
__all__ = [
    "BUYER_ACCOUNT", "CROSSING_LOTS_CHOICES", "CROSSING_OFFSET_TICKS", "CROSSING_SHARE_PPM",
    "DRIFT_SHARE_PPM", "FSYNC_PROBES", "FUNDING_USD", "FUNDING_XBT", "GOAL_RATIO", "MID_PRICE_TICKS",
    "PAIR", "REPEAT_DEFAULT", "RESTING_LOTS_CHOICES", "RESTING_OFFSET_TICKS_MAX", "RUNS_DEFAULT",
    "SECONDS_DEFAULT", "SEED", "SELLER_ACCOUNT", "LiveState", "Order", "OrderMix", "RunResult",
    "TimedSequencer", "TimedStore", "check_end_state", "contention", "fdatasync_ms", "machine_lines",
    "main", "percentile", "place_command",
]  # fmt: skip

# (batch_commands_max, concurrent clients): the four limits at 256 clients, then 1024 at 1024 clients,
# because with 256 commands in flight no batch can hold more than 256; then more clients than a batch
# holds (256:1024, 1024:4096), the only rows where the next batch is queued while one commits, so
# its apply can overlap the commit as it does under a real load
RUNS_DEFAULT = "1:256,16:256,256:256,1024:256,1024:1024,256:1024,1024:4096"
SECONDS_DEFAULT = 4.0
REPEAT_DEFAULT = 2
GOAL_RATIO = 20  # group commit at least 20 times one commit per command


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[tuple[int, ...]]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", default=RUNS_DEFAULT, help="comma-separated batch_commands_max:clients")
    ap.add_argument("--seconds", type=float, default=SECONDS_DEFAULT, help="per row")
    ap.add_argument("--repeat", type=int, default=REPEAT_DEFAULT, help="passes over the rows (best is used)")
    ap.add_argument("--tmp", default=None, help="parent directory for the databases (default: /tmp)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    ap.add_argument("--batch-writer", choices=("process", "thread"), default=None,
                    help="where batches commit (default: the config's, as `abyssal serve`)")  # fmt: skip
    args = ap.parse_args(argv)
    runs = [tuple(int(v) for v in r.split(":")) for r in args.runs.split(",")]
    assert all(len(r) == 2 and r[0] > 0 and r[1] > 0 for r in runs), "runs: limit:clients,..."
    return args, runs


def _print_header(root: Path, args: argparse.Namespace) -> None:
    print("# Abyssal sequencer benchmark (in-process, SQLite WAL, synchronous=FULL)")
    for line in machine_lines():
        print(line)
    sync_p50, sync_p99 = fdatasync_ms(root)
    print(f"databases under {root} ({fs_type(root)}; fdatasync of a 4 KiB overwrite: p50 {sync_p50:.2f} ms, "
          f"p99 {sync_p99:.2f} ms); {args.seconds:g} s per row, {args.repeat} passes; "
          f"workload: OrderMix seed {SEED}; batch writer: {args.writer}")  # fmt: skip
    print()
    print("| batch_commands_max | clients | commands/s | ack p50 ms | ack p99 ms | ack p99.9 ms | mean batch "
          "| commit ms/batch | apply µs/cmd | commit µs/cmd |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")


def _print_summary(results: list[RunResult], repeat: int) -> bool:
    """The notes, each row's best pass and the group-commit goal; returns whether the goal was missed."""
    print()
    print("apply = engine apply + encoding + projection on the event loop; commit = the batch writer's")
    print("statements and COMMIT (with its fsync); batch N+1 is applied while batch N commits.")
    print("End state checked after every row (after the graceful shutdown): each acknowledged order is in")
    print("`orders`, the command and event logs hold every sequenced command, ledger audit == [], open rows")
    print("equal the engine's live orders, replaying the whole log from genesis reproduces every event and")
    print("the live engine's state hash, and recover() (the restart path) reaches the same state hash.")
    # Other load on the machine only ever slows a row down, so each configuration's best pass is
    # the better estimate of what the code can do; every pass is printed above.
    best_of: dict[tuple[int, int], RunResult] = {}
    for r in results:
        key = (r.batch_limit, r.clients)
        if key not in best_of or r.per_s > best_of[key].per_s:
            best_of[key] = r
    if repeat > 1:
        print(f"best of {repeat} passes: " + "; ".join(
            f"{limit}/{clients}: {r.per_s:,.0f}/s" for (limit, clients), r in best_of.items()))  # fmt: skip
    baseline = [r for (limit, _), r in best_of.items() if limit == 1]
    missed = False
    if baseline:
        base = max(r.per_s for r in baseline)
        best = max(best_of.values(), key=lambda r: r.per_s)
        ratio = best.per_s / base
        missed = ratio < GOAL_RATIO
        print(f"group commit: best {best.per_s:,.0f}/s (batch_commands_max {best.batch_limit}, "
              f"{best.clients} clients) = {ratio:.1f}x one commit per command ({base:,.0f}/s); "
              f"goal >= {GOAL_RATIO}x: {'MISSED' if missed else 'MET'}")  # fmt: skip
    return missed


def main(argv: list[str] | None = None) -> int:
    args, runs = _parse(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    config = bench_config()  # the packaged defaults, the open-orders limit raised for load
    instruments = config.instruments
    root = Path(tempfile.mkdtemp(prefix="abyssal-seqbench-", dir=args.tmp))
    args.writer = args.batch_writer or config.engine.batch_writer
    results: list[RunResult] = []
    try:
        _print_header(root, args)
        for rnd, (limit, clients) in itertools.product(range(1, args.repeat + 1), runs):
            db = root / f"r{rnd}-b{limit}-c{clients}" / "abyssal.db"
            db.parent.mkdir()
            result, live = uvloop.run(run_row(db, config, limit, clients, args.seconds, args.writer))
            results.append(result)
            print(result.row(), flush=True)
            assert result.rejected == 0, f"{result.rejected} orders were rejected: the accounts are funded"
            assert len(live.accepted) == result.commands
            check_end_state(db, instruments, live)
            shutil.rmtree(db.parent)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    missed = _print_summary(results, args.repeat)
    print(f"other load at the end: {contention()}")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
