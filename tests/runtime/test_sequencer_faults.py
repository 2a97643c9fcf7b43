"""A command the log cannot hold is refused alone; a fault while applying stops the sequencer loudly.

Neither may leave callers waiting for an answer that never comes, nor the engine holding state
the command log does not.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from abyssal.adapters.sqlite import SqliteStore
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import Deposit, Deposited, Rejected
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import recover, verify_from_genesis
from abyssal.runtime.sequencer import Sequencer, Unavailable, Unjournalable
from abyssal.runtime.writer_thread import BatchWriter

INS = load_config(None).instruments
USD = INS.asset("ZUSD")
assert USD is not None
ANSWER_TIMEOUT_S = 10.0  # a sequencer that died silently would leave these waits hanging


def wire(db: Path, batch_writer: BatchWriter | None = None) -> Sequencer:
    store = SqliteStore(db)
    recovered = recover(store, INS)
    return Sequencer(
        recovered.engine,
        store,
        Projector(INS, store.load_balances()),
        intake_queue_max=100,
        batch_commands_max=8,
        snapshot_every_commands=0,
        next_seq=recovered.next_seq,
        last_snapshot_seq=recovered.last_snapshot_seq,
        batch_writer=batch_writer,
    )


def deposit(account: int, amount: int, ref: str) -> Deposit:
    assert USD is not None
    return Deposit(ts_ns=0, account=account, asset=USD.index, amount_minor=amount, ref=ref)


def test_a_command_beyond_64_bits_is_refused_alone_and_the_rest_are_sequenced(tmp_path: Path) -> None:
    async def main() -> tuple[list[Any], Sequencer]:
        seq = wire(tmp_path / "db")
        seq.start()
        # one batch: a good deposit, one the log cannot encode, another good one
        futures = [
            seq.submit(deposit(1, 100, "a")),
            seq.submit(deposit(1, 2**64, "huge")),
            seq.submit(deposit(1, 5, "b")),
        ]
        outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), ANSWER_TIMEOUT_S)
        later = await asyncio.wait_for(seq.execute(deposit(2, 7, "c")), ANSWER_TIMEOUT_S)
        await seq.stop(snapshot=False)
        return [*outcomes, later], seq

    outcomes, seq = asyncio.run(main())
    assert isinstance(outcomes[0][0], Deposited) and isinstance(outcomes[2][0], Deposited)
    assert isinstance(outcomes[1], Unjournalable)
    assert isinstance(outcomes[3][0], Deposited)
    assert not seq.failed
    assert seq.committed_seq == 3  # the refused command took no sequence number
    assert seq.engine.s.accounts[1].bal[USD.index].total == 105
    verify_from_genesis(SqliteStore(tmp_path / "db"), INS)  # the log replays to the same state


def test_an_asset_total_beyond_64_bits_is_rejected_by_the_engine(tmp_path: Path) -> None:
    """Over all accounts (the outside world's ledger account holds minus that sum)."""

    async def main() -> list[Any]:
        seq = wire(tmp_path / "db")
        seq.start()
        first = await seq.execute(deposit(1, 2**63 - 10, "a"))
        second = await seq.execute(deposit(2, 10, "b"))
        fits = await seq.execute(deposit(2, 9, "c"))
        await seq.stop(snapshot=False)
        return [first, second, fits, seq.failed]

    first, second, fits, failed = asyncio.run(main())
    assert isinstance(first[0], Deposited) and isinstance(fits[0], Deposited)
    assert isinstance(second[0], Rejected)
    assert not failed  # every balance and ledger sum was written
    verify_from_genesis(SqliteStore(tmp_path / "db"), INS)


class FaultyEngine:
    """The engine, failing on the deposit named "boom" (a compiled Engine's methods cannot be patched)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def apply(self, command: Any) -> Any:
        if getattr(command, "ref", "") == "boom":
            raise RuntimeError("engine fault")
        return self._engine.apply(command)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_a_fault_while_applying_fails_the_batch_and_every_later_command(tmp_path: Path) -> None:
    async def main() -> tuple[list[Any], Sequencer]:
        seq = wire(tmp_path / "db")
        seq.start()
        done = await seq.execute(deposit(1, 100, "a"))
        seq.engine = FaultyEngine(seq.engine)  # type: ignore[assignment]
        failed = await asyncio.wait_for(
            asyncio.gather(seq.execute(deposit(1, 1, "boom")), return_exceptions=True), ANSWER_TIMEOUT_S
        )
        with pytest.raises(Unavailable):
            await asyncio.wait_for(seq.execute(deposit(1, 1, "after")), ANSWER_TIMEOUT_S)
        await seq.stop(snapshot=False)
        return [done, *failed], seq

    outcomes, seq = asyncio.run(main())
    assert isinstance(outcomes[0][0], Deposited)
    assert isinstance(outcomes[1], Unavailable)
    assert seq.failed and seq.committed_seq == 1


def test_the_scaled_out_gateway_refuses_an_unencodable_command_before_logging_it() -> None:
    from abyssal.cluster.gateway_log import LogSequencer

    class NoProducer:
        async def send(self, *_: Any, **__: Any) -> None:
            raise AssertionError("a command the log cannot hold was sent to it")

    gateway = LogSequencer(
        Engine(INS),
        Projector(INS, {}),
        database="unused",
        bus="unused",
        shard=0,
        applied_seq=0,
        events_offset=0,
        intake_queue_max=10,
    )
    gateway.producer = NoProducer()  # type: ignore[assignment]
    with pytest.raises(Unjournalable):
        asyncio.run(gateway.execute(deposit(1, 2**64, "huge")))
    assert gateway._pending == {}  # nothing waits for an answer
