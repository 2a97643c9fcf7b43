"""Balances with holds, the numbers of the open orders, and the 30-day fee volume of one trading account."""

from __future__ import annotations

from typing import Final

from abyssal.core.book import Order, keep_slots

DAY_NS: Final = 86_400 * 1_000_000_000
FEE_WINDOW_DAYS: Final = 30
# Account.open_nos is pruned once it holds more than twice the open orders plus this many numbers
PRUNE_SLACK: Final = 16
FEE_ACCOUNT: Final = 0  # the house: fees and rounding are credited here
WORLD_ACCOUNT: Final = -1  # the outside world in postings: deposits come from it, withdrawals go to it


class Account:
    """``total[asset]`` and ``held[asset]`` in minor units; available = total - held."""

    __slots__ = (
        "cl_ids",
        "cur_day",
        "held",
        "live",
        "number",
        "open_nos",
        "stale_room",
        "total",
        "vol30",
        "vol_days",
    )

    def __init__(self, number: int, asset_count: int, live: dict[int, Order]) -> None:
        self.number = number
        self.total = [0] * asset_count
        self.held = [0] * asset_count
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
        self.vol_days: dict[int, int] = {}  # day number -> volume in fee-currency minor units
        self.vol30 = 0
        self.cur_day = -1

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
        return self.total[asset] - self.held[asset]

    def hold(self, asset: int, amount_minor: int) -> None:
        assert amount_minor >= 0
        assert self.total[asset] - self.held[asset] >= amount_minor, "hold beyond available"
        self.held[asset] += amount_minor

    def release(self, asset: int, amount_minor: int) -> None:
        assert 0 <= amount_minor <= self.held[asset], "release beyond held"
        self.held[asset] -= amount_minor

    def debit_held(self, asset: int, amount_minor: int) -> None:
        """Money leaves the account out of its hold (a fill consuming an order's hold)."""
        assert 0 <= amount_minor <= self.held[asset], "debit beyond held"
        self.held[asset] -= amount_minor
        self.total[asset] -= amount_minor

    def credit(self, asset: int, amount_minor: int) -> None:
        assert amount_minor >= 0
        self.total[asset] += amount_minor

    def debit_available(self, asset: int, amount_minor: int) -> None:
        assert 0 <= amount_minor <= self.total[asset] - self.held[asset], "debit beyond available"
        self.total[asset] -= amount_minor

    def add_volume(self, ts_ns: int, volume_minor: int) -> None:
        day = ts_ns // DAY_NS
        if day != self.cur_day:
            self.roll(day)
        self.vol_days[day] = self.vol_days.get(day, 0) + volume_minor
        self.vol30 += volume_minor

    def roll(self, day: int) -> None:
        """Forget days that left the 30-day window; recompute the window's sum."""
        self.cur_day = day
        oldest = day - FEE_WINDOW_DAYS + 1
        for d in [d for d in self.vol_days if d < oldest]:
            del self.vol_days[d]
        self.vol30 = sum(self.vol_days.values())

    def volume_in_window(self, ts_ns: int) -> int:
        """The 30-day volume as of ``ts_ns`` without touching state (for readers outside apply)."""
        oldest = ts_ns // DAY_NS - FEE_WINDOW_DAYS + 1
        return sum(v for d, v in self.vol_days.items() if d >= oldest)

    def volume_at(self, ts_ns: int) -> int:
        day = ts_ns // DAY_NS
        if day != self.cur_day:
            self.roll(day)
        return self.vol30


keep_slots(Account)
