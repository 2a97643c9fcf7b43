"""Rate limits: Kraken's REST call counter and per-pair trading counter, decaying exactly over time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abyssal.gateway import ratelimit
from abyssal.gateway.ratelimit import (
    CALL_TIER_INTERMEDIATE,
    CALL_TIER_PRO,
    CALL_TIER_STARTER,
    CALL_TIERS,
    TRADING_TIER_INTERMEDIATE,
    TRADING_TIER_PRO,
    TRADING_TIER_STARTER,
    TRADING_TIERS,
    CallCounter,
    CallTier,
    TradeAction,
    TradingCounter,
    TradingTier,
    call_cost,
    trading_cost,
)

S = 10**9  # ns per second
MICRO = 10**6  # micro-counts per count


def test_all_names_exist() -> None:
    for name in ratelimit.__all__:
        assert hasattr(ratelimit, name), name
    assert ratelimit.RATE_LIMIT_EXCEEDED == "EAPI:Rate limit exceeded"
    assert ratelimit.TRADING_RATE_LIMIT_EXCEEDED == "EOrder:Rate limit exceeded"


def test_tiers_match_kraken() -> None:
    assert (CALL_TIER_STARTER.count_max, CALL_TIER_STARTER.decay_micro_per_s) == (15, 330_000)
    assert (CALL_TIER_INTERMEDIATE.count_max, CALL_TIER_INTERMEDIATE.decay_micro_per_s) == (20, 500_000)
    assert (CALL_TIER_PRO.count_max, CALL_TIER_PRO.decay_micro_per_s) == (20, 1_000_000)
    assert (TRADING_TIER_STARTER.threshold, TRADING_TIER_STARTER.decay_micro_per_s) == (60, 1_000_000)
    assert (TRADING_TIER_INTERMEDIATE.threshold, TRADING_TIER_INTERMEDIATE.decay_micro_per_s) == (
        125,
        2_340_000,
    )
    assert (TRADING_TIER_PRO.threshold, TRADING_TIER_PRO.decay_micro_per_s) == (180, 3_750_000)
    assert set(CALL_TIERS) == set(TRADING_TIERS) == {"starter", "intermediate", "pro"}


# --- REST call counter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "cost"),
    [
        ("Ledgers", 2),
        ("QueryLedgers", 2),
        ("TradesHistory", 2),
        ("QueryTrades", 2),
        ("Balance", 1),
        ("BalanceEx", 1),
        ("OpenOrders", 1),
        ("CancelAllOrdersAfter", 1),
        ("GetWebSocketsToken", 1),
        ("AddOrder", 0),
        ("AddOrderBatch", 0),
        ("AmendOrder", 0),
        ("EditOrder", 0),
        ("CancelOrder", 0),
        ("CancelOrderBatch", 0),
        ("CancelAll", 0),
    ],
)
def test_call_costs(endpoint: str, cost: int) -> None:
    assert call_cost(endpoint) == cost


def test_starter_burst_then_refusal() -> None:
    counter = CallCounter(CALL_TIER_STARTER)
    assert all(counter.try_spend("k", 1, 0) for _ in range(15))
    assert not counter.try_spend("k", 1, 0)
    assert counter.try_spend("k", 0, 0)  # trading calls cost nothing here
    assert counter.try_spend("other", 1, 0)  # per key
    assert counter.level_micro("k", 0) == 15 * MICRO


def test_decay_is_exact_to_the_nanosecond() -> None:
    # One count at 0.33/s decays in 3.0303... s: 3_030_303_031 ns is the first instant with room for a call.
    for now_ns, allowed in [(3_030_303_030, False), (3_030_303_031, True)]:
        counter = CallCounter(CALL_TIER_STARTER)
        for _ in range(15):
            assert counter.try_spend("k", 1, 0)
        assert counter.try_spend("k", 1, now_ns) is allowed


def test_level_decays_lazily() -> None:
    counter = CallCounter(CALL_TIER_STARTER)
    for _ in range(3):
        counter.try_spend("k", 1, 0)
    assert counter.level_micro("k", 0) == 3 * MICRO
    assert counter.level_micro("k", 1 * S) == 3 * MICRO - 330_000
    assert counter.level_micro("k", 10 * S) == 0
    assert counter.level_micro("k", 100 * S) == 0  # never negative


@pytest.mark.parametrize(("endpoint", "allowed"), [("TradesHistory", False), ("Balance", True)])
def test_history_calls_cost_two(endpoint: str, allowed: bool) -> None:
    counter = CallCounter(CALL_TIER_STARTER)
    assert all(counter.try_spend("k", call_cost("Ledgers"), 0) for _ in range(7))  # 14
    assert counter.try_spend("k", call_cost(endpoint), 0) is allowed  # 16 > 15, 15 <= 15


def test_hammering_keeps_failing_and_stopping_recovers() -> None:
    counter = CallCounter(CALL_TIER_PRO)  # 20, -1/s
    assert all(counter.try_spend("k", 1, 0) for _ in range(20))
    # A refused call pins the level at the maximum, so calling every half second never gets through.
    assert not any(counter.try_spend("k", 1, t * S // 2) for t in range(1, 20))
    assert counter.try_spend("k", 1, 19 * S // 2 + S)  # one quiet second after the last try


@pytest.mark.parametrize(("tier", "seconds_per_call"), [(CALL_TIER_INTERMEDIATE, 2), (CALL_TIER_PRO, 1)])
def test_sustained_rate_equals_decay(tier: CallTier, seconds_per_call: int) -> None:
    counter = CallCounter(tier)
    assert all(counter.try_spend("k", 1, 0) for _ in range(tier.count_max))
    for n in range(1, 50):
        assert counter.try_spend("k", 1, n * seconds_per_call * S)
    assert not counter.try_spend("k", 1, 49 * seconds_per_call * S)


def test_clock_stepping_back_neither_decays_nor_rewinds() -> None:
    counter = CallCounter(CALL_TIER_PRO)
    assert all(counter.try_spend("k", 1, 10 * S) for _ in range(20))
    assert not counter.try_spend("k", 1, 5 * S)
    assert counter.level_micro("k", 5 * S) == 20 * MICRO
    assert counter.level_micro("k", 10 * S) == 20 * MICRO  # the 5 s stamp was not stored
    assert counter.try_spend("k", 1, 11 * S)  # decay counted from 10 s, not from 5 s


def test_disabled_call_counter_allows_everything() -> None:
    counter = CallCounter(CALL_TIER_STARTER, enabled=False)
    assert all(counter.try_spend("k", 2, 0) for _ in range(1_000))
    assert counter.level_micro("k", 0) == 0


def test_prune_forgets_idle_keys() -> None:
    counter = CallCounter(CALL_TIER_PRO)
    counter.try_spend("a", 5, 0)
    counter.try_spend("b", 1, 0)
    assert counter.prune(2 * S) == 1
    assert counter.level_micro("a", 2 * S) == 3 * MICRO


@given(st.lists(st.tuples(st.integers(0, 5 * S), st.integers(0, 3)), max_size=60))
def test_call_counter_stays_within_bounds(steps: list[tuple[int, int]]) -> None:
    counter = CallCounter(CALL_TIER_STARTER)
    now_ns = 0
    for delta_ns, cost in steps:
        now_ns += delta_ns
        before = counter.level_micro("k", now_ns)
        allowed = counter.try_spend("k", cost, now_ns)
        after = counter.level_micro("k", now_ns)
        assert 0 <= after <= 15 * MICRO
        if before + cost * MICRO != 15 * MICRO:  # at exactly 15 the sub-micro remainder decides
            assert allowed == (before + cost * MICRO < 15 * MICRO)
        assert after == (before + cost * MICRO if allowed else 15 * MICRO)


# --- trading counter ------------------------------------------------------------------------------

KRAKEN_TABLE = {
    # action: (fixed, [<5s, <10s, <15s, <45s, <90s, <300s, >=300s])
    TradeAction.ADD: (1, [0, 0, 0, 0, 0, 0, 0]),
    TradeAction.AMEND: (1, [3, 2, 1, 0, 0, 0, 0]),
    TradeAction.EDIT: (1, [6, 5, 4, 2, 1, 0, 0]),
    TradeAction.CANCEL: (0, [8, 6, 5, 4, 2, 1, 0]),
}
BUCKET_EDGES_S = [0, 5, 10, 15, 45, 90, 300]


@pytest.mark.parametrize("action", list(TradeAction))
def test_trading_cost_table(action: TradeAction) -> None:
    fixed, by_age = KRAKEN_TABLE[action]
    for bucket, start_s in enumerate(BUCKET_EDGES_S):
        assert trading_cost(action, start_s * S) == (fixed, by_age[bucket])
        if bucket > 0:
            assert trading_cost(action, start_s * S - 1) == (fixed, by_age[bucket - 1])
    assert trading_cost(action, 10**6 * S) == (fixed, by_age[-1])
    assert trading_cost(action, -S) == (fixed, by_age[0])  # skewed clocks count as brand new


def test_kraken_documented_example() -> None:
    # Add, amend after 7 s, cancel 36 s after the amend: 1 + (1 + 2) + 4 = 8 (decay made negligible).
    counter = TradingCounter(TradingTier(threshold=60, decay_micro_per_s=1))
    assert counter.on_add("acct", "XXBTZUSD", 0)
    assert counter.on_amend("acct", "XXBTZUSD", age_ns=7 * S, now_ns=7 * S)
    assert counter.on_cancel("acct", "XXBTZUSD", age_ns=36 * S, now_ns=43 * S)
    assert counter.level_micro("acct", "XXBTZUSD", 43 * S) == 8 * MICRO - 43


def test_threshold_and_fixed_cost_paid_even_when_refused() -> None:
    counter = TradingCounter(TRADING_TIER_STARTER)
    assert all(counter.on_add("a", "P", 0) for _ in range(60))
    assert not counter.on_add("a", "P", 0)
    assert counter.level_micro("a", "P", 0) == 61 * MICRO  # the refused add still cost 1
    assert not counter.on_add("a", "P", 1 * S)  # 60 + 1 > 60
    assert counter.on_add("a", "P", 3 * S)  # 61 - 2 + 1 = 60: at the threshold is not over it
    assert counter.on_add("a", "OTHER", 0)  # per pair
    assert counter.on_add("b", "P", 0)  # per account


def test_age_cost_is_charged_only_when_allowed() -> None:
    counter = TradingCounter(TradingTier(threshold=60, decay_micro_per_s=1))
    for _ in range(55):
        counter.on_add("a", "P", 0)
    assert not counter.on_cancel("a", "P", age_ns=1 * S, now_ns=0)  # 55 + 8 > 60
    assert counter.level_micro("a", "P", 0) == 55 * MICRO
    assert counter.on_cancel("a", "P", age_ns=20 * S, now_ns=0)  # 55 + 4 = 59
    assert not counter.on_amend("a", "P", age_ns=1 * S, now_ns=0)  # 59 + 1 + 3 > 60
    assert counter.level_micro("a", "P", 0) == 60 * MICRO  # but the amend's fixed 1 was paid
    assert counter.on_cancel("a", "P", age_ns=400 * S, now_ns=0)  # old orders cancel for free
    assert not counter.on_edit("a", "P", age_ns=400 * S, now_ns=0)  # 60 + 1 > 60


def test_batches() -> None:
    counter = TradingCounter(TradingTier(threshold=60, decay_micro_per_s=1))
    assert counter.on_batch_add("a", "P", 15, 0)
    assert counter.level_micro("a", "P", 0) == 7_500_000  # n/2
    counter.on_batch_cancel(
        "a", "P", [0, 6 * S, 100 * S, 400 * S] * 10, 0
    )  # (8 + 6 + 1 + 0) * 10, never refused
    assert counter.level_micro("a", "P", 0) == 157_500_000
    assert not counter.on_batch_add("a", "P", 2, 0)
    assert not counter.on_add("a", "P", 0)


def test_trading_decay_per_tier() -> None:
    for tier in (TRADING_TIER_STARTER, TRADING_TIER_INTERMEDIATE, TRADING_TIER_PRO):
        counter = TradingCounter(tier)
        for _ in range(tier.threshold):
            assert counter.on_add("a", "P", 0)
        assert not counter.on_add("a", "P", 0)
        level_micro = (tier.threshold + 1) * MICRO
        assert counter.level_micro("a", "P", 10 * S) == level_micro - 10 * tier.decay_micro_per_s


def test_disabled_trading_counter_allows_everything() -> None:
    counter = TradingCounter(TRADING_TIER_STARTER, enabled=False)
    assert all(counter.on_cancel("a", "P", 0, 0) for _ in range(1_000))
    counter.on_batch_cancel("a", "P", [0] * 50, 0)
    assert counter.level_micro("a", "P", 0) == 0
    assert counter.prune(0) == 0


@given(
    st.lists(
        st.tuples(st.integers(0, 3 * S), st.sampled_from(list(TradeAction)), st.integers(-S, 400 * S)),
        max_size=80,
    )
)
def test_trading_counter_never_negative_and_allowed_stays_under(
    steps: list[tuple[int, TradeAction, int]],
) -> None:
    counter = TradingCounter(TRADING_TIER_STARTER)
    handlers = {
        TradeAction.AMEND: counter.on_amend,
        TradeAction.EDIT: counter.on_edit,
        TradeAction.CANCEL: counter.on_cancel,
    }
    now_ns = 0
    for delta_ns, action, age_ns in steps:
        now_ns += delta_ns
        before = counter.level_micro("a", "P", now_ns)
        if action is TradeAction.ADD:
            allowed = counter.on_add("a", "P", now_ns)
        else:
            allowed = handlers[action]("a", "P", age_ns, now_ns)
        after = counter.level_micro("a", "P", now_ns)
        fixed, by_age = trading_cost(action, age_ns)
        assert after >= 0
        assert after == before + (fixed + (by_age if allowed else 0)) * MICRO
        if allowed:
            assert after <= 60 * MICRO
