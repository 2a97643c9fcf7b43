"""The public trades tape (REST Trades paging, WS rows) and the spread history."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abyssal.marketdata.trades_tape import (
    SPREAD_ROWS_MAX,
    TRADES_MAX,
    PublicTrade,
    SpreadTape,
    TradesTape,
    seconds_decimal,
    since_cursor_ns,
    spread_rest_row,
    trade_rest_row,
    trade_ws_fields,
    utc_timestamp_text,
)

NS = 1_000_000_000
T0_NS = 1_688_669_597_827_736_900


def trade(trade_id: int, time_ns: int, price: int = 100, volume: int = 1) -> PublicTrade:
    return PublicTrade(trade_id, time_ns, price, volume, "b", "l")


def tape_of(times_ns: list[int]) -> TradesTape:
    tape = TradesTape()
    for trade_id, time_ns in enumerate(times_ns, start=1):
        tape.record(trade(trade_id, time_ns))
    return tape


def test_the_ring_keeps_the_newest_1000() -> None:
    tape = tape_of([T0_NS + k for k in range(1500)])
    assert len(tape) == TRADES_MAX == 1000
    page, last = tape.since(None)
    assert [t.trade_id for t in page] == list(range(501, 1501))
    assert last == str(T0_NS + 1499)
    assert [t.trade_id for t in tape.recent(3)] == [1498, 1499, 1500]
    assert [t.trade_id for t in tape.since(None, count=2)[0]] == [1499, 1500]


def test_since_in_seconds_is_inclusive_and_the_cursor_exclusive() -> None:
    second = 1_700_000_000
    tape = tape_of([second * NS - 1, second * NS, second * NS + 5, (second + 1) * NS])
    assert since_cursor_ns(second) == second * NS - 1
    assert since_cursor_ns(second * NS) == second * NS
    page, last = tape.since(second)
    assert [t.trade_id for t in page] == [2, 3, 4]
    assert last == str((second + 1) * NS)
    page, _ = tape.since(second * NS)  # the same digits as a ns cursor: strictly after it
    assert [t.trade_id for t in page] == [3, 4]
    page, last = tape.since(int(last))
    assert page == []
    assert last == str((second + 1) * NS)  # nothing new: poll again with the same cursor


def test_a_page_never_splits_one_nanosecond() -> None:
    tape = tape_of([T0_NS, T0_NS + 1, T0_NS + 1, T0_NS + 1, T0_NS + 2])
    page, last = tape.since(T0_NS - 1, count=3)
    assert [t.trade_id for t in page] == [1]  # 2, 3, 4 share a nanosecond
    page, last = tape.since(int(last), count=2)
    assert [t.trade_id for t in page] == [2, 3, 4]  # one group longer than count comes whole
    page, last = tape.since(int(last), count=2)
    assert [t.trade_id for t in page] == [5]


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0, 0, 1, 7, NS]), min_size=0, max_size=120),
    count=st.integers(1, 10),
)
def test_paging_with_last_returns_every_trade_once(gaps: list[int], count: int) -> None:
    times = []
    time_ns = T0_NS
    for gap in gaps:
        time_ns += gap
        times.append(time_ns)
    tape = tape_of(times)
    seen: list[int] = []
    cursor = str(T0_NS - 1)
    for _ in range(len(times) + 1):
        page, cursor = tape.since(int(cursor), count=count)
        if not page:
            break
        seen.extend(t.trade_id for t in page)
        assert page[-1].time_ns == int(cursor)
    assert seen == list(range(1, len(times) + 1))


def test_rest_row_time_is_exact_decimal_seconds() -> None:
    row = trade_rest_row(PublicTrade(61044952, T0_NS, 302434, 34507674, "b", "m"), 1, 8)
    assert row == ["30243.4", "0.34507674", Decimal("1688669597.827736900"), "b", "m", "", 61044952]
    encoded = msgspec.json.Encoder(decimal_format="number").encode(row)
    assert encoded == b'["30243.4","0.34507674",1688669597.827736900,"b","m","",61044952]'
    assert seconds_decimal(5) == Decimal("0.000000005")


def test_ws_fields() -> None:
    fields = trade_ws_fields(PublicTrade(70635299, 1716813791798009123, 685000, 1044926, "s", "l"), 1, 8)
    assert fields == {
        "side": "sell",
        "price": Decimal("68500.0"),
        "qty": Decimal("0.01044926"),
        "ord_type": "limit",
        "trade_id": 70635299,
        "timestamp": "2024-05-27T12:43:11.798009Z",
    }
    assert str(fields["price"]) == "68500.0"


def test_utc_timestamp_text() -> None:
    assert utc_timestamp_text(1715944320 * NS, 9) == "2024-05-17T11:12:00.000000000Z"
    assert utc_timestamp_text(1715944320 * NS + 999_999_999, 6) == "2024-05-17T11:12:00.999999Z"
    assert utc_timestamp_text(0, 0) == "1970-01-01T00:00:00Z"


def test_trades_must_arrive_in_order() -> None:
    tape = tape_of([T0_NS])
    with pytest.raises(AssertionError, match="ids"):
        tape.record(trade(1, T0_NS + 1))
    with pytest.raises(AssertionError, match="times"):
        tape.record(trade(2, T0_NS - 1))


def test_spread_records_only_changes_of_both_sides() -> None:
    spread = SpreadTape()
    assert spread.record(10 * NS, 100, 105)
    assert not spread.record(11 * NS, 100, 105)  # unchanged touch
    assert not spread.record(12 * NS, None, 105)  # one-sided book
    assert spread.record(13 * NS, 101, 105)
    assert spread.record(13 * NS + 5, 101, 104)
    rows, last = spread.since(None)
    assert [spread_rest_row(r, 1) for r in rows] == [
        [10, "10.0", "10.5"],
        [13, "10.1", "10.5"],
        [13, "10.1", "10.4"],
    ]
    assert last == 13
    rows, last = spread.since(13)
    assert len(rows) == 2  # since is inclusive: the same second again
    rows, last = spread.since(20)
    assert (rows, last) == ([], 20)


def test_spread_keeps_the_newest_200() -> None:
    spread = SpreadTape()
    for k in range(500):
        spread.record(k * NS, 100 + k, 1000 + k)
    rows, last = spread.since(None)
    assert len(rows) == SPREAD_ROWS_MAX == 200
    assert rows[0].bid_ticks == 400
    assert last == 499
