"""An account's balances, its 30-day volume by day, the fee tier a volume reaches (searched, and
remembered per account by ``Account.tier_of``), and a fee's raw product (``times_ppm``: one machine
multiply when compiled).

The engine keeps each balance as two native fields and the current day's volume apart from the
closed days; these tests pin down that the account still reads, snapshots and restores exactly
as one map of days and two lists of amounts would.
"""

from __future__ import annotations

from bisect import bisect_right

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abyssal.core.accounts import DAY_NS, FEE_WINDOW_DAYS, Account
from abyssal.core.instruments import PPM, FeeSchedule, FeeTier, times_ppm

DAY0 = 19_700  # a day number near the engine's epoch of use


def test_balance_lists_are_copies_of_the_fields() -> None:
    a = Account(7, 3, {}, 1)
    a.credit(1, 500)
    a.hold(1, 200)
    a.debit_held(1, 50)
    assert (a.total, a.held) == ([0, 450, 0], [0, 150, 0])
    assert a.available(1) == 300
    a.total[1] = 10**9  # a copy: writing it changes nothing
    assert a.bal[1].total == 450
    with pytest.raises(AssertionError, match="hold beyond available"):
        a.hold(1, 301)
    with pytest.raises(AssertionError, match="release beyond held"):
        a.release(1, 151)


def _model_add(days: dict[int, int], day: int, volume: int) -> int:
    """The per-day map as a plain dict would keep it; returns the 30-day sum."""
    for d in [d for d in days if d < day - FEE_WINDOW_DAYS + 1]:
        del days[d]
    days[day] = days.get(day, 0) + volume
    return sum(days.values())


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**12)), min_size=1, max_size=60))
def test_volume_by_day_matches_a_plain_map(steps: list[tuple[int, int]]) -> None:
    a = Account(1, 1, {}, 1)
    model: dict[int, int] = {}
    day = DAY0
    for gap, volume in steps:
        day += gap * gap * 4  # stays, moves a few days, or leaves the window (36 days)
        a.add_volume(day * DAY_NS + 5, volume)
        assert a.vol30 == _model_add(model, day, volume)
        assert a.volume_days() == model  # a fill of 0 still records its day, as the map does
        assert a.volume_at(day * DAY_NS) == a.vol30
        assert a.volume_in_window(day * DAY_NS) == sum(model.values())
        b = Account(1, 1, {}, 1)
        b.set_volume_days(a.volume_days(), a.cur_day)
        b.vol30 = a.vol30
        assert (b.volume_days(), b.vol_days, b.vol_today) == (model, a.vol_days, a.vol_today)


def test_a_new_day_closes_the_last_one() -> None:
    a = Account(1, 1, {}, 1)
    a.add_volume(DAY0 * DAY_NS, 0)
    assert (a.vol_days, a.vol_today, a.volume_days()) == ({}, 0, {DAY0: 0})
    a.add_volume((DAY0 + 1) * DAY_NS, 30)
    assert (a.vol_days, a.vol_today, a.volume_days()) == ({DAY0: 0}, 30, {DAY0: 0, DAY0 + 1: 30})
    a.roll(DAY0 + FEE_WINDOW_DAYS + 1)  # both days leave the window
    assert (a.volume_days(), a.vol30, a.vol_today) == ({}, 0, -1)


@given(
    st.lists(st.integers(1, 10**15), max_size=12, unique=True).map(sorted),
    st.lists(st.integers(-1, 10**15 + 1), min_size=1, max_size=30),
)
def test_fee_tier_is_the_highest_threshold_reached(rest: list[int], volumes: list[int]) -> None:
    thresholds = [0, *rest]
    fees = FeeSchedule(tuple(FeeTier(t, 10 + i, i) for i, t in enumerate(thresholds)))
    for v in [*volumes, *thresholds, *(t - 1 for t in thresholds)]:
        expected = max(bisect_right(thresholds, v) - 1, 0)
        assert fees.tier_index(v) == expected, v
        assert fees.rates_ppm(v) == (expected, 10 + expected)


@given(
    st.lists(st.lists(st.integers(1, 10**15), max_size=6, unique=True).map(sorted), min_size=1, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 2), st.integers(-1, 10**15 + 1) | st.sampled_from([2**62 - 1, 2**62, 2**63])
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_an_account_remembers_its_tier_only_while_the_volume_stays_in_it(
    schedules: list[list[int]], steps: list[tuple[int, int]]
) -> None:
    # several schedules (pairs may differ), volumes that rise, fall (a day leaving the window),
    # land on, just below and far from each threshold, and pass the cache's own bounds (2**62)
    fees = [FeeSchedule(tuple(FeeTier(t, i, i) for i, t in enumerate([0, *rest]))) for rest in schedules]
    a = Account(1, 2, {}, 1)
    for which, volume in steps:
        schedule = fees[which % len(fees)]
        for v in (volume, *schedule.thresholds, *(t - 1 for t in schedule.thresholds)):
            a.vol30 = v
            assert a.tier_of(schedule) == schedule.tier_index(v), (v, schedule.thresholds)


_EDGES = [0, 1, 2**30, 2**31, 2**40 - 1, 2**40, 2**40 + 1, 2**62, 2**63, 10**30]


@given(
    st.one_of(st.integers(-(2**41), 2**41), st.sampled_from(_EDGES + [-e for e in _EDGES]), st.integers()),
    st.one_of(st.integers(0, PPM), st.sampled_from([0, 1, 2**21 - 1, 2**21, 2**21 + 1, 2**40, 10**30])),
)
def test_times_ppm_is_the_exact_product(raw: int, ppm: int) -> None:
    # both sides of the native range (|raw| < 2**40, ppm < 2**21) and far beyond 64 bits
    assert times_ppm(raw, ppm) == raw * ppm
