"""Order mix: the deterministic XBT/USD order stream the sequencer, HTTP and cluster benchmarks send."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from abyssal.core.instruments import Pair
from abyssal.core.messages import OrderType, PlaceOrder, Side, TimeInForce

PAIR = "XXBTZUSD"
MID_PRICE_TICKS = 300_000  # 30000.0 USD (pair_decimals 1)
RESTING_OFFSET_TICKS_MAX = 500  # resting orders sit up to 50 USD away from the mid
CROSSING_OFFSET_TICKS = 600  # a marketable IOC is priced 60 USD through the mid: it takes what rests
CROSSING_SHARE_PPM = 200_000  # 20 % of orders take liquidity, 80 % rest
DRIFT_SHARE_PPM = 100_000  # the mid moves one tick on 10 % of orders
RESTING_LOTS_CHOICES = tuple(n * 100_000 for n in range(1, 51))  # 0.001 .. 0.050 XBT
CROSSING_LOTS_CHOICES = tuple(n * 500_000 for n in range(1, 7))  # 0.005 .. 0.030 XBT
SEED = 20_260_101


@dataclass(frozen=True, slots=True)
class Order:
    side: Side
    ioc: bool
    price_ticks: int
    volume_lots: int

    def price_text(self) -> str:
        return f"{self.price_ticks // 10}.{self.price_ticks % 10}"

    def volume_text(self) -> str:
        return f"{self.volume_lots // 10**8}.{self.volume_lots % 10**8:08d}"


class OrderMix:
    """A deterministic stream of XBT/USD limit orders: 80 % resting around a drifting mid, 20 % taking."""

    def __init__(self, seed: int = SEED) -> None:
        self._rng = random.Random(seed)
        self.mid_ticks = MID_PRICE_TICKS

    def next(self) -> Order:
        r = self._rng
        if r.randrange(1_000_000) < DRIFT_SHARE_PPM:
            self.mid_ticks += r.choice((-1, 1))
        side = Side.buy if r.randrange(2) == 0 else Side.sell
        sign = 1 if side == Side.buy else -1
        if r.randrange(1_000_000) < CROSSING_SHARE_PPM:
            price = self.mid_ticks + sign * CROSSING_OFFSET_TICKS
            return Order(side, True, price, r.choice(CROSSING_LOTS_CHOICES))
        price = self.mid_ticks - sign * r.randint(1, RESTING_OFFSET_TICKS_MAX)
        return Order(side, False, price, r.choice(RESTING_LOTS_CHOICES))


def place_command(order: Order, pair: Pair, account: int) -> PlaceOrder:
    assert order.price_ticks > 0 and order.volume_lots > 0
    return PlaceOrder(
        ts_ns=time.time_ns(),
        account=account,
        pair=pair.index,
        side=int(order.side),
        ordertype=int(OrderType.limit),
        volume_lots=order.volume_lots,
        price_ticks=order.price_ticks,
        tif=int(TimeInForce.ioc if order.ioc else TimeInForce.gtc),
        price_text=order.price_text(),
    )


def add_order_body(order: Order, nonce: int) -> str:
    """The form body of a Kraken ``AddOrder`` for ``order`` (what the API-Sign covers)."""
    body = (
        f"nonce={nonce}&ordertype=limit&pair={PAIR}&price={order.price_text()}"
        f"&type={'buy' if order.side == Side.buy else 'sell'}&volume={order.volume_text()}"
    )
    return body + "&timeinforce=IOC" if order.ioc else body
