"""Ticker statistics: today from 00:00 UTC, the exact rolling 24 h, and Kraken's field formats."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from abyssal.marketdata.ticker import (
    WINDOW_MINUTES,
    Ticker,
    TickerStats,
    WindowStats,
    ticker_rest,
    ticker_ws,
)

NS = 1_000_000_000
MINUTE_NS = 60 * NS
DAY_NS = 86_400 * NS


def at(day: int, hour: int, minute: int, second: int = 0) -> int:
    """Nanoseconds of 2024-05-<day> hh:mm:ss UTC."""
    return int(datetime(2024, 5, day, hour, minute, second, tzinfo=UTC).timestamp()) * NS


def test_today_and_24h_roll_over_at_midnight_utc() -> None:
    ticker = Ticker()
    ticker.record_trade(at(14, 23, 30), 100, 2)
    ticker.record_trade(at(14, 23, 50), 110, 1)
    before_midnight = ticker.stats(at(14, 23, 59))
    assert before_midnight.today == WindowStats(3, 310, 2, 100, 110, 100)
    assert before_midnight.rolling == before_midnight.today

    after_midnight = ticker.stats(at(15, 0, 10))
    assert after_midnight.today == WindowStats.quiet(110)  # nothing traded yet today
    assert after_midnight.today_open_ticks == 110  # o: the price at 00:00, the last before today
    assert after_midnight.rolling.count == 2

    ticker.record_trade(at(15, 0, 30), 90, 4)
    stats = ticker.stats(at(15, 0, 45))
    assert stats.today == WindowStats(4, 360, 1, 90, 90, 90)
    assert stats.today_open_ticks == 90
    assert stats.rolling == WindowStats(7, 670, 3, 90, 110, 100)
    assert (stats.last_price_ticks, stats.last_volume_lots) == (90, 4)


def test_the_rolling_window_is_1440_minutes_to_the_minute() -> None:
    ticker = Ticker()
    trade_ns = at(14, 12, 0, 30)
    ticker.record_trade(trade_ns, 100, 1)
    assert ticker.stats(trade_ns + (WINDOW_MINUTES - 1) * MINUTE_NS).rolling.count == 1
    assert ticker.stats(trade_ns + WINDOW_MINUTES * MINUTE_NS - 31 * NS).rolling.count == 1
    expired = ticker.stats(trade_ns + WINDOW_MINUTES * MINUTE_NS - 30 * NS)
    assert expired.rolling == WindowStats.quiet(100)
    assert expired.today == WindowStats.quiet(100)


def test_low_and_high_recover_when_the_extreme_expires() -> None:
    ticker = Ticker()
    start = at(14, 10, 0)
    ticker.record_trade(start, 500, 1)  # the high, expires first
    ticker.record_trade(start + 60 * MINUTE_NS, 50, 1)  # the low, expires an hour later
    ticker.record_trade(start + 120 * MINUTE_NS, 200, 1)
    ticker.record_trade(start + 180 * MINUTE_NS, 300, 1)
    rolling = ticker.stats(start + 1439 * MINUTE_NS).rolling
    assert (rolling.low_ticks, rolling.high_ticks, rolling.open_ticks) == (50, 500, 500)
    rolling = ticker.stats(start + 1440 * MINUTE_NS).rolling
    assert (rolling.low_ticks, rolling.high_ticks, rolling.open_ticks, rolling.count) == (50, 300, 50, 3)
    rolling = ticker.stats(start + 1500 * MINUTE_NS).rolling
    assert (rolling.low_ticks, rolling.high_ticks, rolling.open_ticks, rolling.count) == (200, 300, 200, 2)


def test_a_read_ahead_of_the_engine_clock_does_not_lose_later_trades() -> None:
    ticker = Ticker()
    ticker.record_trade(at(14, 10, 0), 100, 1)
    ticker.stats(at(14, 10, 5))  # the gateway's clock runs ahead of the engine's
    ticker.record_trade(at(14, 10, 2), 120, 1)
    stats = ticker.stats(at(14, 10, 5))
    assert stats.rolling == WindowStats(2, 220, 2, 100, 120, 100)
    assert stats.last_price_ticks == 120


def test_a_late_trade_already_outside_the_window_is_left_out_of_it() -> None:
    ticker = Ticker()
    start = at(14, 10, 0)
    ticker.record_trade(start, 100, 1)
    ticker.stats(start + WINDOW_MINUTES * MINUTE_NS)  # a read a whole window ahead
    ticker.record_trade(start + 30 * NS, 120, 1)  # same minute as the first: already expired
    stats = ticker.stats(start + WINDOW_MINUTES * MINUTE_NS)
    assert stats.rolling == WindowStats.quiet(120)
    assert stats.last_price_ticks == 120


def test_a_pair_that_never_traded_shows_zeros() -> None:
    stats = Ticker().stats(at(14, 0, 0))
    assert stats == TickerStats(0, 0, WindowStats.quiet(0), WindowStats.quiet(0), 0)
    assert ticker_rest(stats, None, None, 1, 8)["c"] == ["0.0", "0.00000000"]


def test_rest_fields_follow_kraken() -> None:
    ticker = Ticker()
    ticker.record_trade(at(14, 0, 1), 290000, 100_000_000)
    ticker.record_trade(at(14, 9, 0), 310000, 300_000_000)
    ticker.record_trade(at(14, 10, 0), 300005, 1_000_000)
    stats = ticker.stats(at(14, 10, 1))
    fields = ticker_rest(stats, (300010, 1_000_000_000), (300000, 250_000_000), 1, 8)
    assert fields == {
        "a": ["30001.0", "10", "10.00000000"],
        "b": ["30000.0", "2", "2.50000000"],
        "c": ["30000.5", "0.01000000"],
        "v": ["4.01000000", "4.01000000"],
        "p": ["30498.8", "30498.8"],  # (29000*1 + 31000*3 + 30000.5*0.01) / 4.01 = 30498.754
        "t": [3, 3],
        "l": ["29000.0", "29000.0"],
        "h": ["31000.0", "31000.0"],
        "o": "29000.0",
    }


def test_rest_vwap_is_the_exact_half_even_ratio() -> None:
    ticker = Ticker()
    ticker.record_trade(at(14, 1, 0), 100, 1)
    ticker.record_trade(at(14, 1, 1), 101, 1)  # exact vwap 100.5 ticks -> 100 (even)
    ticker.record_trade(at(14, 1, 2), 103, 2)  # (201 + 206) / 4 = 101.75 -> 102
    stats = ticker.stats(at(14, 1, 3))
    assert stats.rolling.vwap_ticks == 102
    assert ticker_rest(stats, None, None, 2, 0)["p"] == ["1.02", "1.02"]


def test_ws_change_and_percentage_are_exact_decimals() -> None:
    ticker = Ticker()
    ticker.record_trade(at(14, 1, 0), 615604, 1)  # 61560.4, the first trade of the window
    ticker.record_trade(at(14, 20, 0), 659729, 1)  # 65972.9
    fields = ticker_ws(ticker.stats(at(14, 20, 1)), (659729, 3967506683), (659728, 10_000_000), 1, 8)
    assert fields["change"] == Decimal("4412.5")
    assert str(fields["change_pct"]) == "7.17"  # 4412.5 / 61560.4 = 7.1677...%
    assert str(fields["ask_qty"]) == "39.67506683"
    encoded = msgspec.json.Encoder(decimal_format="number").encode(fields)
    assert encoded.startswith(b'{"bid":65972.8,"bid_qty":0.10000000,"ask":65972.9,')
    assert b'"change":4412.5,"change_pct":7.17}' in encoded


def test_ws_change_falls_and_rounds_half_even() -> None:
    ticker = Ticker()
    ticker.record_trade(at(14, 1, 0), 80000, 1)
    ticker.record_trade(at(14, 1, 1), 79996, 1)  # -0.005 % exactly -> -0.00 (ties to even)
    ticker.record_trade(at(14, 1, 2), 79988, 1)  # -0.015 % exactly -> -0.02
    fields = ticker_ws(ticker.stats(at(14, 1, 3)), None, None, 2, 8)
    assert fields["change"] == Decimal("-0.12")
    assert fields["change_pct"] == Decimal("-0.02")
    assert fields["bid"] == Decimal("0")


# -- the rolling window against a brute-force model -------------------------------------------

gaps_ns = st.one_of(
    st.integers(0, 90 * NS),
    st.integers(0, 3 * 3600 * NS),
    st.integers(20 * 3600 * NS, 26 * 3600 * NS),
)
events = st.lists(
    st.tuples(gaps_ns, st.booleans(), st.integers(1, 1000), st.integers(1, 50)),
    min_size=1,
    max_size=60,
)


def brute_force(trades: list[tuple[int, int, int]], now_ns: int) -> TickerStats:
    now_minute = now_ns // MINUTE_NS
    last_price, last_volume = (trades[-1][1], trades[-1][2]) if trades else (0, 0)

    def window(selected: list[tuple[int, int, int]]) -> WindowStats:
        if not selected:
            return WindowStats.quiet(last_price)
        prices = [p for _, p, _ in selected]
        return WindowStats(
            sum(v for _, _, v in selected),
            sum(p * v for _, p, v in selected),
            len(selected),
            min(prices),
            max(prices),
            prices[0],
        )

    rolling = [t for t in trades if t[0] // MINUTE_NS > now_minute - WINDOW_MINUTES]
    today = [t for t in trades if t[0] // DAY_NS == now_ns // DAY_NS]
    today_stats = window(today)
    return TickerStats(last_price, last_volume, today_stats, window(rolling), today_stats.open_ticks)


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_stats_equal_a_brute_force_recount(events: list[tuple[int, bool, int, int]]) -> None:
    ticker = Ticker()
    now_ns = at(14, 22, 0)
    trades: list[tuple[int, int, int]] = []
    for gap, is_trade, price, volume in events:
        now_ns += gap
        if is_trade:
            ticker.record_trade(now_ns, price, volume)
            trades.append((now_ns, price, volume))
        assert ticker.stats(now_ns) == brute_force(trades, now_ns)
