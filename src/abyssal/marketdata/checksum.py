"""Kraken's CRC32 order book checksum over the top ten levels of each side."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import pairwise
from typing import Final

from abyssal.core.instruments import format_fixed

CHECKSUM_DEPTH: Final = 10  # Kraken checksums the top 10 levels whatever the subscribed depth


def level_text(value: int, decimals: int) -> str:
    """One price or quantity as the checksum wants it: fixed decimals, no '.', no leading zeros."""
    assert value >= 0, "book prices and quantities are never negative"
    return format_fixed(value, decimals).replace(".", "").lstrip("0")


def book_checksum(
    asks: Sequence[tuple[int, int]],
    bids: Sequence[tuple[int, int]],
    pair_decimals: int,
    lot_decimals: int,
) -> int:
    """Unsigned CRC32 of the top 10 asks (ascending) then the top 10 bids (descending).

    Levels are ``(price_ticks, qty_lots)``, best first; only the first ten of each side are read.
    """
    assert pair_decimals >= 0
    assert lot_decimals >= 0
    top_asks = asks[:CHECKSUM_DEPTH]
    top_bids = bids[:CHECKSUM_DEPTH]
    for lower, higher in pairwise(top_asks):
        assert lower[0] < higher[0], "asks must be strictly ascending"
    for higher, lower in pairwise(top_bids):
        assert higher[0] > lower[0], "bids must be strictly descending"
    parts: list[str] = []
    for price_ticks, qty_lots in (*top_asks, *top_bids):
        parts.append(level_text(price_ticks, pair_decimals))
        parts.append(level_text(qty_lots, lot_decimals))
    checksum = zlib.crc32("".join(parts).encode("ascii")) & 0xFFFFFFFF
    assert 0 <= checksum < 2**32
    return checksum
