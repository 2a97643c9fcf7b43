"""WS order driver: the steady order stream ws_bench.py's server feeds ``Exchange.execute`` directly."""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import TYPE_CHECKING, Any

from abyssal.core.messages import (
    CancelOrders,
    Deposit,
    OrderAccepted,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:  # the gateway and runtime load in the server process only (the clients import this too)
    from abyssal.core.instruments import Pair
    from abyssal.gateway.app import App
    from abyssal.runtime.exchange import Exchange

MID_TICKS = 300_000  # 30000.0
MAKERS = 8
TAKER = 100
BOOK_PRIME_COMMANDS = 400  # a book to subscribe to before any client connects
OPEN_ORDERS_MAX = 150  # a maker with more cancels its oldest instead of placing


class OrderDriver:
    """Makers rest limits around a fixed mid, a taker sends marketable IOCs, cancels bound the book."""

    def __init__(self, exchange: Exchange, app: App, pair: Pair) -> None:
        self.exchange, self.app, self.pair = exchange, app, pair
        self.rng = random.Random(1)
        self.open_orders: dict[int, list[int]] = {m: [] for m in range(1, MAKERS + 1)}
        self.sent = 0
        self.acked = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def prime(self) -> None:
        """Fund every account, then build a book; afterwards ``sent == acked``."""
        pair = self.pair
        for account in [*self.open_orders, TAKER]:
            for asset, amount in ((pair.quote.index, 10**14), (pair.base.index, 10**14)):
                await self.exchange.execute(
                    Deposit(ts_ns=time.time_ns(), account=account, asset=asset, amount_minor=amount, ref="b")
                )
        for _ in range(BOOK_PRIME_COMMANDS):
            await self.one()
        self.sent = self.acked

    def command(self) -> Any:
        rng, now = self.rng, time.time_ns()
        maker = rng.randint(1, MAKERS)
        if len(self.open_orders[maker]) > OPEN_ORDERS_MAX:
            return CancelOrders(ts_ns=now, account=maker, order_nos=[self.open_orders[maker].pop(0)])
        if rng.random() < 0.2:  # a marketable IOC: trades against the makers
            side = rng.choice((Side.buy, Side.sell))
            account, tif = TAKER, TimeInForce.ioc
            price = MID_TICKS + (40 if side == Side.buy else -40)
            lots = rng.randint(1, 5) * 100_000
        else:
            side = rng.choice((Side.buy, Side.sell))
            account, tif = maker, TimeInForce.gtc
            offset = rng.randint(1, 30)
            price = MID_TICKS - offset if side == Side.buy else MID_TICKS + offset
            lots = rng.randint(1, 20) * 100_000
        return PlaceOrder(
            ts_ns=now,
            account=account,
            pair=self.pair.index,
            side=int(side),
            ordertype=int(OrderType.limit),
            volume_lots=lots,
            price_ticks=price,
            tif=int(tif),
        )

    async def one(self) -> None:
        events = await self.exchange.execute(self.command())
        self.acked += 1
        for e in events:
            if isinstance(e, OrderAccepted) and e.account in self.open_orders and e.status == 1:
                self.open_orders[e.account].append(e.order_no)

    def launch(self) -> None:
        self.sent += 1
        task = asyncio.get_running_loop().create_task(self.one())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.sleep(0.01)

    async def steady(self, rate: float, seconds: float) -> dict[str, Any]:
        """``rate`` commands/s for ``seconds``: what it cost the server and what the publisher delivered."""
        start_acked, start = self.acked, time.perf_counter()
        publisher, sequencer = self.app.websocket.publisher, self.exchange.sequencer
        d0, r0 = publisher.stats.deliveries, publisher.stats.rounds
        b0 = sequencer.batches_committed
        t0_ns = time.time_ns()
        cpu0 = os.times()
        interval = 1.0 / rate
        next_at = start
        while time.perf_counter() - start < seconds:
            now = time.perf_counter()
            while next_at <= now:
                self.launch()
                next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await self.drain()
        elapsed = time.perf_counter() - start
        cpu1 = os.times()
        cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / elapsed
        return {
            "cpu": cpu,
            "commands_per_s": (self.acked - start_acked) / elapsed,
            "batches_per_s": (sequencer.batches_committed - b0) / elapsed,
            "rounds_per_s": (publisher.stats.rounds - r0) / elapsed,
            "deliveries_per_s": (publisher.stats.deliveries - d0) / elapsed,
            "window_ns": [t0_ns, time.time_ns()],
        }

    async def flat_out(self, inflight: int, seconds: float) -> dict[str, Any]:
        """``inflight`` commands kept in flight for ``seconds``: the engine's sustained throughput."""
        start_acked, start = self.acked, time.perf_counter()
        b0 = self.exchange.sequencer.batches_committed
        while time.perf_counter() - start < seconds:
            while len(self.tasks) < inflight:
                self.launch()
            await asyncio.sleep(0.001)
        await self.drain()
        batches = max(1, self.exchange.sequencer.batches_committed - b0)
        return {
            "commands_per_s": (self.acked - start_acked) / (time.perf_counter() - start),
            "mean_batch": (self.acked - start_acked) / batches,
        }
