"""Balances with holds, the numbers of the open orders, and the 30-day fee volume of one trading account."""

from __future__ import annotations

from typing import Final

from abyssal.core.book import Order, keep_slots
from abyssal.core.instruments import FeeSchedule

DAY_NS: Final = 86_400 * 1_000_000_000
FEE_WINDOW_DAYS: Final = 30
# Account.open_nos is pruned once it holds more than twice the open orders plus this many numbers
PRUNE_SLACK: Final = 16
FEE_ACCOUNT: Final = 0  # the house: fees and rounding are credited here
WORLD_ACCOUNT: Final = -1  # the outside world in postings: deposits come from it, withdrawals go to it
_BELOW_ALL: Final = -(1 << 62)  # the bounds of a tier with no threshold below or above it
_ABOVE_ALL: Final = 1 << 62


class Balance:
    """One asset of one account, in minor units: available = total - held.

    Two native int fields rather than two lists of ints: compiled, a list item is a boxed int, so
    every ``held[asset] += x`` allocated one and went through the generic number protocol; a
    field of a compiled class is a machine word (for amounts below 2**62) updated in place.
    """

    __slots__ = ("held", "total")

    def __init__(self) -> None:
        self.total = 0
        self.held = 0


class Account:
    """``bal[asset]``: the account's balance of each asset (``total`` and ``held``, read-only lists)."""

    __slots__ = (
        "bal",
        "cl_ids",
        "cur_day",
        "live",
        "number",
        "open_nos",
        "open_per_pair",
        "stale_room",
        "tier",
        "tier_fees",
        "tier_high",
        "tier_low",
        "vol30",
        "vol_days",
        "vol_today",
    )

    def __init__(self, number: int, asset_count: int, live: dict[int, Order], pair_count: int) -> None:
        self.number = number
        self.bal = [Balance() for _ in range(asset_count)]
        # The engine's index of every live order (``EngineState.orders``, shared, never replaced):
        # the orders themselves are found there, so an account keeps only their numbers.
        self.live = live
        # The numbers of this account's live orders (resting, pending or untriggered), ascending
        # (an order is appended once, when accepted under the next number), and of some closed
        # ones (stale): a close leaves its number in the list. ``stale_room`` is live - stale +
        # PRUNE_SLACK (an accepted order adds 1, a close takes 2); below 0, ``close_order`` calls
        # ``prune``. So the list never holds more than 2 x live + PRUNE_SLACK numbers, reads cost
        # in proportion to the account's own orders, never the other accounts', and a prune (one
        # pass over the list) costs O(1) per close, amortized. An entry is 8 bytes, a dict's ~42.
        self.open_nos: list[int] = []
        self.stale_room = PRUNE_SLACK
        self.cl_ids: dict[str, int] = {}  # cl_ord_id -> order_no, open orders only
        # pair index -> how many of those live orders are on that pair: the open-orders limit
        # (Instruments.open_orders_per_pair_max) in O(1). +1 where an order is accepted
        # (Engine._place, fastpath), -1 in close_order. Empty (``pair_count`` 0) when no limit
        # is set: nothing is counted, and a book of 50,000 orders does not pay a boxed int per
        # update above 256. Derived: a restore counts the orders.
        self.open_per_pair = [0] * pair_count
        # day number -> volume in fee-currency minor units, for the days before ``cur_day``; the
        # volume of ``cur_day`` is ``vol_today`` (-1: none yet), a native int a fill adds to
        # without a dict lookup. ``volume_days`` is the whole map, as snapshots store it.
        self.vol_days: dict[int, int] = {}
        self.vol_today = -1
        self.vol30 = 0
        self.cur_day = -1
        # The fee tier ``tier_of`` last found: ``tier`` of ``tier_fees`` for any 30-day volume in
        # [tier_low, tier_high). A volume rarely leaves its tier, and the search costs ~10 times
        # the check. Derived: never stored, empty after a restore.
        self.tier_fees: FeeSchedule | None = None
        self.tier = 0
        self.tier_low = 0
        self.tier_high = 0

    @property
    def total(self) -> list[int]:
        """Each asset's total (a new list: for readers; write through ``bal``)."""
        return [b.total for b in self.bal]

    @property
    def held(self) -> list[int]:
        """Each asset's held part of the total (a new list: for readers; write through ``bal``)."""
        return [b.held for b in self.bal]

    @property
    def open(self) -> dict[int, Order]:
        """This account's live orders by number, ascending (a new dict: for rare readers)."""
        out: dict[int, Order] = {}
        live = self.live
        for no in self.open_nos:
            o = live.get(no)
            if o is not None:  # an order number is never reused: a live one is this account's
                assert o.account == self.number, "an open order of another account"
                out[no] = o
        return out

    def prune(self) -> None:
        """Drop the numbers of closed orders (``close_order`` calls it: see ``stale_room``)."""
        self.open_nos = nos = list(filter(self.live.__contains__, self.open_nos))  # a C loop
        self.stale_room = len(nos) + PRUNE_SLACK

    def owns(self, order_no: int) -> Order | None:
        """This account's live order of that number, or None."""
        o = self.live.get(order_no)
        return o if o is not None and o.account == self.number else None

    def available(self, asset: int) -> int:
        b = self.bal[asset]
        return b.total - b.held

    def hold(self, asset: int, amount_minor: int) -> None:
        b = self.bal[asset]
        assert amount_minor >= 0
        assert b.total - b.held >= amount_minor, "hold beyond available"
        b.held += amount_minor

    def release(self, asset: int, amount_minor: int) -> None:
        b = self.bal[asset]
        assert 0 <= amount_minor <= b.held, "release beyond held"
        b.held -= amount_minor

    def debit_held(self, asset: int, amount_minor: int) -> None:
        """Money leaves the account out of its hold (a fill consuming an order's hold)."""
        b = self.bal[asset]
        assert 0 <= amount_minor <= b.held, "debit beyond held"
        b.held -= amount_minor
        b.total -= amount_minor

    def credit(self, asset: int, amount_minor: int) -> None:
        assert amount_minor >= 0
        self.bal[asset].total += amount_minor

    def debit_available(self, asset: int, amount_minor: int) -> None:
        b = self.bal[asset]
        assert 0 <= amount_minor <= b.total - b.held, "debit beyond available"
        b.total -= amount_minor

    def add_volume(self, ts_ns: int, volume_minor: int) -> None:
        day = ts_ns // DAY_NS
        if day != self.cur_day:
            self.roll(day)
        today = self.vol_today
        self.vol_today = volume_minor if today < 0 else today + volume_minor
        self.vol30 += volume_minor

    def roll(self, day: int) -> None:
        """Close ``cur_day``, forget days that left the 30-day window, recompute the window's sum."""
        if self.vol_today >= 0:
            self.vol_days[self.cur_day] = self.vol_today
        self.vol_today = -1
        self.cur_day = day
        oldest = day - FEE_WINDOW_DAYS + 1
        for d in [d for d in self.vol_days if d < oldest]:
            del self.vol_days[d]
        self.vol30 = sum(self.vol_days.values())

    def volume_days(self) -> dict[int, int]:
        """Day number -> volume, ``cur_day`` included (a new dict)."""
        days = dict(self.vol_days)
        if self.vol_today >= 0:
            days[self.cur_day] = self.vol_today
        return days

    def set_volume_days(self, days: dict[int, int], cur_day: int) -> None:
        """The inverse of ``volume_days`` (a restore), with ``vol30`` left to the caller."""
        self.vol_days = dict(days)
        self.vol_today = self.vol_days.pop(cur_day, -1)
        self.cur_day = cur_day

    def volume_in_window(self, ts_ns: int) -> int:
        """The 30-day volume as of ``ts_ns`` without touching state (for readers outside apply)."""
        oldest = ts_ns // DAY_NS - FEE_WINDOW_DAYS + 1
        return sum(v for d, v in self.volume_days().items() if d >= oldest)

    def tier_of(self, fees: FeeSchedule) -> int:
        """``fees.tier_index(self.vol30)``, from the last answer while the volume stays in its tier."""
        vol = self.vol30
        if fees is self.tier_fees and self.tier_low <= vol < self.tier_high:
            return self.tier
        index = fees.tier_index(vol)
        thresholds = fees.thresholds
        self.tier_fees = fees
        self.tier = index
        self.tier_low = thresholds[index] if index > 0 else _BELOW_ALL
        self.tier_high = thresholds[index + 1] if index + 1 < len(thresholds) else _ABOVE_ALL
        return index

    def volume_at(self, ts_ns: int) -> int:
        day = ts_ns // DAY_NS
        if day != self.cur_day:
            self.roll(day)
        return self.vol30


keep_slots(Balance)
keep_slots(Account)
