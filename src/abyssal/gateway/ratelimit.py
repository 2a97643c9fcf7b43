"""Rate limits: Kraken's per-key REST call counter and per-pair trading counter, in integers.

Pure and deterministic: time arrives as ``now_ns``. Levels are kept in femto-counts (10**-15 of a
count), the unit in which a decay of ``decay_micro_per_s`` millionths of a count per second is exactly
``decay_micro_per_s`` per nanosecond, so lazy decay needs no division and loses nothing. A clock that
steps back decays nothing and is never stored. A disabled limiter allows everything and records nothing.

Answers for the REST layer: ``CallCounter.try_spend`` false -> ``EAPI:Rate limit exceeded``;
``TradingCounter.on_*`` false -> ``EOrder:Rate limit exceeded``.

- Call counter (doc §8.1; Kraken: "restricted ... longer if calls continue to be made"): a refused
  call does not add its cost but pins the level at the maximum, so hammering faster than the decay
  keeps failing and stopping recovers at the tier's decay rate.
- Trading counter (doc §8.2 and Kraken's "Spot Trading Limits" page): the fixed cost is paid on receipt
  even when refused; the age cost (by seconds since the order was created or last amended) only when
  the transaction is allowed. A transaction is refused when it would take the level over the threshold.
  Batch add pays n/2 fixed; batch cancel pays every order's age cost and is never refused.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

# fmt: off
__all__ = [
    "CALL_COST", "CALL_TIERS", "CALL_TIER_INTERMEDIATE", "CALL_TIER_PRO", "CALL_TIER_STARTER",
    "FCOUNT_PER_COUNT", "RATE_LIMIT_EXCEEDED", "TRADING_RATE_LIMIT_EXCEEDED", "TRADING_TIERS",
    "TRADING_TIER_INTERMEDIATE", "TRADING_TIER_PRO", "TRADING_TIER_STARTER", "CallCounter", "CallTier",
    "TradeAction", "TradingCounter", "TradingTier", "call_cost", "trading_cost",
]
# fmt: on

RATE_LIMIT_EXCEEDED = "EAPI:Rate limit exceeded"
TRADING_RATE_LIMIT_EXCEEDED = "EOrder:Rate limit exceeded"

FCOUNT_PER_COUNT = 10**15
_FCOUNT_PER_MICRO = 10**9
_NS_PER_S = 10**9

K = TypeVar("K", bound=Hashable)


class _Levels(Generic[K]):
    """Lazily decaying levels per key; an entry that has decayed to zero is dropped."""

    def __init__(self, decay_micro_per_s: int) -> None:
        assert decay_micro_per_s > 0, "a counter that never decays locks clients out forever"
        self._decay_fcount_per_ns = decay_micro_per_s  # see the module docstring for why this is exact
        self._entries: dict[K, tuple[int, int]] = {}  # key -> (level_fcount, updated_ns)

    def get(self, key: K, now_ns: int) -> int:
        entry = self._entries.get(key)
        if entry is None:
            return 0
        level_fcount, updated_ns = entry
        elapsed_ns = max(0, now_ns - updated_ns)
        return max(0, level_fcount - elapsed_ns * self._decay_fcount_per_ns)

    def put(self, key: K, level_fcount: int, now_ns: int) -> None:
        assert level_fcount >= 0, "levels never go negative"
        entry = self._entries.get(key)
        updated_ns = now_ns if entry is None else max(entry[1], now_ns)
        if level_fcount == 0:
            self._entries.pop(key, None)
        else:
            self._entries[key] = (level_fcount, updated_ns)

    def prune(self, now_ns: int) -> int:
        """Drop keys that have decayed to zero; returns how many remain."""
        for key in [key for key in self._entries if self.get(key, now_ns) == 0]:
            del self._entries[key]
        return len(self._entries)


# --- REST call counter ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallTier:
    count_max: int
    decay_micro_per_s: int  # millionths of a count per second

    def __post_init__(self) -> None:
        assert self.count_max > 0
        assert self.decay_micro_per_s > 0


CALL_TIER_STARTER = CallTier(count_max=15, decay_micro_per_s=330_000)
CALL_TIER_INTERMEDIATE = CallTier(count_max=20, decay_micro_per_s=500_000)
CALL_TIER_PRO = CallTier(count_max=20, decay_micro_per_s=1_000_000)
CALL_TIERS = {"starter": CALL_TIER_STARTER, "intermediate": CALL_TIER_INTERMEDIATE, "pro": CALL_TIER_PRO}

# Trading calls cost 0 here because the trading counter charges them (CancelAll: charge each cancelled
# order with TradingCounter.on_batch_cancel). Every private endpoint not listed costs 1.
CALL_COST: dict[str, int] = {
    "Ledgers": 2,
    "QueryLedgers": 2,
    "TradesHistory": 2,
    "QueryTrades": 2,
    "AddOrder": 0,
    "AddOrderBatch": 0,
    "AmendOrder": 0,
    "EditOrder": 0,
    "CancelOrder": 0,
    "CancelOrderBatch": 0,
    "CancelAll": 0,
}


def call_cost(endpoint: str) -> int:
    return CALL_COST.get(endpoint, 1)


class CallCounter:
    """Kraken's per-API-key REST call counter (doc §8.1)."""

    def __init__(self, tier: CallTier, *, enabled: bool = True) -> None:
        self.tier = tier
        self.enabled = enabled
        self._count_max_fcount = tier.count_max * FCOUNT_PER_COUNT
        self._levels: _Levels[str] = _Levels(tier.decay_micro_per_s)

    def try_spend(self, key: str, cost: int, now_ns: int) -> bool:
        assert cost >= 0, "costs are non-negative"
        if not self.enabled:
            return True
        level_fcount = self._levels.get(key, now_ns)
        spent_fcount = level_fcount + cost * FCOUNT_PER_COUNT
        allowed = spent_fcount <= self._count_max_fcount
        self._levels.put(key, spent_fcount if allowed else max(level_fcount, self._count_max_fcount), now_ns)
        assert self._levels.get(key, now_ns) <= max(level_fcount, self._count_max_fcount)
        return allowed

    def level_micro(self, key: str, now_ns: int) -> int:
        """The current level in millionths of a count (floor)."""
        return self._levels.get(key, now_ns) // _FCOUNT_PER_MICRO

    def prune(self, now_ns: int) -> int:
        return self._levels.prune(now_ns)


