"""Sequencer run: one row of sequencer_bench.py, the real sequencer wired as the server wires it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from order_mix import PAIR, OrderMix, place_command
from percentile import percentile

from abyssal.adapters.sqlite import SqliteStore
from abyssal.adapters.sqlite_writer import ProcessBatchWriter
from abyssal.config import Config
from abyssal.core.instruments import Instruments
from abyssal.core.messages import Deposit, Deposited, OrderAccepted, Rejected, Side
from abyssal.core.snapshot import state_hash
from abyssal.runtime.heap import settle_heap
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import recover
from abyssal.runtime.sequencer import Sequencer

FUNDING_USD = "10000000000"  # per account: far above what any run can hold or spend
FUNDING_XBT = "1000000"
BUYER_ACCOUNT = 1  # account 0 is the house (fees)
SELLER_ACCOUNT = 2
# commands made per second of a row, before it starts: above any rate measured here (about 40k/s),
# so the clients run out of time, not of commands (if they do run out, the row ends early and says so)
STREAM_PER_S = 100_000


@dataclass(slots=True)
class RunResult:
    batch_limit: int
    clients: int
    commands: int
    seconds: float
    latencies_ms: list[float]
    batches: int
    commit_ms_mean: float
    apply_s: float  # main thread: engine apply, encode, project (whole run)
    commit_s: float  # batch writer (process or thread): SQL statements and COMMIT with its fsync (whole run)
    rejected: int

    @property
    def per_s(self) -> float:
        return self.commands / self.seconds

    def row(self) -> str:
        lat = self.latencies_ms
        mean_batch = self.commands / self.batches if self.batches else 0.0
        cells = [
            str(self.batch_limit), str(self.clients), f"{self.per_s:,.0f}", f"{percentile(lat, 50):.2f}",
            f"{percentile(lat, 99):.2f}", f"{percentile(lat, 99.9):.2f}", f"{mean_batch:.1f}",
            f"{self.commit_ms_mean:.2f}", f"{self.apply_s / self.commands * 1e6:.1f}",
            f"{self.commit_s / self.commands * 1e6:.1f}",
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"


class TimedStore(SqliteStore):
    """The real adapter; also times each batch commit made in this process (the writer thread's).

    With the batch writer process the commits happen in the child: ``TimedWriter`` adds each one's
    window, as the child reports it, to the same two counters."""

    commit_s_total = 0.0
    commits = 0

    def write_batch(self, b):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        super().write_batch(b)
        self.commit_s_total += time.perf_counter() - t0
        self.commits += 1


class TimedWriter(ProcessBatchWriter):
    """The real batch writer process; adds each commit's window to the store's counters."""

    def __init__(self, store: TimedStore) -> None:
        super().__init__(store.path, store.synchronous)
        self.timed = store

    def write(self, loop, record):  # type: ignore[no-untyped-def]
        future = super().write(loop, record)
        future.add_done_callback(self._count)
        return future

    def _count(self, future):  # type: ignore[no-untyped-def]
        if not future.cancelled() and future.exception() is None:
            start_ns, end_ns = future.result()
            self.timed.commit_s_total += (end_ns - start_ns) / 1e9
            self.timed.commits += 1


class TimedSequencer(Sequencer):
    """The real sequencer; also times ``_apply`` (engine apply, encoding and projection of a batch)."""

    apply_s_total = 0.0

    def _apply(self, items):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = super()._apply(items)
        self.apply_s_total += time.perf_counter() - t0
        return out


def wire_sequencer(
    db: Path, config: Config, batch_limit: int, batch_writer: str | None = None
) -> tuple[TimedStore, TimedSequencer]:
    """The sequencer as the exchange wires it; ``batch_writer`` overrides the config's (process, thread)."""
    instruments = config.instruments
    store = TimedStore(db)  # synchronous=FULL is the adapter default
    assert store.synchronous == "FULL"
    assert store.conn().execute("PRAGMA synchronous").fetchone()[0] == 2, "FULL is 2"
    recovered = recover(store, instruments)
    assert recovered.next_seq == 1, "a fresh directory"
    writer = None
    if (batch_writer or config.engine.batch_writer) == "process":
        writer = TimedWriter(store)
        writer.start()
    seq = TimedSequencer(
        recovered.engine,
        store,
        Projector(instruments, store.load_balances()),
        intake_queue_max=config.engine.intake_queue_max,
        batch_commands_max=batch_limit,
        snapshot_every_commands=config.engine.snapshot_every_commands,
        next_seq=recovered.next_seq,
        last_snapshot_seq=recovered.last_snapshot_seq,
        batch_writer=writer,
    )
    return store, seq


async def fund_accounts(seq: Sequencer, instruments: Instruments) -> None:
    usd, xbt = instruments.asset("ZUSD"), instruments.asset("XXBT")
    assert usd is not None and xbt is not None
    for account in (BUYER_ACCOUNT, SELLER_ACCOUNT):
        for asset, amount in ((usd, FUNDING_USD), (xbt, FUNDING_XBT)):
            minor = asset.to_minor(Decimal(amount))
            events = await seq.execute(
                Deposit(ts_ns=time.time_ns(), account=account, asset=asset.index, amount_minor=minor,
                        ref=f"bench-{account}-{asset.id}")
            )  # fmt: skip
            assert any(isinstance(e, Deposited) for e in events), events


@dataclass(slots=True)
class LiveState:
    """What the running sequencer ended with, to compare against the disk after shutdown."""

    accepted: list[int]  # order numbers acknowledged to the clients
    sequenced: int  # last sequence number
    resting: int  # live orders in the engine
    state_hash: str


async def run_row(
    db: Path, config: Config, batch_limit: int, clients: int, seconds: float, batch_writer: str | None = None
) -> tuple[RunResult, LiveState]:
    instruments = config.instruments
    store, seq = wire_sequencer(db, config, batch_limit, batch_writer)
    seq.start()
    await fund_accounts(seq, instruments)
    pair = instruments.pair(PAIR)
    assert pair is not None
    # the clients' orders, made before the clock starts (and before the heap is settled, so they
    # are frozen with the rest): drawing an order from OrderMix and building its PlaceOrder cost
    # about 3 µs of the event loop the sequencer runs on, the load generator's work inside the
    # measured figure. Each client takes the next command, sends it and awaits its acknowledgement.
    mix = OrderMix()
    stream = [
        place_command(order, pair, BUYER_ACCOUNT if order.side == Side.buy else SELLER_ACCOUNT)
        for order in (mix.next() for _ in range(int(seconds * STREAM_PER_S)))
    ]
    settle_heap()  # as the exchange does once it has recovered
    latencies_ms: list[float] = []
    accepted: list[int] = []
    rejected = 0
    taken = 0
    batches0, commits0, commit_s0 = seq.batches_committed, store.commits, store.commit_s_total
    apply_s0 = seq.apply_s_total
    start = time.perf_counter()
    deadline = start + seconds

    async def client() -> None:
        nonlocal rejected, taken
        while time.perf_counter() < deadline and taken < len(stream):
            cmd = stream[taken]
            taken += 1
            t0 = time.perf_counter()
            events = await seq.execute(cmd)
            latencies_ms.append((time.perf_counter() - t0) * 1000)
            ok = next((e for e in events if isinstance(e, OrderAccepted)), None)
            if ok is None:
                rejected += 1
                assert any(isinstance(e, Rejected) for e in events), events
            else:
                accepted.append(ok.order_no)

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    if taken >= len(stream):
        print(f"note: the clients sent all {len(stream):,} commands made for this row in {elapsed:.2f} s")
    commits = store.commits - commits0
    result = RunResult(
        batch_limit=batch_limit,
        clients=clients,
        commands=len(latencies_ms),
        seconds=elapsed,
        latencies_ms=sorted(latencies_ms),
        batches=seq.batches_committed - batches0,
        commit_ms_mean=(store.commit_s_total - commit_s0) / commits * 1000 if commits else 0.0,
        apply_s=seq.apply_s_total - apply_s0,
        commit_s=store.commit_s_total - commit_s0,
        rejected=rejected,
    )
    live = LiveState(accepted, seq.next_seq - 1, len(seq.engine.s.orders), state_hash(seq.engine))
    await seq.stop()  # the server's graceful shutdown (it may write a snapshot)
    store.close()
    return result, live
