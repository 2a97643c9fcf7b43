"""A SQLite writer thread beside a busy Python thread: why batches commit in a process of their own.

Run from the repo root with the project venv::

    python bench/gil_rows.py                 # about 25 s
    python bench/gil_rows.py --switch-ms 0.5 # the same with a shorter GIL switch interval

A writer thread inserts ledger rows (the ``ledger`` table and indexes of the real schema) in
transactions of 1,000 rows, for ``--seconds``, in three ways:

- ``executemany``: a statement step per row, as ``SqliteStore.write_batch`` does;
- ``multi-row``: one ``INSERT ... VALUES (...), (...)`` per 100 rows;
- ``process``: the same ``executemany`` in a child process (no GIL shared with this one).

Each way runs alone, then beside a main thread that runs pure-Python work without pause (as the
event loop does while it applies the next batch and answers requests). It prints the writer's
rows/s and how much work the main thread got done. ``sqlite3`` lets the GIL go for each step and
must take it back afterwards; beside a busy thread each take-back waits up to the switch interval.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import machine_lines

SCHEMA = """
CREATE TABLE ledger (
    entry_no INTEGER PRIMARY KEY, seq INTEGER NOT NULL, idx INTEGER NOT NULL, leg INTEGER NOT NULL,
    account INTEGER NOT NULL, asset INTEGER NOT NULL, type TEXT NOT NULL, subtype TEXT NOT NULL,
    refid TEXT NOT NULL, ts_ns INTEGER NOT NULL, amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer'),
    fee INTEGER NOT NULL CHECK (typeof(fee) = 'integer' AND fee >= 0), balance INTEGER NOT NULL,
    UNIQUE (seq, idx, leg));
CREATE INDEX ledger_account ON ledger(account, ts_ns);
"""
COLUMNS = "seq, idx, leg, account, asset, type, subtype, refid, ts_ns, amount, fee, balance"
ROW = "(" + ",".join("?" * 12) + ")"
ROWS_PER_COMMIT = 1_000
ROWS_PER_STATEMENT = 100


def _rows(first: int) -> list[tuple[object, ...]]:
    return [
        (first + i // 5, 0, i % 5, 1001 + i % 3, i % 2, "trade", "", "TABCDE-FGHIJ-KLMNOP",
         10**18 + first + i, 12_345 * (1 if i % 2 else -1), 3, 10**12 + i)
        for i in range(ROWS_PER_COMMIT)
    ]  # fmt: skip


def write_for(db: Path, how: str, seconds: float) -> int:
    """Rows committed in ``seconds`` (WAL, synchronous=FULL, as the store)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    single = f"INSERT INTO ledger ({COLUMNS}) VALUES {ROW}"
    multi = f"INSERT INTO ledger ({COLUMNS}) VALUES {','.join([ROW] * ROWS_PER_STATEMENT)}"
    written = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        rows = _rows(written)
        conn.execute("BEGIN IMMEDIATE")
        if how == "multi-row":
            for k in range(0, len(rows), ROWS_PER_STATEMENT):
                conn.execute(multi, [v for row in rows[k : k + ROWS_PER_STATEMENT] for v in row])
        else:
            conn.executemany(single, rows)
        conn.execute("COMMIT")
        written += len(rows)
    conn.close()
    return written


def _child(db: str, seconds: float, out: multiprocessing.SimpleQueue) -> None:  # type: ignore[type-arg]
    out.put(write_for(Path(db), "executemany", seconds))


def busy_python(stop: threading.Event | float) -> int:
    """Pure-Python work until ``stop`` (an event, or a perf_counter deadline); returns rounds done."""
    rounds = 0
    scratch: list[tuple[int, int]] = []
    while not (stop.is_set() if isinstance(stop, threading.Event) else time.perf_counter() >= stop):
        for i in range(1_000):
            scratch.append((i, i * 2))
        scratch.clear()
        rounds += 1
    return rounds


def run(how: str, busy: bool, seconds: float, directory: Path) -> tuple[float, int]:
    db = directory / f"{how}-{busy}.db"
    written: list[int] = []
    start = time.perf_counter()
    if how == "process":
        out: multiprocessing.SimpleQueue = multiprocessing.get_context("spawn").SimpleQueue()  # type: ignore[type-arg]
        proc = multiprocessing.get_context("spawn").Process(target=_child, args=(str(db), seconds, out))
        proc.start()
        start = time.perf_counter()
        rounds = busy_python(start + seconds) if busy else 0
        proc.join()
        written.append(out.get())
    else:
        thread = threading.Thread(target=lambda: written.append(write_for(db, how, seconds)))
        thread.start()
        rounds = busy_python(start + seconds) if busy else 0
        thread.join()
    return written[0] / (time.perf_counter() - start), rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per run")
    ap.add_argument("--switch-ms", type=float, default=None, help="sys.setswitchinterval, milliseconds")
    args = ap.parse_args()
    if args.switch_ms is not None:
        sys.setswitchinterval(args.switch_ms / 1000)
    print("# SQLite writer beside a busy Python thread")
    for line in machine_lines():
        print(line)
    print(f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms; {args.seconds:g} s per run; "
          f"{ROWS_PER_COMMIT:,} rows per transaction; pid {os.getpid()}")  # fmt: skip
    alone_rounds = busy_python(time.perf_counter() + args.seconds)
    print(f"main thread alone: {alone_rounds / args.seconds:,.0f} rounds/s")
    print()
    print("| writer | main thread | writer rows/s | main rounds/s |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="abyssal-gilrows-") as tmp:
        for how in ("executemany", "multi-row", "process"):
            for busy in (False, True):
                rate, rounds = run(how, busy, args.seconds, Path(tmp))
                main_cell = f"{rounds / args.seconds:,.0f}" if busy else "-"
                print(f"| {how} | {'busy' if busy else 'idle'} | {rate:,.0f} | {main_cell} |", flush=True)


if __name__ == "__main__":
    main()
