"""Snapshots in a forked child: the state at their seq, never a stall, failures contained."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from abyssal.adapters.sqlite import SqliteStore
from abyssal.config import load_config
from abyssal.core import snapshot as snapshots
from abyssal.core.messages import Deposit, OrderType, PlaceOrder, Side
from abyssal.runtime import snapshot_fork
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import recover, verify_from_genesis
from abyssal.runtime.sequencer import Sequencer

pytestmark = pytest.mark.skipif(not snapshot_fork.fork_available(), reason="needs os.fork (POSIX)")

CONFIG = load_config(None)
XBTUSD = CONFIG.instruments.pair("XBTUSD")
USD = CONFIG.instruments.asset("ZUSD")
XBT = CONFIG.instruments.asset("XXBT")
assert XBTUSD is not None and USD is not None and XBT is not None


def wire(db: Path, every: int) -> tuple[SqliteStore, Sequencer]:
    store = SqliteStore(db)
    recovered = recover(store, CONFIG.instruments)
    seq = Sequencer(
        recovered.engine,
        store,
        Projector(CONFIG.instruments, store.load_balances()),
        intake_queue_max=10_000,
        batch_commands_max=32,
        snapshot_every_commands=every,
        next_seq=recovered.next_seq,
        last_snapshot_seq=recovered.last_snapshot_seq,
    )
    return store, seq


FUNDING = [
    Deposit(ts_ns=0, account=a, asset=asset.index, amount_minor=10**14, ref=f"fund-{a}-{asset.id}")
    for a in (1, 2)
    for asset in (USD, XBT)
]


def commands(n: int, seed: int) -> list[Any]:
    """Resting and crossing limit orders from two accounts: a state that keeps changing."""
    assert XBTUSD is not None
    out: list[Any] = []
    r = random.Random(seed)
    for _ in range(n):
        side = r.choice((Side.buy, Side.sell))
        out.append(
            PlaceOrder(
                ts_ns=0,
                account=1 if side == Side.buy else 2,
                pair=XBTUSD.index,
                side=side,
                ordertype=OrderType.limit,
                volume_lots=r.randint(5_000, 500_000),
                price_ticks=300_000 + r.randint(-200, 200),
            )
        )
    return out


async def fund(seq: Sequencer) -> None:
    for c in FUNDING:
        await seq.execute(c)


async def drive(seq: Sequencer, cmds: list[Any], clients: int = 16) -> None:
    """Many clients at once, so batches keep coming while a child serialises."""
    it = iter(cmds)

    async def client() -> None:
        for c in it:
            await seq.execute(c)

    await asyncio.gather(*(client() for _ in range(clients)))


def snapshot_seqs(store: SqliteStore) -> list[int]:
    return [int(r[0]) for r in store.conn().execute("SELECT seq FROM snapshots ORDER BY seq")]


def test_forked_snapshots_hold_the_state_at_their_seq_while_the_engine_moves_on(tmp_path: Path) -> None:
    store, seq = wire(tmp_path / "a.db", every=300)

    async def main() -> int:
        seq.start()
        await fund(seq)
        await drive(seq, commands(3_000, seed=1))
        while seq.snapshots.busy:  # the last child may still be serialising
            await asyncio.sleep(0.01)
        await seq.stop(snapshot=False)
        return seq.snapshots.written

    written = asyncio.run(main())
    taken = snapshot_seqs(store)
    assert written >= 3 and len(taken) == written, (written, taken)
    assert taken[0] < seq.next_seq - 1, "taken mid-run"
    # every stored hash equals the hash of the log replayed from genesis to exactly that seq
    replayed, final_hash = verify_from_genesis(store, CONFIG.instruments)
    assert replayed == seq.next_seq - 1 and final_hash == snapshots.state_hash(seq.engine)
    # and a restart from the newest one reaches the live state
    recovered = recover(store, CONFIG.instruments)
    assert recovered.last_snapshot_seq == taken[-1]
    assert snapshots.state_hash(recovered.engine) == final_hash
    store.close()


def test_the_loop_keeps_applying_while_a_slow_child_serialises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that needs 1.5 s: commands submitted meanwhile are acknowledged at once."""
    real = snapshots.snapshot

    def slow(engine: Any) -> bytes:
        time.sleep(1.5)  # in the child only
        return real(engine)

    monkeypatch.setattr(snapshots, "snapshot", slow)
    store, seq = wire(tmp_path / "b.db", every=100)

    async def main() -> tuple[float, int]:
        seq.start()
        await fund(seq)
        cmds = commands(300, seed=2)
        await drive(seq, cmds[:100])  # the snapshot due at seq 100 starts
        assert seq.snapshots.busy
        t0 = time.perf_counter()
        await drive(seq, cmds[100:])
        elapsed = time.perf_counter() - t0
        while seq.snapshots.busy:
            await asyncio.sleep(0.01)
        await seq.stop(snapshot=False)
        return elapsed, seq.snapshots.written

    elapsed, written = asyncio.run(main())
    assert elapsed < 1.0, f"commands waited for the snapshot: {elapsed:.2f} s"
    taken = snapshot_seqs(store)
    assert written == 1 and len(taken) == 1 and 100 <= taken[0] <= 104, taken
    verify_from_genesis(store, CONFIG.instruments)
    store.close()


def test_a_failing_child_is_logged_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(engine: Any) -> bytes:
        raise snapshots.SnapshotError("engine state holds an integer beyond 64 bits")

    monkeypatch.setattr(snapshots, "snapshot", broken)
    store, seq = wire(tmp_path / "c.db", every=100)

    async def main() -> None:
        seq.start()
        await fund(seq)
        await drive(seq, commands(400, seed=3))
        while seq.snapshots.busy:
            await asyncio.sleep(0.01)
        assert not seq.failed, "a snapshot is not a storage fault: the exchange goes on"
        await seq.stop(snapshot=False)

    asyncio.run(main())
    assert seq.snapshots.failed >= 1 and seq.snapshots.written == 0
    assert snapshot_seqs(store) == []
    assert recover(store, CONFIG.instruments).next_seq == seq.next_seq
    store.close()


def test_shutdown_kills_a_running_child_and_writes_the_final_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "snapshot", lambda engine: time.sleep(60) or b"")
    store, seq = wire(tmp_path / "d.db", every=100)
    pids: list[int] = []

    async def main() -> float:
        seq.start()
        await fund(seq)
        await drive(seq, commands(200, seed=4))
        assert seq.snapshots.busy
        child = seq.snapshots._child
        assert child is not None
        pids.append(child.pid)
        monkeypatch.undo()  # the final snapshot (inline, in this process) is a real one
        t0 = time.perf_counter()
        await seq.stop()
        return time.perf_counter() - t0

    assert asyncio.run(main()) < 5.0
    with pytest.raises(ChildProcessError):  # killed and reaped: no zombie left
        os.waitpid(pids[0], os.WNOHANG)
    assert snapshot_seqs(store) == [seq.next_seq - 1]
    assert seq.snapshots.failed == 0, "an abandoned child is not a failure"
    verify_from_genesis(store, CONFIG.instruments)
    store.close()


def test_without_fork_the_snapshot_is_taken_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, seq = wire(tmp_path / "e.db", every=200)
    seq.snapshots.enabled = False

    async def main() -> None:
        seq.start()
        await fund(seq)
        await drive(seq, commands(1_000, seed=5))
        await seq.stop(snapshot=False)

    asyncio.run(main())
    assert seq.snapshots.written == 0
    assert len(snapshot_seqs(store)) >= 4
    verify_from_genesis(store, CONFIG.instruments)
    store.close()