# --- trading (matching-engine) counter ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradingTier:
    threshold: int
    decay_micro_per_s: int

    def __post_init__(self) -> None:
        assert self.threshold > 0
        assert self.decay_micro_per_s > 0


TRADING_TIER_STARTER = TradingTier(threshold=60, decay_micro_per_s=1_000_000)
TRADING_TIER_INTERMEDIATE = TradingTier(threshold=125, decay_micro_per_s=2_340_000)
TRADING_TIER_PRO = TradingTier(threshold=180, decay_micro_per_s=3_750_000)
TRADING_TIERS = {
    "starter": TRADING_TIER_STARTER,
    "intermediate": TRADING_TIER_INTERMEDIATE,
    "pro": TRADING_TIER_PRO,
}


class TradeAction(enum.Enum):
    ADD = "add"
    AMEND = "amend"
    EDIT = "edit"
    CANCEL = "cancel"


# Upper bounds (exclusive) of the age buckets, then Kraken's table: fixed cost, and the age cost per
# bucket with one more entry for ages of 300 s and above.
_AGE_BUCKETS_NS = tuple(s * _NS_PER_S for s in (5, 10, 15, 45, 90, 300))
_COSTS: dict[TradeAction, tuple[int, tuple[int, ...]]] = {
    TradeAction.ADD: (1, (0, 0, 0, 0, 0, 0, 0)),
    TradeAction.AMEND: (1, (3, 2, 1, 0, 0, 0, 0)),
    TradeAction.EDIT: (1, (6, 5, 4, 2, 1, 0, 0)),
    TradeAction.CANCEL: (0, (8, 6, 5, 4, 2, 1, 0)),
}


