"""The batch write of orders: an amend that crosses the book commits, and the rows do not depend on
how commands were grouped into batches (``write_rows`` coalesces an order's writes within a batch)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from tests.core.test_snapshot import stream

from abyssal.adapters import sqlite_reads
from abyssal.adapters.sqlite import SqliteStore, write_rows
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    AmendOrder,
    Deposit,
    Fill,
    OrderAmended,
    OrderType,
    PlaceOrder,
    Side,
)
from abyssal.runtime.projector import Projector, Rows
from abyssal.runtime.recovery import recover
from abyssal.runtime.sequencer import Sequencer

INS = load_config(None).instruments
PAIR = INS.pair("XBTUSD")
USD, XBT = INS.asset("ZUSD"), INS.asset("XXBT")
assert PAIR is not None and USD is not None and XBT is not None
TIMEOUT_S = 10.0
TABLES = ("orders", "trades", "fills", "ledger", "balances")


def _limit(account: int, side: Side, price_ticks: int) -> PlaceOrder:
    assert PAIR is not None
    return PlaceOrder(
        ts_ns=0, account=account, pair=PAIR.index, side=int(side), ordertype=int(OrderType.limit),
        volume_lots=1_000_000, price_ticks=price_ticks, price_text=f"{price_ticks // 10}.{price_ticks % 10}",
    )  # fmt: skip


def test_an_amend_that_crosses_the_book_commits_and_the_exchange_goes_on(tmp_path: Path) -> None:
    """The amend raises a resting buy's price through the best ask: one command, an amend (more
    hold) then a fill that spends it. Writing the fill before the amend took the row's hold below
    zero, the schema refused the batch, and the sequencer stopped."""

    async def main() -> tuple[list[object], Sequencer]:
        store = SqliteStore(tmp_path / "db")
        recovered = recover(store, INS)
        seq = Sequencer(
            recovered.engine, store, Projector(INS, {}), intake_queue_max=100, batch_commands_max=8,
            snapshot_every_commands=0, next_seq=1, last_snapshot_seq=0,
        )  # fmt: skip
        seq.start()
        assert USD is not None and XBT is not None
        for account in (1, 2):
            await seq.execute(
                Deposit(ts_ns=0, account=account, asset=USD.index, amount_minor=10**9, ref=f"u{account}")
            )
            await seq.execute(
                Deposit(ts_ns=0, account=account, asset=XBT.index, amount_minor=10**9, ref=f"x{account}")
            )
        await seq.execute(_limit(2, Side.sell, 300_010))
        bought = await seq.execute(_limit(1, Side.buy, 299_900))
        buy_no = bought[0].order_no  # type: ignore[union-attr]
        events = await asyncio.wait_for(
            seq.execute(AmendOrder(ts_ns=0, account=1, order_no=buy_no, cl_ord_id="", order_qty_lots=-1,
                                   display_lots=-1, limit_price_ticks=300_010, trigger_price_ticks=-1,
                                   post_only=False)),
            TIMEOUT_S,
        )  # fmt: skip
        after = await seq.execute(Deposit(ts_ns=0, account=1, asset=USD.index, amount_minor=1, ref="after"))
        await seq.stop(snapshot=False)
        return [*events, *after], seq

    events, seq = asyncio.run(main())
    assert [type(e) for e in events[:2]] == [OrderAmended, Fill]
    assert not seq.failed
    store = SqliteStore(tmp_path / "db")
    row = (
        store.conn()
        .execute("SELECT status, filled_lots, hold_minor FROM orders ORDER BY order_no")
        .fetchall()
    )
    assert [tuple(r) for r in row] == [(2, 1_000_000, 0), (2, 1_000_000, 0)]  # both filled, no hold left
    assert sqlite_reads.audit(store) == []


def _tables(
    tmp: Path, name: str, events: list[list[object]], batch: int
) -> dict[str, list[tuple[object, ...]]]:
    store = SqliteStore(tmp / f"{name}.db")
    projector = Projector(INS, {})
    for first in range(0, len(events), batch):
        rows = Rows()
        for seq, batch_events in enumerate(events[first : first + batch], start=first + 1):
            projector.project(seq, batch_events, rows)  # type: ignore[arg-type]
        with store.transaction() as c:
            write_rows(c, rows)
    conn = sqlite3.connect(tmp / f"{name}.db")
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in TABLES}
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rows_do_not_depend_on_how_commands_were_batched(tmp_path: Path, seed: int) -> None:
    commands, _, _ = stream(seed, 1_500)  # every command kind, aimed at live orders
    engine = Engine(INS)
    events: list[list[object]] = [list(engine.apply(c)) for c in commands]
    assert sum(isinstance(e, OrderAmended) for batch in events for e in batch) > 5
    one_by_one = _tables(tmp_path, "one", events, 1)
    assert one_by_one["orders"] and one_by_one["ledger"]
    for batch in (5, 64, 1_000):
        assert _tables(tmp_path, f"b{batch}", events, batch) == one_by_one, batch
