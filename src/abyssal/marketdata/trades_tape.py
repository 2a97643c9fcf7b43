"""Recent public trades and best bid/ask history of one pair, in bounded rings, for REST and WS.

REST ``Trades`` ``since`` rule: a value below ``SINCE_SECONDS_BELOW`` (10**12) is unix seconds and
is inclusive (trades at or after that second); anything else is the nanosecond ``last`` cursor
and is exclusive (trades strictly after it). ``last`` is the nanosecond time of the newest
returned trade, as a string. Trades sharing one nanosecond (one taker filling several makers)
are never split across pages: a page that would cut such a group ends before it, or, when the
group alone is longer than ``count``, carries the whole group. Trades older than the ring are
gone; a cursor older than the ring starts at its oldest trade.

Trade times in REST rows are ``Decimal`` seconds with exactly 9 decimals (exact from the integer
nanoseconds, never a binary float); encode them with msgspec's ``decimal_format="number"`` to get
a JSON number such as ``1688669597.827736900``.

REST ``Spread`` rows are recorded when the best bid or ask changes and both sides exist; ``since``
is unix seconds, inclusive; ``last`` is the newest row's second.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from abyssal.core.instruments import format_fixed

TRADES_MAX: Final = 1000  # ring per pair, also REST Trades' largest `count`
TRADES_WS_SNAPSHOT: Final = 50  # trades in a WS v2 `trade` snapshot
SPREAD_ROWS_MAX: Final = 200  # REST Spread keeps about the 200 most recent rows
SINCE_SECONDS_BELOW: Final = 10**12  # a `since` below this is unix seconds, else a ns cursor
NS_PER_S: Final = 1_000_000_000

TakerSide = Literal["b", "s"]
OrderKind = Literal["m", "l"]


def utc_timestamp_text(time_ns: int, decimals: int) -> str:
    """RFC 3339 UTC with ``decimals`` fraction digits, truncated: ``2024-05-27T12:43:11.798009Z``."""
    assert 0 <= decimals <= 9
    assert time_ns >= 0
    seconds, fraction_ns = divmod(time_ns, NS_PER_S)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        text += "." + str(fraction_ns).rjust(9, "0")[:decimals]
    return text + "Z"


def seconds_decimal(time_ns: int) -> Decimal:
    """Unix seconds with exactly 9 decimals, exact (REST Trades' float-seconds column)."""
    return Decimal(format_fixed(time_ns, 9))


def since_cursor_ns(since: int) -> int:
    """The exclusive nanosecond cursor equivalent to a REST ``since`` (see module doc)."""
    if since < SINCE_SECONDS_BELOW:
        return since * NS_PER_S - 1  # inclusive second == exclusive nanosecond just before it
    return since


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One fill as the public sees it: the taker's side and order kind, no accounts."""

    trade_id: int  # sequential per pair, the same id as WS v2 `trade_id`
    time_ns: int
    price_ticks: int
    volume_lots: int
    taker_side: TakerSide  # "b" buy, "s" sell
    ord_type: OrderKind  # "m" market, "l" limit


def _time_ns(trade: PublicTrade) -> int:
    return trade.time_ns


class TradesTape:
    """The most recent public trades of one pair, oldest first, at most ``trades_max``."""

    __slots__ = ("_ring", "trades_max")

    def __init__(self, trades_max: int = TRADES_MAX) -> None:
        assert trades_max >= 1
        self.trades_max = trades_max
        self._ring: deque[PublicTrade] = deque(maxlen=trades_max)

    def __len__(self) -> int:
        return len(self._ring)

    def record(self, trade: PublicTrade) -> None:
        """Append a trade; ids increase and times never go back (the engine's order)."""
        assert trade.price_ticks > 0
        assert trade.volume_lots > 0
        if self._ring:
            newest = self._ring[-1]
            assert trade.trade_id > newest.trade_id, "trade ids must increase"
            assert trade.time_ns >= newest.time_ns, "trade times must not go back"
        self._ring.append(trade)

    def recent(self, n: int = TRADES_WS_SNAPSHOT) -> list[PublicTrade]:
        """The newest ``n`` trades, oldest first (WS v2 trade snapshot)."""
        assert n >= 0
        trades = list(self._ring)
        return trades[len(trades) - min(n, len(trades)) :]

    def since(self, since: int | None, count: int = TRADES_MAX) -> tuple[list[PublicTrade], str]:
        """REST Trades: (trades oldest first, ``last`` ns cursor as a string); see module doc.

        Without ``since`` the newest ``count`` trades; with it the oldest ``count`` after it.
        """
        assert 1 <= count <= self.trades_max
        trades = list(self._ring)
        if since is None:
            page = trades[len(trades) - min(count, len(trades)) :]
            return page, str(page[-1].time_ns if page else 0)
        cursor_ns = since_cursor_ns(since)
        start = bisect_right(trades, cursor_ns, key=_time_ns)
        end = min(start + count, len(trades))
        if start < end < len(trades) and trades[end].time_ns == trades[end - 1].time_ns:
            group_start = bisect_left(trades, trades[end - 1].time_ns, lo=start, hi=end, key=_time_ns)
            if group_start > start:
                end = group_start  # end the page before the group it would split
            else:
                end = bisect_right(trades, trades[end - 1].time_ns, lo=start, key=_time_ns)
        page = trades[start:end]
        assert all(t.time_ns > cursor_ns for t in page)
        return page, str(page[-1].time_ns if page else max(cursor_ns, 0))


def trade_rest_row(trade: PublicTrade, pair_decimals: int, lot_decimals: int) -> list[str | Decimal | int]:
    """``[price, volume, time, "b"|"s", "m"|"l", "", trade_id]`` (time as exact Decimal seconds)."""
    return [
        format_fixed(trade.price_ticks, pair_decimals),
        format_fixed(trade.volume_lots, lot_decimals),
        seconds_decimal(trade.time_ns),
        trade.taker_side,
        trade.ord_type,
        "",
        trade.trade_id,
    ]


def trade_ws_fields(
    trade: PublicTrade, pair_decimals: int, lot_decimals: int
) -> dict[str, Decimal | int | str]:
    """WS v2 ``trade`` data fields (without ``symbol``), numbers as Decimals."""
    return {
        "side": "buy" if trade.taker_side == "b" else "sell",
        "price": Decimal(format_fixed(trade.price_ticks, pair_decimals)),
        "qty": Decimal(format_fixed(trade.volume_lots, lot_decimals)),
        "ord_type": "market" if trade.ord_type == "m" else "limit",
        "trade_id": trade.trade_id,
        "timestamp": utc_timestamp_text(trade.time_ns, 6),
    }


@dataclass(frozen=True, slots=True)
class SpreadRow:
    time_ns: int
    bid_ticks: int
    ask_ticks: int


class SpreadTape:
    """Best bid and ask of one pair each time either changes, at most ``rows_max`` rows."""

    __slots__ = ("_ring", "rows_max")

    def __init__(self, rows_max: int = SPREAD_ROWS_MAX) -> None:
        assert rows_max >= 1
        self.rows_max = rows_max
        self._ring: deque[SpreadRow] = deque(maxlen=rows_max)

    def __len__(self) -> int:
        return len(self._ring)

    def record(self, time_ns: int, bid_ticks: int | None, ask_ticks: int | None) -> bool:
        """Note the touch after a book change; True when a row was added (it changed)."""
        if bid_ticks is None or ask_ticks is None:
            return False  # Kraken rows always carry both sides; a one-sided book adds none
        if self._ring:
            newest = self._ring[-1]
            assert time_ns >= newest.time_ns, "spread times must not go back"
            if (newest.bid_ticks, newest.ask_ticks) == (bid_ticks, ask_ticks):
                return False
        self._ring.append(SpreadRow(time_ns, bid_ticks, ask_ticks))
        return True

    def since(self, since_s: int | None) -> tuple[list[SpreadRow], int]:
        """REST Spread: (rows oldest first with time >= since_s, ``last`` in unix seconds)."""
        rows = [r for r in self._ring if since_s is None or r.time_ns // NS_PER_S >= since_s]
        newest_s = self._ring[-1].time_ns // NS_PER_S if self._ring else 0
        return rows, max(newest_s, since_s or 0)


def spread_rest_row(row: SpreadRow, pair_decimals: int) -> list[int | str]:
    """``[time(int s), bid, ask]``."""
    return [
        row.time_ns // NS_PER_S,
        format_fixed(row.bid_ticks, pair_decimals),
        format_fixed(row.ask_ticks, pair_decimals),
    ]
