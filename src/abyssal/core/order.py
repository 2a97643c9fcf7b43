"""A live order: the fields every order uses, and a side object for those most orders leave unset.

A plain resting limit order (no client id, no userref, GTC, no iceberg, stop, trailing offset,
schedule or deadline) never allocates its ``OrderCold``: reading a cold field then gives its
default, and setting one to its default allocates nothing. That keeps a resting order small
(``bench/memory.py``); the attributes read and write the same either way.
"""

from __future__ import annotations

from typing import Final

# ``Order.opened_ns`` is kept relative to this instant (2023-11-14 22:13:20 UTC). Interpreted, an
# int below 2**60 in magnitude is a 32-byte object and a nanosecond time of these years (above
# 2**60) a 48-byte one: relative, every order is 16 bytes smaller until 2060.
OPENED_EPOCH_NS: Final = 1_700_000_000 * 1_000_000_000
_OPENED_NEVER: Final = -OPENED_EPOCH_NS  # opened_ns == 0


class OrderCold:
    """The fields of an order that a plain limit order leaves at their defaults."""

    __slots__ = (
        "cl_ord_id",
        "display_lots",
        "expire_ns",
        "price2_ticks",
        "start_ns",
        "stop_ticks",
        "stp",
        "tif",
        "trail_offset",
        "trail_pct_ppm",
        "triggered",
        "userref",
    )

    def __init__(self) -> None:
        self.cl_ord_id = ""  # the client's order id (unique among the account's open orders)
        self.display_lots = 0  # iceberg chunk size, 0 for ordinary orders
        self.expire_ns = 0  # GTD deadline
        self.price2_ticks = 0  # stop-limit: the limit once triggered; stop-market buy: its band
        self.start_ns = 0  # > 0 while a scheduled order waits for its start time
        self.stop_ticks = 0  # trigger price
        self.stp = 0  # self-trade prevention mode (Stp)
        self.tif = 0  # TimeInForce
        self.trail_offset = 0  # trailing stops: the offset in ticks (or the percentage's base)
        self.trail_pct_ppm = -1  # >= 0: the trailing offset is a percentage, in millionths of a percent
        self.triggered = True  # False while a stop order waits for its trigger
        self.userref = 0  # the client's reference number


class Order:
    """A live order. Integer fields only; money in lots, ticks, raw cost and minor units."""

    __slots__ = (
        "account",
        "cold",
        "cost_raw",
        "fee_num",
        "fee_paid_minor",
        "filled_lots",
        "flags",
        "hold_minor",
        "is_buy",
        "limit_ticks",
        "opened_rel_ns",
        "order_no",
        "ordertype",
        "paid_minor",
        "pair",
        "remaining_lots",
        "resting",
        "trail_ref_ticks",
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
        self.limit_ticks = limit_ticks  # 0 for market orders
        self.filled_lots = 0
        self.cost_raw = 0  # sum of price_ticks * volume_lots over fills
        self.fee_num = 0  # sum of fee numerators, for cumulative fee rounding
        self.fee_paid_minor = 0
        self.paid_minor = 0  # quote (buy) or base (sell) taken from the hold so far
        self.hold_minor = 0  # what is still held for this order
        self.flags = 0
        self.opened_rel_ns = _OPENED_NEVER  # opened_ns - OPENED_EPOCH_NS
        self.trail_ref_ticks = 0  # the last price when placed; trailing stops move it
        self.resting = False
        self.cold: OrderCold | None = None

    @property
    def opened_ns(self) -> int:
        return self.opened_rel_ns + OPENED_EPOCH_NS

    @opened_ns.setter
    def opened_ns(self, value: int) -> None:
        self.opened_rel_ns = value - OPENED_EPOCH_NS

    @property
    def cl_ord_id(self) -> str:
        cold = self.cold
        return "" if cold is None else cold.cl_ord_id

    @cl_ord_id.setter
    def cl_ord_id(self, value: str) -> None:
        cold = self.cold
        if cold is None:
            if not value:
                return
            cold = self.cold = OrderCold()
        cold.cl_ord_id = value

    @property
    def display_lots(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.display_lots

    @display_lots.setter
    def display_lots(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.display_lots = value

    @property
    def expire_ns(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.expire_ns

    @expire_ns.setter
    def expire_ns(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.expire_ns = value

    @property
    def price2_ticks(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.price2_ticks

    @price2_ticks.setter
    def price2_ticks(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.price2_ticks = value

    @property
    def start_ns(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.start_ns

    @start_ns.setter
    def start_ns(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.start_ns = value

    @property
    def stop_ticks(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.stop_ticks

    @stop_ticks.setter
    def stop_ticks(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.stop_ticks = value

    @property
    def stp(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.stp

    @stp.setter
    def stp(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.stp = value

    @property
    def tif(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.tif

    @tif.setter
    def tif(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.tif = value

    @property
    def trail_offset(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.trail_offset

    @trail_offset.setter
    def trail_offset(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.trail_offset = value

    @property
    def trail_pct_ppm(self) -> int:
        cold = self.cold
        return -1 if cold is None else cold.trail_pct_ppm

    @trail_pct_ppm.setter
    def trail_pct_ppm(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == -1:
                return
            cold = self.cold = OrderCold()
        cold.trail_pct_ppm = value

    @property
    def triggered(self) -> bool:
        cold = self.cold
        return True if cold is None else cold.triggered

    @triggered.setter
    def triggered(self, value: bool) -> None:
        cold = self.cold
        if cold is None:
            if value:
                return
            cold = self.cold = OrderCold()
        cold.triggered = value

    @property
    def userref(self) -> int:
        cold = self.cold
        return 0 if cold is None else cold.userref

    @userref.setter
    def userref(self, value: int) -> None:
        cold = self.cold
        if cold is None:
            if value == 0:
                return
            cold = self.cold = OrderCold()
        cold.userref = value


# every attribute of an order, hot or cold, sorted: what snapshots store and digests compare
ORDER_FIELDS: Final = (
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
