"""Kraken ticker statistics of one pair: last trade, today (from 00:00 UTC) and a rolling 24 h.

The rolling window is 1440 one-minute buckets in a ring: it holds the trades of the current
minute and of the 1439 minutes before it (between 23 h 59 min and 24 h of history, exact at
minute resolution), in constant memory. Running sums are updated on each trade and on expiry;
low, high and the window's first price are rescanned (at most 1440 buckets) only when an expired
bucket could have held them, so at most once per minute.

Conventions where Kraken is silent: a window without trades reports volume 0, count 0, and low,
high and vwap equal to the reference price (the last trade before it; 0 if the pair never
traded). ``o`` is today's first trade price, or the last price before today when there is none
yet. WS ``change`` is ``last`` minus the first trade price of the rolling window.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from abyssal.core.instruments import format_fixed
from abyssal.marketdata.candles import div_round_half_even, vwap_ticks

Level = tuple[int, int]  # (price_ticks, qty_lots)

WINDOW_MINUTES: Final = 1440  # buckets in the rolling 24 h window, one per minute
NS_PER_MINUTE: Final = 60 * 1_000_000_000
MINUTES_PER_DAY: Final = 1440
CHANGE_PCT_DECIMALS: Final = 2


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Aggregates of the trades in one window (today or the last 24 h)."""

    volume_lots: int
    cost_raw: int  # sum(price_ticks * volume_lots)
    count: int
    low_ticks: int
    high_ticks: int
    open_ticks: int  # first trade price in the window

    @property
    def vwap_ticks(self) -> int:
        """Half-even from the exact ratio; the reference price when the window has no volume."""
        return vwap_ticks(self.cost_raw, self.volume_lots) if self.volume_lots else self.low_ticks

    @classmethod
    def quiet(cls, reference_ticks: int) -> WindowStats:
        return cls(0, 0, 0, reference_ticks, reference_ticks, reference_ticks)


@dataclass(frozen=True, slots=True)
class TickerStats:
    """Everything the Ticker needs except the book's touch."""

    last_price_ticks: int
    last_volume_lots: int
    today: WindowStats
    rolling: WindowStats  # the last 24 h
    today_open_ticks: int


class _Today:
    """Today's running aggregates; reset by the first trade of a new UTC day."""

    __slots__ = ("cost_raw", "count", "day", "high_ticks", "low_ticks", "open_ticks", "volume_lots")

    def __init__(self, day: int, price_ticks: int) -> None:
        self.day = day
        self.open_ticks = self.low_ticks = self.high_ticks = price_ticks
        self.volume_lots = self.cost_raw = self.count = 0

    def add(self, price_ticks: int, volume_lots: int) -> None:
        self.low_ticks = min(self.low_ticks, price_ticks)
        self.high_ticks = max(self.high_ticks, price_ticks)
        self.volume_lots += volume_lots
        self.cost_raw += price_ticks * volume_lots
        self.count += 1

    def stats(self) -> WindowStats:
        return WindowStats(
            self.volume_lots, self.cost_raw, self.count, self.low_ticks, self.high_ticks, self.open_ticks
        )


