"""The engine's whole mutable state, in one place so snapshots and hashes cover all of it."""

from __future__ import annotations

import heapq
from typing import Final

from abyssal.core.accounts import FEE_ACCOUNT, Account
from abyssal.core.book import Book, Order, keep_slots
from abyssal.core.instruments import PPM, Instruments, Pair
from abyssal.core.messages import Mode, OrderType

# how much each mode forbids: online < limit_only < post_only < cancel_only < maintenance
MODE_STRICTNESS = {
    int(Mode.online): 0,
    int(Mode.limit_only): 1,
    int(Mode.post_only): 2,
    int(Mode.cancel_only): 3,
    int(Mode.maintenance): 4,
}


USD_SAME: Final = -2  # EngineState.usd_via: the pair's quote is the fee currency itself


class EngineState:
    __slots__ = (
        "accounts",
        "amend_no",
        "books",
        "dms",
        "expiries",
        "fall",
        "instruments",
        "last_price",
        "modes",
        "next_order_no",
        "orders",
        "pairs",
        "rise",
        "starts",
        "supply",
        "system_mode",
        "trade_no",
        "trailing",
        "usd_via",
        "withdrawals",
    )

    def __init__(self, instruments: Instruments) -> None:
        self.instruments = instruments
        self.pairs: tuple[Pair, ...] = instruments.pairs
        n_pairs = len(self.pairs)
        self.accounts: dict[int, Account] = {}
        self.orders: dict[int, Order] = {}  # every live order by number (accounts share it: never replaced)
        self.books = [Book(i) for i in range(n_pairs)]
        self.last_price = [0] * n_pairs  # ticks of the last trade, 0 before the first
        self.trade_no = [0] * n_pairs
        self.modes = [int(Mode.online)] * n_pairs
        self.system_mode = int(Mode.online)
        self.next_order_no = 1
        self.amend_no = 0
        # untriggered stops: rise fires when last >= stop, fall when last <= stop
        self.rise: list[list[tuple[int, int]]] = [[] for _ in range(n_pairs)]  # (stop, order_no)
        self.fall: list[list[tuple[int, int]]] = [[] for _ in range(n_pairs)]  # (-stop, order_no)
        self.trailing: list[dict[int, Order]] = [{} for _ in range(n_pairs)]
        self.expiries: list[tuple[int, int]] = []  # (expire_ns, order_no)
        self.starts: list[tuple[int, int]] = []  # (start_ns, order_no)
        self.dms: dict[tuple[int, int], int] = {}  # (account, key_no) -> trigger_ns
        # pending withdrawal holds: ref -> (account, asset, amount_minor); each resolves at most once
        self.withdrawals: dict[str, tuple[int, int, int]] = {}
        self.usd_via = [self._usd_route(p) for p in self.pairs]
        # each asset's total over every account (deposits less withdrawals): derived, not stored
        # (snapshot.restore sums it). Kept within UNITS_MAX, so every balance and ledger sum fits.
        self.supply = [0] * len(instruments.assets)
        self.account(FEE_ACCOUNT)

    def account(self, number: int) -> Account:
        acct = self.accounts.get(number)
        if acct is None:
            counted = len(self.pairs) if self.instruments.open_orders_per_pair_max else 0
            acct = Account(number, len(self.instruments.assets), self.orders, counted)
            self.accounts[number] = acct
        return acct

    def _usd_route(self, pair: Pair) -> int:
        """How to value this pair's quote in the fee currency: USD_SAME, via that pair (>= 0), or -1."""
        fee_asset = self.instruments.fee_volume_asset.index
        if pair.quote.index == fee_asset:
            return USD_SAME
        for p in self.pairs:
            if p.base.index == pair.quote.index and p.quote.index == fee_asset:
                return p.index
        return -1

    def fee_volume(self, pair: Pair, quote_minor: int) -> int:
        """A quote amount valued in fee-currency minor units (0 when there is no route)."""
        route = self.usd_via[pair.index]
        if route == USD_SAME:
            return quote_minor
        if route < 0 or self.last_price[route] == 0:
            return 0
        conv = self.pairs[route]
        fee_asset = self.instruments.fee_volume_asset
        # quote_minor * 10^-qd * price_ticks * 10^-pd  ->  10^-fd
        scaled = quote_minor * self.last_price[route]
        shift = pair.quote.decimals + conv.pair_decimals - fee_asset.decimals
        if shift >= 0:
            return int(scaled // 10**shift)
        return int(scaled * 10 ** (-shift))

    def mode_of(self, pair: int) -> int:
        """The stricter of the system mode and the pair's own mode.

        The enum's numbers are not an order of strictness (cancel_only forbids more than
        post_only or limit_only), so the comparison goes through ``MODE_STRICTNESS``.
        """
        system, own = self.system_mode, self.modes[pair]
        if system == own:  # the common case (both online) needs no lookup
            return system
        return max(system, own, key=MODE_STRICTNESS.__getitem__)

    def has_stops(self, pair: int) -> bool:
        """Whether any untriggered stop waits on this pair (else a price move fires nothing)."""
        return bool(self.trailing[pair] or self.rise[pair] or self.fall[pair])

    def register_trigger(self, order: Order) -> None:
        """File an untriggered stop under the direction that fires it."""
        t = order.ordertype
        if t in (OrderType.trailing_stop, OrderType.trailing_stop_limit):
            self.trailing[order.pair][order.order_no] = order
            return
        stop_like = t in (OrderType.stop_loss, OrderType.stop_loss_limit)
        fires_on_rise = stop_like == order.is_buy
        if fires_on_rise:
            heapq.heappush(self.rise[order.pair], (order.stop_ticks, order.order_no))
        else:
            heapq.heappush(self.fall[order.pair], (-order.stop_ticks, order.order_no))

    def band_limit(self, pair: Pair, is_buy: bool, reference_ticks: int) -> int:
        """Market price protection: the worst price a market order may reach from a reference."""
        band = pair.mpp_band_ppm
        if is_buy:
            raw = -((-reference_ticks * (PPM + band)) // PPM)
            return raw - raw % pair.tick_ticks + (pair.tick_ticks if raw % pair.tick_ticks else 0)
        raw = reference_ticks * (PPM - band) // PPM
        return max(pair.tick_ticks, raw - raw % pair.tick_ticks)


keep_slots(EngineState)
