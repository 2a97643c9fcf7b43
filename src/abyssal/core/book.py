"""The order book of one pair: price levels in price-time priority, O(1) cancel, cached best.

Each side keeps a sorted list of its level prices with the best price at the *end*, so the
common operations near the touch (insert a level, remove the best) touch the list's tail.
A level is a FIFO deque of orders; a cancelled order is tombstoned (``resting = False``) and
dropped when it reaches the head, so a cancel never searches a queue.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque

from abyssal.core.order import ORDER_FIELDS as ORDER_FIELDS  # re-exported with Order
from abyssal.core.order import Order as Order  # re-exported: the book's orders are read from here
from abyssal.core.order import OrderCold


class Level:
    __slots__ = ("orders", "price_ticks", "visible_lots")

    def __init__(self, price_ticks: int) -> None:
        self.price_ticks = price_ticks
        self.orders: deque[Order] = deque()
        self.visible_lots = 0


class BookSide:
    """One side of a book. ``prices`` is sorted so that the best price is the last element."""

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.prices: list[int] = []  # bids ascending, asks descending (stored negated)

    def best_level(self) -> Level | None:
        prices = self.prices
        if not prices:
            return None
        key = prices[-1]
        return self.levels[key if self.is_bid else -key]

    def best_price(self) -> int:
        """Best price in ticks, or 0 when the side is empty."""
        prices = self.prices
        if not prices:
            return 0
        key = prices[-1]
        return key if self.is_bid else -key

    def add(self, order: Order) -> Level:
        price = order.limit_ticks
        level = self.levels.get(price)
        if level is None:
            level = Level(price)
            self.levels[price] = level
            key = price if self.is_bid else -price
            prices = self.prices
            if not prices or key > prices[-1]:
                prices.append(key)
            else:
                prices.insert(bisect_left(prices, key), key)
        else:  # the same value: interpreted, one int object per level instead of one per order
            order.limit_ticks = level.price_ticks
        level.orders.append(order)
        level.visible_lots += order.visible_lots
        order.resting = True
        return level

    def remove_level(self, level: Level) -> None:
        price = level.price_ticks
        del self.levels[price]
        key = price if self.is_bid else -price
        prices = self.prices
        if prices[-1] == key:
            prices.pop()
        else:
            i = bisect_left(prices, key)
            assert prices[i] == key, "level price missing from the sorted index"
            del prices[i]

    def unlink(self, order: Order) -> None:
        """Take a resting order out of its level (tombstone; the deque drops it lazily)."""
        assert order.resting, "unlink of an order that is not resting"
        level = self.levels[order.limit_ticks]
        level.visible_lots -= order.visible_lots
        order.resting = False
        orders = level.orders
        if orders[0] is order:
            orders.popleft()
            while orders and not orders[0].resting:
                orders.popleft()
        if level.visible_lots == 0:  # every resting order shows at least one lot
            orders.clear()
            self.remove_level(level)

    def depth(self, levels_max: int) -> list[tuple[int, int]]:
        """[(price_ticks, visible_lots)] from the best price outwards."""
        out: list[tuple[int, int]] = []
        prices = self.prices
        for i in range(len(prices) - 1, max(-1, len(prices) - 1 - levels_max), -1):
            key = prices[i]
            level = self.levels[key if self.is_bid else -key]
            out.append((level.price_ticks, level.visible_lots))
        return out

    def orders_in_priority(self) -> list[Order]:
        out: list[Order] = []
        for i in range(len(self.prices) - 1, -1, -1):
            key = self.prices[i]
            level = self.levels[key if self.is_bid else -key]
            out.extend(o for o in level.orders if o.resting)
        return out


class Book:
    __slots__ = ("asks", "bids", "pair")

    def __init__(self, pair: int) -> None:
        self.pair = pair
        self.bids = BookSide(True)
        self.asks = BookSide(False)

    def side(self, is_bid: bool) -> BookSide:
        return self.bids if is_bid else self.asks

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best_price(), self.asks.best_price()
        return bool(bid and ask and bid >= ask)


def keep_slots(*classes: type) -> None:
    """Give mypyc-compiled classes back the ``__slots__`` that mypyc drops (snapshots read it).

    Interpreted, this does nothing. Compiled, the names come from mypyc's ``__mypyc_attrs__``,
    sorted, which is the order the source keeps them in (ruff RUF023).
    """
    for cls in classes:
        if "__slots__" not in cls.__dict__:
            type.__setattr__(cls, "__slots__", tuple(sorted(cls.__dict__["__mypyc_attrs__"])))


keep_slots(Order, OrderCold, Level, BookSide, Book)
