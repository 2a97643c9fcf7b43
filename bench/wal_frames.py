"""WAL frames per commit, by table and index: the pages each batch commit writes (and fsyncs).

Run from the repo root with the project venv (a few seconds)::

    python bench/wal_frames.py                   # batches of 1, 8 and 64 commands
    python bench/wal_frames.py --batches 1,256 --commands 4096

The sequencer is wired as ``sequencer_bench.py`` wires it (the real ``SqliteStore``, ``Projector``
and ``Sequencer``), automatic checkpoints off, so the WAL keeps every frame of the measured
commits. After a warm-up of ``--warmup`` ``OrderMix`` orders one at a time, the WAL is truncated
and ``--commands`` more are sent in groups of the batch size; then each frame header's page number
is mapped to its table or index with SQLite's ``dbstat`` table. Every frame is a 4 KiB page
written with its header (two ``pwrite`` calls) before the commit's ``fdatasync``; on this VM that
is about 7.5 µs of kernel CPU per frame (``bench/README_http.md``, "Fewer pages per commit").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sqlite3
import struct
import tempfile
from pathlib import Path

import uvloop
from machine import bench_config
from order_mix import PAIR, OrderMix, place_command
from sequencer_run import BUYER_ACCOUNT, SELLER_ACCOUNT, fund_accounts, wire_sequencer

from abyssal.adapters import sqlite as sqlite_adapter
from abyssal.core.messages import Side

WAL_HEADER = 32
FRAME_HEADER = 24
PAGE = 4096


def _without_checkpoints() -> None:
    """Every SQLite connection this process opens from now on keeps the WAL's frames."""
    connect = sqlite_adapter.connect

    def connect_without_checkpoints(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    sqlite_adapter.connect = connect_without_checkpoints


def frames_by_object(db: Path) -> collections.Counter[str]:
    """Frames in the WAL, counted by the table or index their page belongs to."""
    raw = (db.parent / (db.name + "-wal")).read_bytes()
    pages: collections.Counter[int] = collections.Counter()
    for off in range(WAL_HEADER, len(raw) - FRAME_HEADER + 1, FRAME_HEADER + PAGE):
        pages[struct.unpack(">I", raw[off : off + 4])[0]] += 1
    with sqlite3.connect(db) as ro:
        names = {int(pageno): str(name) for name, pageno in ro.execute("SELECT name, pageno FROM dbstat")}
    out: collections.Counter[str] = collections.Counter()
    for page, count in pages.items():
        out[names.get(page, "(new or free page)")] += count
    return out


async def measure(batch: int, commands: int, warmup: int) -> tuple[int, collections.Counter[str]]:
    """(commits, frames by object) of ``commands`` orders sent ``batch`` at a time."""
    directory = Path(tempfile.mkdtemp(prefix="abyssal-walframes-"))
    config = bench_config()  # the packaged defaults, the open-orders limit raised for load
    # the writer thread: its connection is this process's, opened without automatic checkpoints
    store, seq = wire_sequencer(directory / "abyssal.db", config, batch, batch_writer="thread")
    seq.start()
    await fund_accounts(seq, config.instruments)
    pair = config.instruments.pair(PAIR)
    assert pair is not None
    mix = OrderMix()

    async def one() -> None:
        order = mix.next()
        account = BUYER_ACCOUNT if order.side == Side.buy else SELLER_ACCOUNT
        await seq.execute(place_command(order, pair, account))

    for _ in range(warmup):
        await one()
    busy, _, _ = store.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "the WAL could not be reset"
    commits0 = seq.batches_committed
    for _ in range(0, commands, batch):
        await asyncio.gather(*(one() for _ in range(batch)))
    commits = seq.batches_committed - commits0
    frames = frames_by_object(directory / "abyssal.db")
    await seq.stop(snapshot=False)
    store.close()
    return commits, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,64", help="batch sizes, comma-separated")
    ap.add_argument("--commands", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2000)
    args = ap.parse_args()
    _without_checkpoints()
    print(f"# WAL frames per commit (SQLite {sqlite3.sqlite_version}, OrderMix, {args.commands:,} commands)")
    for batch in (int(b) for b in args.batches.split(",")):
        commits, frames = uvloop.run(measure(batch, args.commands, args.warmup))
        total = sum(frames.values())
        print(f"batch {batch}: {commits} commits, {total / commits:.1f} frames per commit, "
              f"{total / args.commands:.2f} per command")  # fmt: skip
        print("   " + ", ".join(f"{name} {n / commits:.2f}" for name, n in frames.most_common()))


if __name__ == "__main__":
    main()
