"""OHLC candles: interval boundaries, gap filling, the 720 cap and Kraken's row format."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from abyssal.marketdata.candles import (
    CANDLES_MAX,
    INTERVALS_MIN,
    Candle,
    Candles,
    CandleSeries,
    div_round_half_even,
    ohlc_rest_row,
    ohlc_ws_fields,
    vwap_ticks,
)

NS = 1_000_000_000
T0_S = 1_688_671_200  # 2023-07-06 19:20:00 UTC, a multiple of 240 minutes


def ns(seconds: int, fraction_ns: int = 0) -> int:
    return seconds * NS + fraction_ns


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (10, 4, 2), (11, 4, 3), (9, 4, 2), (0, 3, 0), (2, 3, 1)],
)
def test_half_even_division(numerator: int, denominator: int, expected: int) -> None:
    assert div_round_half_even(numerator, denominator) == expected


def test_vwap_is_rounded_half_even_from_the_exact_ratio() -> None:
    assert vwap_ticks(cost_raw=100 + 101, volume_lots=2) == 100  # 100.5 -> 100
    assert vwap_ticks(cost_raw=101 + 102, volume_lots=2) == 102  # 101.5 -> 102
    assert vwap_ticks(cost_raw=100 * 2 + 101, volume_lots=3) == 100  # 100.33
    assert vwap_ticks(cost_raw=100 + 101 * 2, volume_lots=3) == 101  # 100.67
    assert vwap_ticks(cost_raw=0, volume_lots=0) == 0


def test_trades_split_on_the_interval_boundary() -> None:
    series = CandleSeries(1)
    series.add_trade(ns(T0_S + 59, 999_999_999), 300, 1)
    current = series.add_trade(ns(T0_S + 60), 310, 2)
    assert current.start_s == T0_S + 60
    candles, last = series.view(None, now_ns=ns(T0_S + 61))
    assert [c.start_s for c in candles] == [T0_S, T0_S + 60]
    assert last == T0_S
    assert (candles[0].open_ticks, candles[0].close_ticks, candles[0].volume_lots) == (300, 300, 1)
    assert (candles[1].open_ticks, candles[1].count, candles[1].cost_raw) == (310, 1, 620)


def test_one_candle_aggregates_open_high_low_close_volume_count() -> None:
    series = CandleSeries(5)
    for offset, price, lots in [(0, 100, 1), (10, 120, 2), (20, 90, 3), (299, 110, 4)]:
        series.add_trade(ns(T0_S + offset), price, lots)
    (candle,), last = series.view(None, now_ns=ns(T0_S + 299))
    assert candle == Candle(T0_S, 100, 120, 90, 110, 10, 100 + 240 + 270 + 440, 4)
    assert candle.vwap_ticks == 105  # 1050 / 10
    assert last == T0_S  # nothing committed yet: the current candle's start


@pytest.mark.parametrize("interval", INTERVALS_MIN)
def test_every_interval_aligns_to_the_epoch(interval: int) -> None:
    time_s = 1_700_000_123
    candle = CandleSeries(interval).add_trade(ns(time_s), 1, 1)
    assert candle.start_s % (interval * 60) == 0
    assert candle.start_s <= time_s < candle.start_s + interval * 60


def test_weekly_candles_start_on_thursday_midnight() -> None:
    candle = CandleSeries(10080).add_trade(ns(1_700_000_000), 1, 1)  # Tue 2023-11-14
    start = datetime.fromtimestamp(candle.start_s, tz=UTC)
    assert (start.weekday(), start.hour, start.minute) == (3, 0, 0)
    assert start.day == 9


def test_quiet_intervals_become_flat_candles_at_the_previous_close() -> None:
    series = CandleSeries(1)
    series.add_trade(ns(T0_S), 100, 1)
    series.add_trade(ns(T0_S + 30), 105, 1)
    series.add_trade(ns(T0_S + 180), 90, 2)
    candles, last = series.view(None, now_ns=ns(T0_S + 200))
    assert [c.start_s for c in candles] == [T0_S + 60 * k for k in range(4)]
    assert candles[1] == Candle.flat(T0_S + 60, 105)
    assert candles[2] == Candle.flat(T0_S + 120, 105)
    assert (candles[1].volume_lots, candles[1].count, candles[1].vwap_ticks) == (0, 0, 0)
    assert (candles[3].open_ticks, candles[3].low_ticks) == (90, 90)  # its own first trade
    assert last == T0_S + 120


def test_the_current_candle_follows_the_clock_without_changing_the_series() -> None:
    series = CandleSeries(1)
    series.add_trade(ns(T0_S + 5), 100, 1)
    candles, last = series.view(None, now_ns=ns(T0_S + 60 * 3 + 1))
    assert [c.start_s for c in candles] == [T0_S, T0_S + 60, T0_S + 120, T0_S + 180]
    assert candles[-1] == Candle.flat(T0_S + 180, 100)
    assert last == T0_S + 120
    current = series.current(ns(T0_S + 60 * 3 + 1))
    assert current == Candle.flat(T0_S + 180, 100)
    again, _ = series.view(None, now_ns=ns(T0_S + 10))
    assert [c.start_s for c in again] == [T0_S]  # the query did not commit anything
    series.add_trade(ns(T0_S + 61), 101, 1)  # so a trade in the next minute still fits


def test_since_is_inclusive_and_the_current_candle_is_always_last() -> None:
    series = CandleSeries(1)
    for k in range(5):
        series.add_trade(ns(T0_S + 60 * k), 100 + k, 1)
    candles, last = series.view(T0_S + 120, now_ns=ns(T0_S + 60 * 4))
    assert [c.start_s for c in candles] == [T0_S + 120, T0_S + 180, T0_S + 240]
    assert last == T0_S + 180
    polled, _ = series.view(last, now_ns=ns(T0_S + 60 * 4))
    assert [c.start_s for c in polled] == [T0_S + 180, T0_S + 240]
    future, _ = series.view(T0_S + 10_000, now_ns=ns(T0_S + 60 * 4))
    assert [c.start_s for c in future] == [T0_S + 240]


def test_at_most_720_candles_are_kept_and_returned() -> None:
    series = CandleSeries(1)
    minutes = 1000
    for k in range(minutes):
        series.add_trade(ns(T0_S + 60 * k), 1000 + k, 1)
    candles, last = series.view(0, now_ns=ns(T0_S + 60 * (minutes - 1)))
    assert len(candles) == CANDLES_MAX == 720
    assert candles[-1].start_s == T0_S + 60 * (minutes - 1)
    assert candles[0].start_s == T0_S + 60 * (minutes - CANDLES_MAX)
    assert last == candles[-2].start_s
    later, _ = series.view(0, now_ns=ns(T0_S + 60 * (minutes + 5)))
    assert len(later) == CANDLES_MAX
    assert later[-1] == Candle.flat(T0_S + 60 * (minutes + 5), 1000 + minutes - 1)


def test_a_long_silence_costs_at_most_the_cap() -> None:
    series = CandleSeries(1)
    series.add_trade(ns(T0_S), 100, 1)
    ten_years_s = 10 * 365 * 86_400
    candles, _ = series.view(None, now_ns=ns(T0_S + ten_years_s))
    assert len(candles) == CANDLES_MAX
    series.add_trade(ns(T0_S + ten_years_s), 200, 1)
    candles, last = series.view(None, now_ns=ns(T0_S + ten_years_s))
    assert len(candles) == CANDLES_MAX
    assert candles[-1].open_ticks == 200
    assert all(c.close_ticks == 100 and c.count == 0 for c in candles[:-1])
    assert last == candles[-1].start_s - 60


def test_no_trades_means_no_candles() -> None:
    series = CandleSeries(60)
    assert series.view(None, now_ns=ns(T0_S)) == ([], 0)
    assert series.current(ns(T0_S)) is None


def test_trades_out_of_time_order_are_refused() -> None:
    series = CandleSeries(1)
    series.add_trade(ns(T0_S + 120), 100, 1)
    with pytest.raises(AssertionError, match="time order"):
        series.add_trade(ns(T0_S), 100, 1)


def test_candles_feeds_every_interval() -> None:
    candles = Candles()
    candles.add_trade(ns(T0_S + 30), 100, 1)
    candles.add_trade(ns(T0_S + 90), 102, 3)
    assert len(candles[1].view(None, ns(T0_S + 90))[0]) == 2
    (day,), _ = candles[1440].view(None, ns(T0_S + 90))
    assert (day.open_ticks, day.close_ticks, day.volume_lots, day.count) == (100, 102, 4, 2)


def test_rest_row_matches_kraken_layout() -> None:
    candle = Candle(1688671200, 303061, 303062, 303057, 303057, 339243896, 303061 * 339243896, 23)
    row = ohlc_rest_row(candle, pair_decimals=1, lot_decimals=8)
    assert row == [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.39243896", 23]
    assert msgspec.json.encode(row) == (
        b'[1688671200,"30306.1","30306.2","30305.7","30305.7","30306.1","3.39243896",23]'
    )


def test_ws_fields_keep_precision_and_begin_in_nanoseconds() -> None:
    candle = Candle(1715944320, 302780, 302780, 302613, 302613, 1331603062, 302701 * 1331603062, 9)
    fields = ohlc_ws_fields(candle, 1, pair_decimals=2, lot_decimals=8)
    encoded = msgspec.json.Encoder(decimal_format="number").encode(fields)
    assert encoded == (
        b'{"open":3027.80,"high":3027.80,"low":3026.13,"close":3026.13,"trades":9,'
        b'"volume":13.31603062,"vwap":3027.01,"interval_begin":"2024-05-17T11:12:00.000000000Z","interval":1}'
    )
