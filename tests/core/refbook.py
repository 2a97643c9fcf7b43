"""A deliberately simple reference order book: one plain list, price-time priority, no risk.

It knows nothing of holds, fees, icebergs or self-trade prevention; it is the spec of who
trades with whom at what price, written so that it is obviously right rather than fast.
Prices and quantities are plain integers (a market whose tick and lot are both 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RefOrder:
    order_id: int
    is_buy: bool
    price: int
    qty: int
    arrival: int  # time priority: smaller is older


@dataclass(frozen=True)
class RefFill:
    price: int
    qty: int
    maker: int
    taker: int


class RefBook:
    """Limit (GTC or IOC) and market orders, and cancels. Ids are handed out 1, 2, 3, ..."""

    def __init__(self, band_percent: int = 1) -> None:
        self.resting: list[RefOrder] = []
        self.band_percent = band_percent
        self.next_id = 1
        self.arrivals = 0

    # ------------------------------------------------------------------ commands
    def limit(self, is_buy: bool, qty: int, price: int, ioc: bool = False) -> list[RefFill]:
        order_id = self._new_id()
        fills, left = self._take(order_id, is_buy, qty, price)
        if left and not ioc:
            self.arrivals += 1
            self.resting.append(RefOrder(order_id, is_buy, price, left, self.arrivals))
        return fills

    def market(self, is_buy: bool, qty: int, protect: bool = True) -> list[RefFill]:
        order_id = self._new_id()
        best = self.best(not is_buy)
        if best is None:
            return []
        worst = None
        if protect:  # at most band_percent away from the touch at arrival, rounded outwards
            if is_buy:
                worst = -(-best * (100 + self.band_percent) // 100)
            else:
                worst = max(1, best * (100 - self.band_percent) // 100)
        fills, _ = self._take(order_id, is_buy, qty, worst)
        return fills

    def cancel(self, order_id: int) -> bool:
        for order in self.resting:
            if order.order_id == order_id:
                self.resting.remove(order)
                return True
        return False

    # ------------------------------------------------------------------ reading
    def best(self, bids: bool) -> int | None:
        prices = [o.price for o in self.resting if o.is_buy == bids]
        if not prices:
            return None
        return max(prices) if bids else min(prices)

    def side(self, bids: bool) -> list[tuple[int, int, int]]:
        """(order_id, price, qty) in priority order: best price first, then oldest first."""
        orders = [o for o in self.resting if o.is_buy == bids]
        orders.sort(key=lambda o: (-o.price if bids else o.price, o.arrival))
        return [(o.order_id, o.price, o.qty) for o in orders]

    # ------------------------------------------------------------------ matching
    def _new_id(self) -> int:
        order_id = self.next_id
        self.next_id += 1
        return order_id

    def _take(self, taker: int, is_buy: bool, qty: int, worst: int | None) -> tuple[list[RefFill], int]:
        fills: list[RefFill] = []
        while qty > 0:
            queue = self.side(not is_buy)
            if not queue:
                break
            maker_id, price, maker_qty = queue[0]
            if worst is not None and (price > worst if is_buy else price < worst):
                break
            traded = min(qty, maker_qty)
            fills.append(RefFill(price, traded, maker_id, taker))
            qty -= traded
            maker = next(o for o in self.resting if o.order_id == maker_id)
            maker.qty -= traded
            if maker.qty == 0:
                self.resting.remove(maker)
        return fills, qty
