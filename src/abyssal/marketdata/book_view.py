"""One pair's aggregated L2 book, kept from level changes, with Kraken-style windowed updates.

The view holds every level of both sides (a dict of quantities plus a sorted list of keys, so
``top`` is a slice and an insert is one ``bisect``). Subscribers see a window of the best ``depth``
levels and follow Kraken's v2 rule: they truncate to their depth themselves and never receive
``qty 0`` for a level that merely fell out of their window, so when a level *inside* the window
disappears the update also carries the level that now enters the window. Rows in an update are
ordered deletions first, then new or changed levels, each best first, so a client that truncates
after every row stays correct too.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal, NamedTuple

from abyssal.core.instruments import format_fixed
from abyssal.marketdata.checksum import CHECKSUM_DEPTH, book_checksum

BookSide = Literal["bid", "ask"]
SIDES: Final[tuple[BookSide, ...]] = ("ask", "bid")
Level = tuple[int, int]  # (price_ticks, qty_lots), best first in every list
TimedLevel = tuple[int, int, int]  # (price_ticks, qty_lots, updated_at_ns)

BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)  # the WebSocket v2 `depth` values
BOOK_DEPTH_MAX: Final = 1000
# Levels per side the view accepts. The engine's open-order cap bounds the real count (a level
# holds at least one order); bootstrap should pass that cap, this default is a backstop.
BOOK_LEVELS_PER_SIDE_MAX: Final = 200_000
NS_PER_S: Final = 1_000_000_000


class LevelChange(NamedTuple):
    """One aggregated level's new total; ``qty_lots == 0`` removes the level."""

    side: BookSide
    price_ticks: int
    qty_lots: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The best ``depth`` levels of each side and the checksum of the top ten."""

    asks: list[Level]
    bids: list[Level]
    checksum: int


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Rows one subscriber window needs after a batch (``qty 0`` deletes) and the new checksum."""

    asks: list[Level]
    bids: list[Level]
    checksum: int

    @property
    def empty(self) -> bool:
        """Nothing changed inside this window: Kraken sends no frame for it."""
        return not self.asks and not self.bids


class _Side:
    """One side: quantities by price and the prices sorted best first (bids stored negated)."""

    __slots__ = ("keys", "qty_lots", "sign", "updated_at_ns")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # +1 for asks (ascending), -1 for bids (descending)
        self.keys: list[int] = []  # sign * price, ascending == best first
        self.qty_lots: dict[int, int] = {}
        self.updated_at_ns: dict[int, int] = {}

    def set(self, price_ticks: int, qty_lots: int, updated_at_ns: int) -> None:
        key = self.sign * price_ticks
        if qty_lots == 0:
            if self.qty_lots.pop(price_ticks, None) is not None:
                del self.updated_at_ns[price_ticks]
                index = bisect_left(self.keys, key)
                assert self.keys[index] == key, "sorted keys and quantities disagree"
                del self.keys[index]
            return
        if price_ticks not in self.qty_lots:
            index = bisect_left(self.keys, key)
            self.keys.insert(index, key)
        self.qty_lots[price_ticks] = qty_lots
        self.updated_at_ns[price_ticks] = updated_at_ns

    def bound(self, depth: int) -> int | None:
        """Key of the worst level inside a window of ``depth``; None when the side is shallower."""
        return self.keys[depth - 1] if len(self.keys) >= depth else None

    def top(self, n: int) -> list[Level]:
        sign = self.sign
        qty = self.qty_lots
        return [(sign * key, qty[sign * key]) for key in self.keys[:n]]


