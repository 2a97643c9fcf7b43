"""In-process: book and level3 frames keep model clients equal to the engine, conflated or not.

A random order stream runs through the real engine; after each batch the market views, the
publisher and the level3 mirror are fed exactly as the sequencer would feed them. Model clients
apply every frame as Kraken's clients do (qty 0 deletes, truncate to depth, per row or at the
end) and must equal the engine's best levels and match every checksum, whether a publisher
round follows each batch or folds several together.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    CancelOrders,
    Command,
    Deposit,
    OrderType,
    PlaceOrder,
    Side,
)
from abyssal.gateway.ws_level3 import Level3
from abyssal.gateway.ws_publisher import Publisher
from abyssal.gateway.ws_subscriptions import Registry, Subscription
from abyssal.gateway.ws_wire import Flusher, Out
from abyssal.marketdata.checksum import book_checksum, level_text
from abyssal.runtime.market import MarketData

INSTRUMENTS = load_config(None).instruments
PAIR = INSTRUMENTS.pairs[0]  # BTC/USD: pair_decimals 1, lot_decimals 8
PD, LD = PAIR.pair_decimals, PAIR.lot_decimals
T0_NS = 1_700_000_000 * 10**9
MID_TICKS = 300_000  # 30000.0
ACCOUNTS = (1, 2, 3, 4)


class CaptureWire:
    """Stands in for ``Wire``: keeps every frame pushed (no transport: rounds push to it)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed = False
        self.transport = None

    def push(self, out: Out | bytes) -> None:
        payload = out.payload if isinstance(out, Out) else out
        self.frames.append(json.loads(payload, parse_float=Decimal))

    def take(self) -> list[dict[str, Any]]:
        frames, self.frames = self.frames, []
        return frames


def ticks(value: Any, decimals: int) -> int:
    return int(Decimal(value).scaleb(decimals))


class BookClient:
    """A Kraken v2 book client: rows in order, qty 0 deletes, truncate per row or at the end."""

    def __init__(self, depth: int, per_row: bool) -> None:
        self.depth = depth
        self.per_row = per_row
        self.sides: dict[str, dict[int, int]] = {"asks": {}, "bids": {}}

    def top(self, side: str) -> list[tuple[int, int]]:
        return sorted(self.sides[side].items(), reverse=side == "bids")[: self.depth]

    def apply(self, frame: dict[str, Any]) -> None:
        data = frame["data"][0]
        if frame["type"] == "snapshot":
            self.sides = {"asks": {}, "bids": {}}
        for side in ("asks", "bids"):
            levels = self.sides[side]
            for row in data[side]:
                price, qty = ticks(row["price"], PD), ticks(row["qty"], LD)
                if qty == 0:
                    levels.pop(price, None)
                else:
                    levels[price] = qty
                if self.per_row:
                    self.sides[side] = levels = dict(self.top(side))
            self.sides[side] = dict(self.top(side))
        assert book_checksum(self.top("asks"), self.top("bids"), PD, LD) == data["checksum"]


