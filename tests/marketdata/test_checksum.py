"""Kraken's book checksum against the vectors of docs/kraken-api.md §6.3."""

from __future__ import annotations

import zlib

import pytest

from abyssal.marketdata.checksum import CHECKSUM_DEPTH, book_checksum, level_text

LIVE_ASKS = [
    (294303, 825215653),
    (294304, 255637606),
    (294305, 29975980),
    (294309, 256473216),
    (294310, 11662),
    (294311, 100000),
    (294323, 2410000),
    (294324, 2210682),
    (294325, 339761477),
    (294331, 1021497),
]
LIVE_BIDS = [
    (294302, 18967538),
    (294296, 11621),
    (294274, 100000),
    (294267, 400000000),
    (294257, 67945399),
    (294235, 67950478),
    (294221, 16314267),
    (294218, 6797895),
    (294217, 23401846),
    (294215, 28639276),
]


def test_simple_vector_string_and_crc() -> None:
    asks = [(300005, 20_000_000), (300010, 40_000_000)]
    bids = [(300000, 10_000_000), (299995, 20_000_000)]
    expected = "30000520000000300010400000003000001000000029999520000000"
    assert zlib.crc32(expected.encode()) == 2252862770
    assert book_checksum(asks, bids, pair_decimals=1, lot_decimals=8) == 2252862770


def test_live_snapshot_vector() -> None:
    assert book_checksum(LIVE_ASKS, LIVE_BIDS, pair_decimals=1, lot_decimals=8) == 2785033588


def test_only_the_top_ten_levels_count() -> None:
    deeper_asks = [*LIVE_ASKS, (294400, 5)]
    deeper_bids = [*LIVE_BIDS, (294000, 7)]
    assert len(deeper_asks) == CHECKSUM_DEPTH + 1
    assert book_checksum(deeper_asks, deeper_bids, 1, 8) == 2785033588


def test_a_changed_quantity_changes_the_checksum() -> None:
    asks = [(LIVE_ASKS[0][0], LIVE_ASKS[0][1] + 1), *LIVE_ASKS[1:]]
    assert book_checksum(asks, LIVE_BIDS, 1, 8) != 2785033588


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (400000000, 8, "400000000"),  # 4.00000000: trailing zeros stay
        (11662, 8, "11662"),  # 0.00011662: leading zeros go
        (294303, 1, "294303"),
        (5, 0, "5"),
        (0, 8, ""),
    ],
)
def test_level_text(value: int, decimals: int, text: str) -> None:
    assert level_text(value, decimals) == text


def test_empty_book_is_crc_of_nothing() -> None:
    assert book_checksum([], [], 1, 8) == 0


def test_unsorted_sides_are_refused() -> None:
    with pytest.raises(AssertionError):
        book_checksum(list(reversed(LIVE_ASKS)), LIVE_BIDS, 1, 8)
    with pytest.raises(AssertionError):
        book_checksum(LIVE_ASKS, list(reversed(LIVE_BIDS)), 1, 8)