class Ticker:
    """Ticker statistics of one pair, fed with trades in time order, read at any ``now_ns``."""

    __slots__ = (
        "_b_cost",
        "_b_count",
        "_b_high",
        "_b_low",
        "_b_minute",
        "_b_open",
        "_b_volume",
        "_cost_raw",
        "_count",
        "_end_minute",
        "_extremes",
        "_last",
        "_today",
        "_volume_lots",
    )

    def __init__(self) -> None:
        n = WINDOW_MINUTES
        self._b_minute = [-1] * n  # minute a bucket holds, -1 when empty
        self._b_volume = [0] * n
        self._b_cost = [0] * n
        self._b_count = [0] * n
        self._b_low = [0] * n
        self._b_high = [0] * n
        self._b_open = [0] * n
        self._end_minute = -1  # the newest minute of the window
        self._volume_lots = self._cost_raw = self._count = 0
        self._extremes: tuple[int, int, int] | None = None  # (low, high, open); None = rescan
        self._last: tuple[int, int, int] | None = None  # (time_ns, price_ticks, volume_lots)
        self._today: _Today | None = None

    def record_trade(self, time_ns: int, price_ticks: int, volume_lots: int) -> None:
        """Fold one public trade in; trades arrive in time order (reads may run ahead of them)."""
        assert price_ticks > 0
        assert volume_lots > 0
        assert self._last is None or time_ns >= self._last[0], "trades must arrive in time order"
        self._last = (time_ns, price_ticks, volume_lots)
        minute = time_ns // NS_PER_MINUTE
        day = minute // MINUTES_PER_DAY
        if self._today is None or day > self._today.day:
            self._today = _Today(day, price_ticks)
        self._today.add(price_ticks, volume_lots)
        self._advance(minute)
        if minute > self._end_minute - WINDOW_MINUTES:
            self._add_to_bucket(minute, price_ticks, volume_lots)

    def stats(self, now_ns: int) -> TickerStats:
        """The statistics as of ``now_ns`` (expires buckets older than the window)."""
        now_minute = now_ns // NS_PER_MINUTE
        self._advance(now_minute)
        last_price, last_volume = (self._last[1], self._last[2]) if self._last else (0, 0)
        today_day = now_minute // MINUTES_PER_DAY
        if self._today is not None and self._today.day >= today_day:
            today = self._today.stats()
        else:
            today = WindowStats.quiet(last_price)  # no trade yet today: flat at the last price
        if self._count == 0:
            rolling = WindowStats.quiet(last_price)
        else:
            low, high, open_ticks = self._window_extremes()
            rolling = WindowStats(self._volume_lots, self._cost_raw, self._count, low, high, open_ticks)
        assert rolling.count >= 0
        assert today.low_ticks <= today.high_ticks
        return TickerStats(last_price, last_volume, today, rolling, today.open_ticks)

    def _advance(self, minute: int) -> None:
        """Move the window's end to ``minute``, expiring the buckets that leave it."""
        if minute <= self._end_minute:
            return
        if self._end_minute >= 0:
            # live buckets hold minutes end-1439..end; at most those 1440 can expire
            first_expired = self._end_minute - WINDOW_MINUTES + 1
            last_expired = min(minute - WINDOW_MINUTES, self._end_minute)
            for old in range(first_expired, last_expired + 1):
                self._expire(old % WINDOW_MINUTES, old)
        self._end_minute = minute

    def _expire(self, slot: int, minute: int) -> None:
        if self._b_minute[slot] != minute:
            return
        self._volume_lots -= self._b_volume[slot]
        self._cost_raw -= self._b_cost[slot]
        self._count -= self._b_count[slot]
        self._b_minute[slot] = -1
        self._extremes = None  # the oldest bucket left: the window's first price moved
        assert self._count >= 0
        assert self._volume_lots >= 0

    def _add_to_bucket(self, minute: int, price_ticks: int, volume_lots: int) -> None:
        slot = minute % WINDOW_MINUTES
        if self._b_minute[slot] != minute:
            assert self._b_minute[slot] < minute - WINDOW_MINUTES + 1, "a live bucket was overwritten"
            self._b_minute[slot] = minute
            self._b_volume[slot] = self._b_cost[slot] = self._b_count[slot] = 0
            self._b_low[slot] = self._b_high[slot] = self._b_open[slot] = price_ticks
        self._b_volume[slot] += volume_lots
        self._b_cost[slot] += price_ticks * volume_lots
        self._b_count[slot] += 1
        self._b_low[slot] = min(self._b_low[slot], price_ticks)
        self._b_high[slot] = max(self._b_high[slot], price_ticks)
        if self._count == 0:
            self._extremes = (price_ticks, price_ticks, price_ticks)
        elif self._extremes is not None:
            low, high, open_ticks = self._extremes
            self._extremes = (min(low, price_ticks), max(high, price_ticks), open_ticks)
        self._volume_lots += volume_lots
        self._cost_raw += price_ticks * volume_lots
        self._count += 1

    def _window_extremes(self) -> tuple[int, int, int]:
        if self._extremes is None:
            window = range(self._end_minute - WINDOW_MINUTES + 1, self._end_minute + 1)
            slots = [m % WINDOW_MINUTES for m in window if self._b_minute[m % WINDOW_MINUTES] == m]
            assert slots, "a window with trades has a bucket"
            low = min(self._b_low[slot] for slot in slots)
            high = max(self._b_high[slot] for slot in slots)
            self._extremes = (low, high, self._b_open[slots[0]])  # slots run oldest first
        return self._extremes


