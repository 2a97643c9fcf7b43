"""The order book of one pair: price levels in price-time priority, O(1) cancel, cached best.

Each side keeps a sorted list of its level prices with the best price at the *end*, so the
common operations near the touch (insert a level, remove the best) touch the list's tail.
A level is a FIFO deque of orders; a cancelled order is tombstoned (``resting = False``) and
dropped when it reaches the head, so a cancel never searches a queue.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque


class Order:
    """A live order. Integer fields only; money in lots, ticks, raw cost and minor units."""

    __slots__ = (
        "account",
        "cl_ord_id",
        "cost_raw",
        "display_lots",
        "expire_ns",
        "fee_num",
        "fee_paid_minor",
        "filled_lots",
        "flags",
        "hold_minor",
        "is_buy",
        "limit_ticks",
        "opened_ns",
        "order_no",
        "ordertype",
        "paid_minor",
        "pair",
        "price2_ticks",
        "remaining_lots",
        "resting",
        "start_ns",
        "stop_ticks",
        "stp",
        "tif",
        "trail_offset",
        "trail_pct_ppm",
        "trail_ref_ticks",
        "triggered",
        "userref",
        "visible_lots",
        "volume_lots",
    )

    def __init__(
        self,
        order_no: int,
        account: int,
        pair: int,
        is_buy: bool,
        ordertype: int,
        volume_lots: int,
        limit_ticks: int,
    ) -> None:
        self.order_no = order_no
        self.account = account
        self.pair = pair
        self.is_buy = is_buy
        self.ordertype = ordertype
        self.volume_lots = volume_lots  # as ordered (amend may change it)
        self.remaining_lots = volume_lots  # not yet filled
        self.visible_lots = volume_lots  # the part shown in the book (icebergs show less)
        self.display_lots = 0  # iceberg chunk size, 0 for ordinary orders
        self.limit_ticks = limit_ticks  # 0 for market orders
        self.filled_lots = 0
        self.cost_raw = 0  # sum of price_ticks * volume_lots over fills
        self.fee_num = 0  # sum of fee numerators, for cumulative fee rounding
        self.fee_paid_minor = 0
        self.paid_minor = 0  # quote (buy) or base (sell) taken from the hold so far
        self.hold_minor = 0  # what is still held for this order
        self.flags = 0
        self.tif = 0
        self.expire_ns = 0
        self.opened_ns = 0
        self.userref = 0
        self.cl_ord_id = ""
        self.stp = 0
        self.stop_ticks = 0
        self.price2_ticks = 0
        self.triggered = True  # False while a stop order waits for its trigger
        self.trail_offset = 0
        self.trail_pct_ppm = -1
        self.trail_ref_ticks = 0
        self.resting = False
        self.start_ns = 0  # > 0 while a scheduled order waits for its start time


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


keep_slots(Order, Level, BookSide, Book)