class BookView:
    """The aggregated book of one pair; fed by level totals, read by REST Depth and WS book."""

    __slots__ = ("_sides", "levels_per_side_max", "lot_decimals", "pair_decimals")

    def __init__(
        self,
        pair_decimals: int,
        lot_decimals: int,
        levels_per_side_max: int = BOOK_LEVELS_PER_SIDE_MAX,
    ) -> None:
        assert pair_decimals >= 0
        assert lot_decimals >= 0
        assert levels_per_side_max >= BOOK_DEPTH_MAX
        self.pair_decimals = pair_decimals
        self.lot_decimals = lot_decimals
        self.levels_per_side_max = levels_per_side_max
        self._sides: dict[BookSide, _Side] = {"ask": _Side(+1), "bid": _Side(-1)}

    def apply(self, side: BookSide, price_ticks: int, qty_lots: int, updated_at_ns: int = 0) -> None:
        """Set one level's total quantity; ``qty_lots == 0`` deletes it (absent levels are fine)."""
        assert price_ticks > 0, "prices are positive"
        assert qty_lots >= 0, "a level total is never negative"
        book_side = self._sides[side]
        book_side.set(price_ticks, qty_lots, updated_at_ns)
        assert len(book_side.keys) <= self.levels_per_side_max, "more levels than the engine allows"
        assert len(book_side.keys) == len(book_side.qty_lots)

    def top(self, side: BookSide, n: int) -> list[Level]:
        """The best ``n`` levels of a side, best first (asks ascending, bids descending)."""
        assert n >= 0
        return self._sides[side].top(n)

    def top_timed(self, side: BookSide, n: int) -> list[TimedLevel]:
        """Like ``top`` with each level's last update time, for REST Depth rows."""
        book_side = self._sides[side]
        return [(p, q, book_side.updated_at_ns[p]) for p, q in book_side.top(n)]

    def best(self, side: BookSide) -> Level | None:
        """The touch of one side, or None when the side is empty."""
        levels = self._sides[side].top(1)
        return levels[0] if levels else None

    def level_count(self, side: BookSide) -> int:
        return len(self._sides[side].keys)

    def qty(self, side: BookSide, price_ticks: int) -> int:
        """The total at one price (0 when there is no level)."""
        return self._sides[side].qty_lots.get(price_ticks, 0)

    def checksum(self) -> int:
        """Kraken's CRC32 of the current top ten levels of each side."""
        return book_checksum(
            self.top("ask", CHECKSUM_DEPTH),
            self.top("bid", CHECKSUM_DEPTH),
            self.pair_decimals,
            self.lot_decimals,
        )

    def snapshot(self, depth: int) -> BookSnapshot:
        """What a new subscriber of this depth receives first."""
        assert 1 <= depth <= BOOK_DEPTH_MAX
        return BookSnapshot(self.top("ask", depth), self.top("bid", depth), self.checksum())

    def apply_batch(
        self,
        changes: Iterable[tuple[BookSide, int, int]],
        depths: Sequence[int] = BOOK_DEPTHS,
        updated_at_ns: int = 0,
    ) -> dict[int, BookUpdate]:
        """Apply one message's level changes; return each depth's update rows and the checksum.

        A depth whose window did not change gets an ``empty`` update (send no frame for it).
        Cost grows with the number of changes and of levels entering a window, not with depth.
        """
        assert depths, "ask for at least one depth"
        assert all(1 <= depth <= BOOK_DEPTH_MAX for depth in depths)
        batch = list(changes)
        # Quantity of each touched price before the batch (0 when absent), and where each
        # window ended: together they tell what every subscriber had without copying windows.
        before: dict[BookSide, dict[int, int]] = {"ask": {}, "bid": {}}
        for side, price_ticks, _ in batch:
            before[side].setdefault(price_ticks, self.qty(side, price_ticks))
        touched: list[BookSide] = [side for side in SIDES if before[side]]
        bounds = {(side, depth): self._sides[side].bound(depth) for side in touched for depth in depths}
        for side, price_ticks, qty_lots in batch:
            self.apply(side, price_ticks, qty_lots, updated_at_ns)
        checksum = self.checksum()
        updates: dict[int, BookUpdate] = {}
        for depth in depths:
            rows: dict[BookSide, list[Level]] = {"ask": [], "bid": []}
            for side in touched:
                rows[side] = self._window_rows(side, depth, before[side], bounds[side, depth])
            updates[depth] = BookUpdate(rows["ask"], rows["bid"], checksum)
        return updates

    def _window_rows(
        self, side: BookSide, depth: int, qty_before: dict[int, int], bound_before: int | None
    ) -> list[Level]:
        """Rows that turn a client's old window into the new one once it truncates to ``depth``."""
        book_side = self._sides[side]
        sign = book_side.sign
        bound_after = book_side.bound(depth)
        deletions: list[Level] = []
        changed: list[Level] = []
        for price_ticks, old_qty in qty_before.items():
            key = sign * price_ticks
            new_qty = book_side.qty_lots.get(price_ticks, 0)
            was_shown = old_qty > 0 and (bound_before is None or key <= bound_before)
            is_shown = new_qty > 0 and (bound_after is None or key <= bound_after)
            # Only levels gone from the book get qty 0; levels pushed below the window by better
            # ones are dropped by the client's own truncation (Kraken never sends qty 0 for those).
            if was_shown and new_qty == 0:
                deletions.append((price_ticks, 0))
            elif is_shown and (not was_shown or new_qty != old_qty):
                changed.append((price_ticks, new_qty))
        entering = 0
        if bound_before is not None:  # untouched levels behind the old window that now show
            for key in book_side.keys[bisect_right(book_side.keys, bound_before) : depth]:
                if sign * key not in qty_before:
                    changed.append((sign * key, book_side.qty_lots[sign * key]))
                    entering += 1
        assert entering <= len(deletions), "only a deletion frees a slot for an untouched level"
        deletions.sort(key=lambda level: sign * level[0])
        changed.sort(key=lambda level: sign * level[0])
        return deletions + changed


def depth_rest_rows(
    levels: Sequence[TimedLevel], pair_decimals: int, lot_decimals: int
) -> list[list[str | int]]:
    """REST Depth entries ``[price, volume, timestamp(int s)]`` with the pair's precision."""
    return [
        [format_fixed(price, pair_decimals), format_fixed(qty, lot_decimals), updated_at_ns // NS_PER_S]
        for price, qty, updated_at_ns in levels
    ]


def ws_levels(levels: Sequence[Level], pair_decimals: int, lot_decimals: int) -> list[dict[str, Decimal]]:
    """WS v2 book rows ``{"price": ..., "qty": ...}`` as Decimals carrying the pair's precision."""
    return [
        {
            "price": Decimal(format_fixed(price, pair_decimals)),
            "qty": Decimal(format_fixed(qty, lot_decimals)),
        }
        for price, qty in levels
    ]