def ticker_rest(
    stats: TickerStats, best_ask: Level | None, best_bid: Level | None, pair_decimals: int, lot_decimals: int
) -> dict[str, list[str] | list[int] | str]:
    """Kraken REST Ticker fields ``a b c v p t l h o`` (§3.5); an empty book side shows zeros."""

    def price(ticks: int) -> str:
        return format_fixed(ticks, pair_decimals)

    def volume(lots: int) -> str:
        return format_fixed(lots, lot_decimals)

    def touch(level: Level | None) -> list[str]:
        price_ticks, qty_lots = level if level is not None else (0, 0)
        whole_lots = qty_lots // 10**lot_decimals  # "whole lot volume": the integer part
        return [price(price_ticks), str(whole_lots), volume(qty_lots)]

    today, rolling = stats.today, stats.rolling
    return {
        "a": touch(best_ask),
        "b": touch(best_bid),
        "c": [price(stats.last_price_ticks), volume(stats.last_volume_lots)],
        "v": [volume(today.volume_lots), volume(rolling.volume_lots)],
        "p": [price(today.vwap_ticks), price(rolling.vwap_ticks)],
        "t": [today.count, rolling.count],
        "l": [price(today.low_ticks), price(rolling.low_ticks)],
        "h": [price(today.high_ticks), price(rolling.high_ticks)],
        "o": price(stats.today_open_ticks),
    }


def ticker_ws(
    stats: TickerStats, best_ask: Level | None, best_bid: Level | None, pair_decimals: int, lot_decimals: int
) -> dict[str, Decimal]:
    """WS v2 ``ticker`` numbers over the rolling 24 h (no ``symbol``), all exact Decimals."""

    def price(ticks: int) -> Decimal:
        return Decimal(format_fixed(ticks, pair_decimals))

    def volume(lots: int) -> Decimal:
        return Decimal(format_fixed(lots, lot_decimals))

    bid_ticks, bid_lots = best_bid if best_bid is not None else (0, 0)
    ask_ticks, ask_lots = best_ask if best_ask is not None else (0, 0)
    rolling = stats.rolling
    reference_ticks = rolling.open_ticks
    change_ticks = stats.last_price_ticks - reference_ticks if rolling.count else 0
    change_pct_scaled = 0
    if rolling.count and reference_ticks > 0:
        scale = 100 * 10**CHANGE_PCT_DECIMALS
        change_pct_scaled = div_round_half_even(change_ticks * scale, reference_ticks)
    return {
        "bid": price(bid_ticks),
        "bid_qty": volume(bid_lots),
        "ask": price(ask_ticks),
        "ask_qty": volume(ask_lots),
        "last": price(stats.last_price_ticks),
        "volume": volume(rolling.volume_lots),
        "vwap": price(rolling.vwap_ticks),
        "low": price(rolling.low_ticks),
        "high": price(rolling.high_ticks),
        "change": price(change_ticks),
        "change_pct": Decimal(format_fixed(change_pct_scaled, CHANGE_PCT_DECIMALS)),
    }
