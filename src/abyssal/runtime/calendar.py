"""Business-day cutoffs: which daily-limit window an instant falls in, from a calendar table.

A *business day* is a row of the calendar table with ``is_business = 1``; weekends and holidays
are rows with 0. Each business day closes at its cutoff, a wall-clock time in a named zone
(``zoneinfo``). The window an instant ``t`` belongs to ends at the first cutoff strictly after
``t`` and starts at the cutoff before it, so a limit resets exactly at the cutoff instant. Nothing
here reads the clock or the host's zone, and nothing assumes a day is a business day: a day the
window needs but the table lacks is a ``CalendarMissing`` error (ledger-notes 6.5, T3).

A cutoff that falls in a DST gap (a wall time that does not exist that day) resolves with
``fold=0``, i.e. with the offset in force before the transition; an ambiguous one (a fold) is its
first occurrence. Both are what ``zoneinfo`` does, stated here so that nobody computes it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEARCH_DAYS_MAX = 31  # the longest run of non-business days a window may span
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CalendarMissing(LookupError):
    """The calendar table has no row for a day the window needs."""

    def __init__(self, calendar: str, day: date) -> None:
        super().__init__(f"business calendar {calendar!r} has no entry for {day.isoformat()}")
        self.calendar = calendar
        self.day = day


def to_ns(moment: datetime) -> int:
    assert moment.tzinfo is not None, "naive datetimes are never used for cutoffs"
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def local_day(t_ns: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(t_ns // 10**9, tz=UTC).astimezone(zone).date()


def cutoff_ns(day: date, zone: ZoneInfo, cutoff_minute: int) -> int:
    """The instant the business day ``day`` closes."""
    assert 0 <= cutoff_minute < 24 * 60
    wall = datetime.combine(day, time(cutoff_minute // 60, cutoff_minute % 60), tzinfo=zone)
    return to_ns(wall.astimezone(UTC))


def days_needed(t_ns: int, zone: ZoneInfo) -> tuple[date, date]:
    """The range of calendar rows ``window`` may consult for ``t_ns`` (inclusive)."""
    d = local_day(t_ns, zone)
    return d - timedelta(days=SEARCH_DAYS_MAX + 1), d + timedelta(days=SEARCH_DAYS_MAX + 1)


def _is_business(days: Mapping[date, bool], calendar: str, d: date) -> bool:
    value = days.get(d)
    if value is None:
        raise CalendarMissing(calendar, d)
    return value


def window(
    t_ns: int, zone: ZoneInfo, cutoff_minute: int, days: Mapping[date, bool], calendar: str = "default"
) -> tuple[int, int]:
    """[start_ns, end_ns): the business-day window that contains ``t_ns``."""
    d = local_day(t_ns, zone) - timedelta(days=1)  # yesterday's cutoff may still be ahead (late zones)
    end = None
    for _ in range(SEARCH_DAYS_MAX + 2):
        if _is_business(days, calendar, d) and cutoff_ns(d, zone, cutoff_minute) > t_ns:
            end = d
            break
        d += timedelta(days=1)
    if end is None:
        raise CalendarMissing(calendar, d)  # no business day within the bound: treat as missing
    prev = end - timedelta(days=1)
    for _ in range(SEARCH_DAYS_MAX + 1):
        if _is_business(days, calendar, prev):
            break
        prev -= timedelta(days=1)
    else:
        raise CalendarMissing(calendar, prev)
    start_ns, end_ns = cutoff_ns(prev, zone, cutoff_minute), cutoff_ns(end, zone, cutoff_minute)
    assert start_ns <= t_ns < end_ns, "the window must contain the instant"
    return start_ns, end_ns


def weekend_rows(first: date, last: date) -> list[tuple[str, int, str]]:
    """Seed rows for a calendar: Monday to Friday business, Saturday and Sunday not.

    Only used to *populate* the table (holidays are then edited in); the limit check reads the
    table, never this function.
    """
    rows = []
    d = first
    while d <= last:
        weekend = d.weekday() >= 5
        rows.append((d.isoformat(), 0 if weekend else 1, "weekend" if weekend else ""))
        d += timedelta(days=1)
    return rows