class Level3Client:
    """Orders per price in queue order; add appends, modify changes qty, delete removes."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[int, list[tuple[str, int]]]] = {"asks": {}, "bids": {}}

    def top(self, side: str) -> list[tuple[int, list[tuple[str, int]]]]:
        return sorted(self.sides[side].items(), reverse=side == "bids")[: self.depth]

    def apply(self, frame: dict[str, Any]) -> None:
        data = frame["data"][0]
        if frame["type"] == "snapshot":
            self.sides = {"asks": {}, "bids": {}}
        for side in ("asks", "bids"):
            levels = self.sides[side]
            for row in data[side]:
                price, qty, order_id = (
                    ticks(row["limit_price"], PD),
                    ticks(row["order_qty"], LD),
                    row["order_id"],
                )
                event = row.get("event", "add")
                queue = levels.setdefault(price, [])
                if event == "add":
                    assert all(o != order_id for o, _ in queue), "add of an order already shown"
                    queue.append((order_id, qty))
                elif event == "modify":
                    index = [o for o, _ in queue].index(order_id)
                    queue[index] = (order_id, qty)
                else:
                    queue[:] = [(o, q) for o, q in queue if o != order_id]
                if not queue:
                    del levels[price]
            self.sides[side] = dict(self.top(side))
        text = "".join(
            level_text(price, PD) + level_text(qty, LD)
            for side in ("asks", "bids")
            for price, queue in self.top(side)[:10]
            for _, qty in queue
        )
        import zlib

        assert zlib.crc32(text.encode()) & 0xFFFFFFFF == data["checksum"]


@dataclass
class FakeExchange:
    engine: Engine
    instruments: Any = INSTRUMENTS


class Rig:
    """Engine, market views, publisher and level3 wired as the sequencer wires them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.engine = Engine(INSTRUMENTS)
        self.market = MarketData(INSTRUMENTS)
        self.market.attach(self.engine)
        self.registry = Registry()
        self.publisher = Publisher(self.market, self.registry, Flusher())
        self.publisher._want_round = lambda: None  # type: ignore[method-assign]  # rounds run by hand
        self.publisher.attach()
        self.level3 = Level3(FakeExchange(self.engine), self.registry)  # type: ignore[arg-type]
        self.seq = 0
        self.now = T0_NS
        for account in ACCOUNTS:
            self.run(
                [
                    Deposit(
                        ts_ns=self.now, account=account, asset=PAIR.quote.index, amount_minor=10**12, ref="u"
                    ),
                    Deposit(
                        ts_ns=self.now, account=account, asset=PAIR.base.index, amount_minor=10**12, ref="b"
                    ),
                ]
            )

    def run(self, commands: list[Command]) -> None:
        results = []
        for command in commands:
            self.seq += 1
            results.append((self.seq, command, self.engine.apply(command)))
        self.market.on_batch(results)
        self.level3.on_batch(results)

    def random_command(self) -> Command:
        rng = self.rng
        self.now += rng.randint(1, 5_000_000)
        account = rng.choice(ACCOUNTS)
        open_orders = list(self.engine.s.accounts[account].open)
        if open_orders and rng.random() < 0.25:
            return CancelOrders(ts_ns=self.now, account=account, order_nos=[rng.choice(open_orders)])
        side = rng.choice((Side.buy, Side.sell))
        offset = rng.randint(-40, 40) * 5
        price = MID_TICKS + offset
        volume = rng.choice((1, 2, 5, 10, 25)) * 100_000
        kind = rng.random()
        if kind < 0.08:
            return PlaceOrder(
                ts_ns=self.now,
                account=account,
                pair=PAIR.index,
                side=int(side),
                ordertype=int(OrderType.market),
                volume_lots=volume,
            )
        if kind < 0.15:
            return PlaceOrder(
                ts_ns=self.now,
                account=account,
                pair=PAIR.index,
                side=int(side),
                ordertype=int(OrderType.iceberg),
                volume_lots=volume * 4,
                price_ticks=price,
                display_lots=volume,
            )
        return PlaceOrder(
            ts_ns=self.now,
            account=account,
            pair=PAIR.index,
            side=int(side),
            ordertype=int(OrderType.limit),
            volume_lots=volume,
            price_ticks=price,
        )

    def engine_top(self, side: str, depth: int) -> list[tuple[int, int]]:
        book = self.engine.s.books[PAIR.index]
        return (book.asks if side == "asks" else book.bids).depth(depth)

    def engine_queues(self, side: str, depth: int) -> list[tuple[int, list[int]]]:
        book = self.engine.s.books[PAIR.index]
        engine_side = book.asks if side == "asks" else book.bids
        return [
            (price, [o.visible_lots for o in engine_side.levels[price].orders if o.resting])
            for price, _ in engine_side.depth(depth)
        ]


def subscribe(rig: Rig, channel: str, depth: int) -> tuple[CaptureWire, Subscription]:
    wire = CaptureWire()
    sub = Subscription(wire, channel, PAIR.index, depth)  # type: ignore[arg-type]
    rig.registry.add(sub)
    if channel == "book":
        wire.push(rig.publisher.book_snapshot(PAIR.index, depth))
    else:
        rig.level3.start(sub)
    return wire, sub


@pytest.mark.parametrize("seed", range(6))
def test_conflated_book_and_level3_frames_keep_clients_equal_to_the_engine(seed: int) -> None:
    rig = Rig(seed)
    books = [
        (subscribe(rig, "book", d)[0], BookClient(d, per_row)) for d in (10, 25) for per_row in (True, False)
    ]
    level3 = [(subscribe(rig, "level3", d)[0], Level3Client(d)) for d in (10, 100)]
    late: list[tuple[CaptureWire, BookClient]] = []
    for step in range(400):
        rig.run([rig.random_command() for _ in range(rig.rng.randint(1, 3))])
        for wire, l3 in level3:
            for frame in wire.take():
                l3.apply(frame)
            for side in ("asks", "bids"):
                shown = [(p, [q for _, q in queue]) for p, queue in l3.top(side)]
                assert shown == rig.engine_queues(side, l3.depth), f"level3 {side} differs at step {step}"
        if rig.rng.random() < 0.4:  # a publisher round folds every batch since the last one
            rig.publisher._round()
            for wire, client in books + late:
                for frame in wire.take():
                    client.apply(frame)
                for side in ("asks", "bids"):
                    assert client.top(side) == rig.engine_top(side, client.depth), (
                        f"book {side} at step {step}"
                    )
        if step % 100 == 50:  # a subscriber joining mid-stream starts from the publisher's view
            rig.publisher._round()
            for wire, client in books + late:
                for frame in wire.take():
                    client.apply(frame)
            late.append((subscribe(rig, "book", 10)[0], BookClient(10, True)))
    assert rig.engine.s.trade_no[PAIR.index] > 20, "the stream should have traded"
