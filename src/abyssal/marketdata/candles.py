"""OHLC candles of one pair for every Kraken interval, built from trades in integer units.

Candle starts are aligned to the Unix epoch (``start_s % (interval * 60) == 0``), so weekly
candles start on Thursdays 00:00 UTC. An interval without trades is a flat candle at the previous
close with zero volume, zero count and vwap 0 (our choice: how Kraken fills gaps is unverified);
gaps are materialised only up to the cap, so a long silence costs at most ``CANDLES_MAX`` candles.

REST ``OHLC`` view (``CandleSeries.view``): at most ``CANDLES_MAX`` most recent candles, those
with ``start_s >= since_s`` (since is inclusive), and the current uncommitted candle always
last. ``last`` is the start of the newest *committed* candle (the one before the current), so
polling with ``since=last`` returns that candle again plus the current one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from abyssal.core.instruments import format_fixed
from abyssal.marketdata.trades_tape import utc_timestamp_text

INTERVALS_MIN: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
CANDLES_MAX: Final = 720  # per interval, the current candle included (Kraken's OHLC maximum)
NS_PER_S: Final = 1_000_000_000


def div_round_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, ties to even (exact, no float)."""
    assert denominator > 0
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def vwap_ticks(cost_raw: int, volume_lots: int) -> int:
    """Volume-weighted average price in ticks, half-even from the exact ratio; 0 without volume."""
    assert cost_raw >= 0
    assert volume_lots >= 0
    if volume_lots == 0:
        return 0
    return div_round_half_even(cost_raw, volume_lots)


@dataclass(slots=True)
class Candle:
    """One interval's aggregates; ``cost_raw`` is the vwap numerator ``sum(ticks * lots)``."""

    start_s: int
    open_ticks: int
    high_ticks: int
    low_ticks: int
    close_ticks: int
    volume_lots: int = 0
    cost_raw: int = 0
    count: int = 0

    @classmethod
    def flat(cls, start_s: int, price_ticks: int) -> Candle:
        """A candle without trades, every price at ``price_ticks``."""
        return cls(start_s, price_ticks, price_ticks, price_ticks, price_ticks)

    def add(self, price_ticks: int, volume_lots: int) -> None:
        if self.count == 0:  # a gap-fill candle's prices are placeholders until its first trade
            self.open_ticks = self.high_ticks = self.low_ticks = price_ticks
        self.high_ticks = max(self.high_ticks, price_ticks)
        self.low_ticks = min(self.low_ticks, price_ticks)
        self.close_ticks = price_ticks
        self.volume_lots += volume_lots
        self.cost_raw += price_ticks * volume_lots
        self.count += 1

    @property
    def vwap_ticks(self) -> int:
        return vwap_ticks(self.cost_raw, self.volume_lots)


