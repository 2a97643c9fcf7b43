"""The L2 book view: ordering, Kraken's windowed updates, and a client model kept in sync."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abyssal.marketdata.book_view import (
    BookSide,
    BookView,
    Level,
    LevelChange,
    depth_rest_rows,
    ws_levels,
)
from abyssal.marketdata.checksum import book_checksum

PAIR_DECIMALS = 1
LOT_DECIMALS = 8


def make_book(asks: list[Level], bids: list[Level]) -> BookView:
    book = BookView(PAIR_DECIMALS, LOT_DECIMALS)
    for price, qty in asks:
        book.apply("ask", price, qty)
    for price, qty in bids:
        book.apply("bid", price, qty)
    return book


class ClientBook:
    """What a Kraken v2 client does: apply rows (qty 0 deletes), truncate to its depth."""

    def __init__(self, depth: int, asks: list[Level], bids: list[Level], truncate_per_row: bool) -> None:
        self.depth = depth
        self.truncate_per_row = truncate_per_row
        self.sides: dict[BookSide, dict[int, int]] = {"ask": dict(asks), "bid": dict(bids)}

    def top(self, side: BookSide) -> list[Level]:
        levels = sorted(self.sides[side].items(), reverse=side == "bid")
        return levels[: self.depth]

    def _truncate(self, side: BookSide) -> None:
        self.sides[side] = dict(self.top(side))

    def apply(self, side: BookSide, rows: list[Level]) -> None:
        for price, qty in rows:
            if qty == 0:
                self.sides[side].pop(price, None)
            else:
                self.sides[side][price] = qty
            if self.truncate_per_row:
                self._truncate(side)
        self._truncate(side)

    def checksum(self) -> int:
        return book_checksum(self.top("ask"), self.top("bid"), PAIR_DECIMALS, LOT_DECIMALS)


def test_sides_are_sorted_best_first_and_zero_deletes() -> None:
    book = make_book(asks=[(105, 1), (101, 2), (103, 3)], bids=[(95, 1), (99, 2), (97, 3)])
    assert book.top("ask", 10) == [(101, 2), (103, 3), (105, 1)]
    assert book.top("bid", 2) == [(99, 2), (97, 3)]
    assert book.best("ask") == (101, 2)
    book.apply("ask", 101, 0)
    book.apply("ask", 999, 0)  # deleting an absent level is a no-op
    book.apply("bid", 97, 8)
    assert book.top("ask", 10) == [(103, 3), (105, 1)]
    assert book.top("bid", 10) == [(99, 2), (97, 8), (95, 1)]
    assert book.level_count("ask") == 2
    assert book.qty("bid", 97) == 8
    assert book.qty("bid", 96) == 0
    assert BookView(1, 8).best("bid") is None


def test_a_deleted_level_inside_the_window_brings_in_the_next_one() -> None:
    book = make_book(asks=[(101, 1), (102, 2), (103, 3), (104, 4)], bids=[])
    updates = book.apply_batch([("ask", 102, 0)], depths=[3, 10])
    assert updates[3].asks == [(102, 0), (104, 4)]
    assert updates[3].bids == []
    assert updates[10].asks == [(102, 0)]  # the deep subscriber already had 104


def test_levels_pushed_out_of_the_window_get_no_zero() -> None:
    book = make_book(asks=[(101, 1), (102, 2), (103, 3)], bids=[])
    updates = book.apply_batch([("ask", 100, 5)], depths=[3])
    assert updates[3].asks == [(100, 5)]  # 103 falls out by itself: the client truncates it


def test_changes_outside_the_window_give_an_empty_update() -> None:
    book = make_book(asks=[(101, 1), (102, 2), (103, 3)], bids=[(99, 1)])
    updates = book.apply_batch([LevelChange("ask", 103, 7), LevelChange("ask", 110, 1)], depths=[2])
    assert updates[2].empty
    assert updates[2].checksum == book.checksum()


def test_deletions_come_first_then_changes_best_first() -> None:
    book = make_book(asks=[], bids=[(100, 1), (99, 1), (98, 1), (97, 1)])
    updates = book.apply_batch([("bid", 96, 2), ("bid", 101, 3), ("bid", 99, 0), ("bid", 98, 4)], [3])
    assert updates[3].bids == [(99, 0), (101, 3), (98, 4)]


def test_deleted_and_readded_with_the_same_quantity_sends_nothing() -> None:
    book = make_book(asks=[(101, 1), (102, 2)], bids=[])
    assert book.apply_batch([("ask", 101, 0), ("ask", 101, 1)], [10])[10].empty


def test_snapshot_and_checksum_follow_the_doc_vector() -> None:
    book = make_book(
        asks=[(300010, 40_000_000), (300005, 20_000_000)],
        bids=[(299995, 20_000_000), (300000, 10_000_000)],
    )
    snapshot = book.snapshot(10)
    assert snapshot.asks == [(300005, 20_000_000), (300010, 40_000_000)]
    assert snapshot.bids == [(300000, 10_000_000), (299995, 20_000_000)]
    assert snapshot.checksum == 2252862770
    assert book.snapshot(1).asks == [(300005, 20_000_000)]
    assert book.snapshot(1).checksum == 2252862770  # always over the top ten


def test_rest_and_ws_rows_carry_the_pair_precision() -> None:
    book = BookView(PAIR_DECIMALS, LOT_DECIMALS)
    book.apply("ask", 303841, 205_900_000, updated_at_ns=1_688_671_659_999_999_999)
    assert depth_rest_rows(book.top_timed("ask", 5), PAIR_DECIMALS, LOT_DECIMALS) == [
        ["30384.1", "2.05900000", 1_688_671_659]
    ]
    rows = ws_levels([(667880, 0)], PAIR_DECIMALS, LOT_DECIMALS)
    assert rows == [{"price": Decimal("66788.0"), "qty": Decimal("0E-8")}]
    assert str(rows[0]["price"]) == "66788.0"


def test_bad_input_is_refused() -> None:
    book = BookView(PAIR_DECIMALS, LOT_DECIMALS)
    with pytest.raises(AssertionError):
        book.apply("ask", 0, 1)
    with pytest.raises(AssertionError):
        book.apply("bid", 10, -1)
    with pytest.raises(AssertionError):
        book.apply_batch([], depths=[1001])


def test_the_level_bound_is_enforced() -> None:
    book = BookView(PAIR_DECIMALS, LOT_DECIMALS, levels_per_side_max=1000)
    for price in range(1, 1001):
        book.apply("ask", price, 1)
    with pytest.raises(AssertionError, match="more levels"):
        book.apply("ask", 5000, 1)


# Asks and bids live on disjoint ranges so the book never crosses; qty 0 is frequent so levels
# inside the window keep disappearing and deeper ones must enter.
ask_changes = st.tuples(st.just("ask"), st.integers(101, 160), st.sampled_from([0, 0, 1, 2, 3, 10**8]))
bid_changes = st.tuples(st.just("bid"), st.integers(40, 100), st.sampled_from([0, 0, 1, 2, 3, 10**8]))
batches = st.lists(st.lists(st.one_of(ask_changes, bid_changes), max_size=12), min_size=1, max_size=40)
DEPTHS = (10, 25)


@settings(max_examples=300, deadline=None)
@given(initial=st.lists(st.one_of(ask_changes, bid_changes), max_size=80), batches=batches)
def test_clients_stay_in_sync_with_the_server(
    initial: list[tuple[BookSide, int, int]], batches: list[list[tuple[BookSide, int, int]]]
) -> None:
    server = BookView(PAIR_DECIMALS, LOT_DECIMALS)
    for side, price, qty in initial:
        server.apply(side, price, qty)
    clients = []
    for depth in DEPTHS:
        snapshot = server.snapshot(depth)
        assert snapshot.checksum == book_checksum(snapshot.asks, snapshot.bids, PAIR_DECIMALS, LOT_DECIMALS)
        for per_row in (False, True):
            clients.append(ClientBook(depth, snapshot.asks, snapshot.bids, per_row))
    for batch in batches:
        updates = server.apply_batch(batch, depths=DEPTHS)
        for client in clients:
            update = updates[client.depth]
            for side, rows in (("ask", update.asks), ("bid", update.bids)):
                for price, qty in rows:  # every row changes what this client holds
                    shown = client.sides[side]
                    assert price in shown if qty == 0 else shown.get(price) != qty
            client.apply("ask", update.asks)
            client.apply("bid", update.bids)
            assert client.top("ask") == server.top("ask", client.depth)
            assert client.top("bid") == server.top("bid", client.depth)
            assert client.checksum() == update.checksum == server.checksum()
            # Kraken's rule: a qty 0 row only for a level that left the book itself.
            for side, rows in (("ask", update.asks), ("bid", update.bids)):
                for price, qty in rows:
                    assert qty > 0 or server.qty(side, price) == 0
