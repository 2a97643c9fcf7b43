"""Business-day cutoffs from a calendar table (ledger-notes 6.5 T1-T3): DST, weekends, holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abyssal.runtime.calendar import CalendarMissing, cutoff_ns, to_ns, weekend_rows, window

NY = ZoneInfo("America/New_York")
CUTOFF_17 = 17 * 60


def days(first: date, last: date, holidays: tuple[date, ...] = ()) -> dict[date, bool]:
    table = {date.fromisoformat(d): bool(b) for d, b, _ in weekend_rows(first, last)}
    for h in holidays:
        table[h] = False
    return table


TABLE = days(date(2026, 1, 1), date(2026, 12, 31), holidays=(date(2026, 11, 26),))  # Thanksgiving


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> int:
    return to_ns(datetime(y, m, d, hh, mm, tzinfo=NY))


def test_the_limit_resets_exactly_at_the_cutoff() -> None:
    cut = ny(2026, 3, 10, 17)
    before = window(cut - 1, NY, CUTOFF_17, TABLE)
    at = window(cut, NY, CUTOFF_17, TABLE)
    assert before[1] == cut and at[0] == cut
    assert at[1] == ny(2026, 3, 11, 17)


def test_windows_across_the_spring_dst_change_are_23_hours_long_over_the_weekend() -> None:
    # Friday 2026-03-06 17:00 EST (22:00Z) to Monday 2026-03-09 17:00 EDT (21:00Z): DST began Sunday
    start, end = window(ny(2026, 3, 7, 12), NY, CUTOFF_17, TABLE)
    assert start == to_ns(datetime(2026, 3, 6, 22, tzinfo=UTC))
    assert end == to_ns(datetime(2026, 3, 9, 21, tzinfo=UTC))
    assert end - start == (3 * 24 - 1) * 3600 * 10**9


def test_windows_across_the_autumn_dst_change_and_a_holiday() -> None:
    start, end = window(ny(2026, 11, 1, 1, 30), NY, CUTOFF_17, TABLE)  # inside the fold
    assert start == to_ns(datetime(2026, 10, 30, 21, tzinfo=UTC))  # Friday 17:00 EDT
    assert end == to_ns(datetime(2026, 11, 2, 22, tzinfo=UTC))  # Monday 17:00 EST
    # Thanksgiving (Thursday) is closed: Wednesday's cutoff to Friday's
    start, end = window(ny(2026, 11, 26, 9), NY, CUTOFF_17, TABLE)
    assert (start, end) == (ny(2026, 11, 25, 17), ny(2026, 11, 27, 17))


def test_a_cutoff_inside_the_dst_gap_uses_the_offset_before_it() -> None:
    # 02:30 does not exist in New York on 2026-03-08 (a Sunday: make it a business day here)
    table = dict(TABLE) | {date(2026, 3, 8): True}
    assert cutoff_ns(date(2026, 3, 8), NY, 150) == to_ns(datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    _, end = window(ny(2026, 3, 8, 1), NY, 150, table)
    assert end == to_ns(datetime(2026, 3, 8, 7, 30, tzinfo=UTC))


def test_a_missing_calendar_row_is_an_error_never_a_business_day() -> None:
    table = dict(TABLE)
    del table[date(2026, 3, 10)]
    with pytest.raises(CalendarMissing, match="2026-03-10"):
        window(ny(2026, 3, 10, 9), NY, CUTOFF_17, table)


def test_the_host_time_zone_plays_no_part(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    expected = window(ny(2026, 6, 1, 12), NY, CUTOFF_17, TABLE)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        assert window(ny(2026, 6, 1, 12), NY, CUTOFF_17, TABLE) == expected
    finally:
        monkeypatch.undo()
        time.tzset()


def slow_next_cutoff(t_ns: int, zone: ZoneInfo, minute: int, table: dict[date, bool]) -> int:
    """Reference: walk forward minute by minute in UTC until a business day's wall clock hits the cutoff."""
    moment = datetime.fromtimestamp(t_ns // 10**9, tz=UTC).replace(second=0) + timedelta(minutes=1)
    while True:
        local = moment.astimezone(zone)
        if local.hour * 60 + local.minute == minute and table[local.date()] and to_ns(moment) > t_ns:
            return to_ns(moment)
        moment += timedelta(minutes=1)


@settings(deadline=None)  # the slow reference walks minutes: on a shared 2-core host 200 ms is not a bound
@given(
    st.datetimes(min_value=datetime(2026, 2, 1), max_value=datetime(2026, 11, 30)),
    st.sampled_from(["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata"]),
)
def test_the_window_end_matches_a_slow_reference(moment: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    t_ns = to_ns(moment.replace(tzinfo=UTC))
    start, end = window(t_ns, zone, CUTOFF_17, TABLE)
    assert start <= t_ns < end
    assert end == slow_next_cutoff(t_ns, zone, CUTOFF_17, TABLE)