class CandleSeries:
    """The candles of one interval: a bounded deque of committed candles and the current one."""

    __slots__ = ("_committed", "_current", "candles_max", "interval_min", "step_s")

    def __init__(self, interval_min: int, candles_max: int = CANDLES_MAX) -> None:
        assert interval_min in INTERVALS_MIN, f"unsupported interval {interval_min}"
        assert candles_max >= 2, "room for one committed candle and the current one"
        self.interval_min = interval_min
        self.step_s = interval_min * 60
        self.candles_max = candles_max
        self._committed: deque[Candle] = deque(maxlen=candles_max - 1)
        self._current: Candle | None = None

    def start_of(self, time_ns: int) -> int:
        """The start (unix seconds) of the candle containing ``time_ns``."""
        time_s = time_ns // NS_PER_S
        return time_s - time_s % self.step_s

    def add_trade(self, time_ns: int, price_ticks: int, volume_lots: int) -> Candle:
        """Fold one trade in (trades arrive in time order); return a copy of the current candle."""
        self.fold(time_ns, price_ticks, volume_lots)
        assert self._current is not None
        return replace(self._current)

    def fold(self, time_ns: int, price_ticks: int, volume_lots: int) -> None:
        """``add_trade`` without the copy (the market views fold every trade into nine series)."""
        assert price_ticks > 0
        assert volume_lots > 0
        start_s = self.start_of(time_ns)
        current = self._current
        if current is None:
            current = self._current = Candle.flat(start_s, price_ticks)
        elif start_s > current.start_s:
            self._committed.extend(self._closed_through(start_s))
            current = self._current = Candle.flat(start_s, current.close_ticks)
        assert start_s == current.start_s, "trades must arrive in time order"
        current.add(price_ticks, volume_lots)
        assert len(self._committed) < self.candles_max

    def current(self, now_ns: int) -> Candle | None:
        """The uncommitted candle at ``now_ns`` (flat at the last close after a quiet spell)."""
        if self._current is None:
            return None
        start_s = self.start_of(now_ns)
        if start_s <= self._current.start_s:
            return replace(self._current)
        return Candle.flat(start_s, self._current.close_ticks)

    def view(self, since_s: int | None, now_ns: int) -> tuple[list[Candle], int]:
        """REST OHLC: (candles oldest first with the current one last, ``last``); see module doc.

        Pure: quiet intervals up to ``now_ns`` are filled in the answer, not in the series.
        Returned candles are copies. Without any trade yet the answer is ``([], 0)``.
        """
        current = self._current
        if current is None:
            return [], 0
        now_start_s = self.start_of(now_ns)
        series = [*self._committed, current]
        if now_start_s > current.start_s:
            series.extend(self._closed_through(now_start_s)[1:])
            series.append(Candle.flat(now_start_s, current.close_ticks))
        series = series[-self.candles_max :]
        last = series[-2].start_s if len(series) >= 2 else series[-1].start_s
        rows = [c for c in series[:-1] if since_s is None or c.start_s >= since_s]
        rows.append(series[-1])
        assert len(rows) <= self.candles_max
        return [replace(c) for c in rows], last

    def _closed_through(self, next_start_s: int) -> list[Candle]:
        """The current candle and the flat candles of the quiet intervals before ``next_start_s``."""
        current = self._current
        assert current is not None
        assert next_start_s > current.start_s
        gap = (next_start_s - current.start_s) // self.step_s - 1
        first_start_s = next_start_s - min(gap, self.candles_max - 1) * self.step_s
        flats = [
            Candle.flat(start_s, current.close_ticks)
            for start_s in range(first_start_s, next_start_s, self.step_s)
        ]
        return [current, *flats]


class Candles:
    """All interval series of one pair, fed by the same trades."""

    __slots__ = ("series",)

    def __init__(self, candles_max: int = CANDLES_MAX) -> None:
        self.series = {interval: CandleSeries(interval, candles_max) for interval in INTERVALS_MIN}

    def add_trade(self, time_ns: int, price_ticks: int, volume_lots: int) -> None:
        for series in self.series.values():
            series.fold(time_ns, price_ticks, volume_lots)

    def __getitem__(self, interval_min: int) -> CandleSeries:
        return self.series[interval_min]


def ohlc_rest_row(candle: Candle, pair_decimals: int, lot_decimals: int) -> list[int | str]:
    """``[time, open, high, low, close, vwap, volume, count]`` as Kraken's REST OHLC writes it."""
    return [
        candle.start_s,
        format_fixed(candle.open_ticks, pair_decimals),
        format_fixed(candle.high_ticks, pair_decimals),
        format_fixed(candle.low_ticks, pair_decimals),
        format_fixed(candle.close_ticks, pair_decimals),
        format_fixed(candle.vwap_ticks, pair_decimals),
        format_fixed(candle.volume_lots, lot_decimals),
        candle.count,
    ]


def ohlc_ws_fields(
    candle: Candle, interval_min: int, pair_decimals: int, lot_decimals: int
) -> dict[str, Decimal | int | str]:
    """WS v2 ``ohlc`` data fields (without ``symbol`` and ``timestamp``), numbers as Decimals."""

    def price(ticks: int) -> Decimal:
        return Decimal(format_fixed(ticks, pair_decimals))

    return {
        "open": price(candle.open_ticks),
        "high": price(candle.high_ticks),
        "low": price(candle.low_ticks),
        "close": price(candle.close_ticks),
        "trades": candle.count,
        "volume": Decimal(format_fixed(candle.volume_lots, lot_decimals)),
        "vwap": price(candle.vwap_ticks),
        "interval_begin": utc_timestamp_text(candle.start_s * NS_PER_S, 9),
        "interval": interval_min,
    }
