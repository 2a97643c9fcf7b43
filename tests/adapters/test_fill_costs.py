"""``sqlite_reads.fill_costs``: each order's ``sum(price_ticks * volume_lots)`` and ``sum(volume_lots)``
over its fills, the numerator and denominator of the average price QueryOrders, OpenOrders and
ClosedOrders show. The same SQL runs on PostgreSQL (tests/postgres/test_order_prices_postgres.py)."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.test_projector_holds import INSTRUMENTS, events_of_a_busy_book

from abyssal.adapters import sqlite_reads as reads
from abyssal.adapters.sqlite import SqliteStore, write_rows
from abyssal.adapters.store import Store
from abyssal.core.messages import Fill
from abyssal.runtime.projector import Projector, Rows

INT64_MAX = 2**63 - 1
# (order_no, trade_no, price_ticks, volume_lots): order 3's products, and their sum, pass 64 bits
FILLS = [
    (1, 1, 300_001, 5_000),
    (2, 2, 300_000, 10_000),
    (2, 3, 300_001, 10_000),
    (2, 4, 300_000, 20_000),  # a second fill at a price already seen
    (3, 5, 9 * 10**12, 10**9),
    (3, 6, INT64_MAX, 2),
    (5, 7, 1, INT64_MAX - 1),  # a sum of lots at the edge of 64 bits
    (5, 8, 2, 1),
]


def check_fill_costs(store: Store) -> None:
    """Write ``FILLS`` by hand (both the order's side and a counterparty's row) and read them back."""
    with store.transaction() as c:
        for order_no, trade_no, price, lots in FILLS:
            for account, side in ((order_no, 0), (100 + order_no, 1)):
                c.execute(
                    "INSERT INTO fills (pair, trade_no, account, order_no, side, price_ticks, volume_lots, "
                    "cost_minor, fee_asset, fee_minor, maker, ts_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (0, trade_no, account, order_no if side == 0 else 1000 + order_no, side, price, lots, 0,
                     0, 0, side, trade_no),
                )  # fmt: skip
    assert reads.fill_costs(store, []) == {}
    assert reads.fill_costs(store, [1, 2, 3, 4, 5]) == {
        1: (300_001 * 5_000, 5_000),
        2: (300_000 * 30_000 + 300_001 * 10_000, 40_000),
        3: (9 * 10**12 * 10**9 + INT64_MAX * 2, 10**9 + 2),
        5: (INT64_MAX - 1 + 2, INT64_MAX),
    }  # order 4 has no fills: absent
    assert reads.fill_costs(store, [1003]) == {1003: (9 * 10**12 * 10**9 + INT64_MAX * 2, 10**9 + 2)}


def test_fill_costs_are_exact_beyond_64_bits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "abyssal.db")
    try:
        check_fill_costs(store)
    finally:
        store.close()


def test_fill_costs_agree_with_the_fill_events(tmp_path: Path) -> None:
    events = events_of_a_busy_book(300, seed=11)
    expected: dict[int, tuple[int, int]] = {}
    for batch in events:
        for e in batch:
            if isinstance(e, Fill):
                for order_no in (e.taker_order, e.maker_order):
                    raw, lots = expected.get(order_no, (0, 0))
                    expected[order_no] = (raw + e.cost_raw, lots + e.volume_lots)
    assert len(expected) > 50
    store = SqliteStore(tmp_path / "abyssal.db")
    try:
        projector, rows = Projector(INSTRUMENTS, {}), Rows()
        for seq, batch in enumerate(events, start=1):
            projector.project(seq, batch, rows)
        with store.transaction() as c:
            write_rows(c, rows)
        numbers = list(range(1, max(expected) + 10))
        assert reads.fill_costs(store, numbers) == expected
        filled = store.conn().execute("SELECT order_no, filled_lots FROM orders WHERE filled_lots > 0")
        assert {n: lots for n, (_, lots) in expected.items()} == dict(filled.fetchall())
    finally:
        store.close()