def trading_cost(action: TradeAction, age_ns: int) -> tuple[int, int]:
    """(fixed, age cost) in counts; ``age_ns`` is since the order was created or last amended."""
    fixed, by_age = _COSTS[action]
    assert len(by_age) == len(_AGE_BUCKETS_NS) + 1
    bucket = sum(1 for bound_ns in _AGE_BUCKETS_NS if max(0, age_ns) >= bound_ns)
    return fixed, by_age[bucket]


class TradingCounter:
    """Kraken's per-(account, pair) matching-engine counter (doc §8.2), shared by REST and WebSocket."""

    def __init__(self, tier: TradingTier, *, enabled: bool = True) -> None:
        self.tier = tier
        self.enabled = enabled
        self._threshold_fcount = tier.threshold * FCOUNT_PER_COUNT
        self._levels: _Levels[tuple[str, str]] = _Levels(tier.decay_micro_per_s)

    def _apply(self, key: tuple[str, str], fixed_fcount: int, age_fcount: int, now_ns: int) -> bool:
        assert fixed_fcount >= 0
        assert age_fcount >= 0
        if not self.enabled:
            return True
        level_fcount = self._levels.get(key, now_ns) + fixed_fcount  # paid even when refused
        allowed = level_fcount + age_fcount <= self._threshold_fcount
        self._levels.put(key, level_fcount + age_fcount if allowed else level_fcount, now_ns)
        return allowed

    def on(self, action: TradeAction, account: str, pair: str, age_ns: int, now_ns: int) -> bool:
        if not self.enabled:  # the default: nothing is counted, nothing refused
            return True
        fixed, by_age = trading_cost(action, age_ns)
        return self._apply((account, pair), fixed * FCOUNT_PER_COUNT, by_age * FCOUNT_PER_COUNT, now_ns)

    def on_add(self, account: str, pair: str, now_ns: int) -> bool:
        return self.on(TradeAction.ADD, account, pair, 0, now_ns)

    def on_amend(self, account: str, pair: str, age_ns: int, now_ns: int) -> bool:
        return self.on(TradeAction.AMEND, account, pair, age_ns, now_ns)

    def on_edit(self, account: str, pair: str, age_ns: int, now_ns: int) -> bool:
        return self.on(TradeAction.EDIT, account, pair, age_ns, now_ns)

    def on_cancel(self, account: str, pair: str, age_ns: int, now_ns: int) -> bool:
        return self.on(TradeAction.CANCEL, account, pair, age_ns, now_ns)

    def on_batch_add(self, account: str, pair: str, order_count: int, now_ns: int) -> bool:
        """Kraken charges n/2 for a batch of n, however many of its orders later fail."""
        assert order_count > 0
        return self._apply((account, pair), order_count * FCOUNT_PER_COUNT // 2, 0, now_ns)

    def on_batch_cancel(self, account: str, pair: str, ages_ns: Sequence[int], now_ns: int) -> None:
        """Charge each cancelled order's age cost; Kraken accepts batch cancels over the threshold."""
        if not self.enabled:
            return
        age_fcount = sum(trading_cost(TradeAction.CANCEL, age_ns)[1] for age_ns in ages_ns) * FCOUNT_PER_COUNT
        key = (account, pair)
        self._levels.put(key, self._levels.get(key, now_ns) + age_fcount, now_ns)

    def level_micro(self, account: str, pair: str, now_ns: int) -> int:
        """The current level in millionths of a count (floor), e.g. for ``ratecounter`` frames."""
        return self._levels.get((account, pair), now_ns) // _FCOUNT_PER_MICRO

    def prune(self, now_ns: int) -> int:
        return self._levels.prune(now_ns)
