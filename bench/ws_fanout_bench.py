"""CPU cost of one publish round per connection: the WS fan-out alone, without the engine's I/O.

Run from the repo root with the project venv (about 30 seconds)::

    python bench/ws_fanout_bench.py
    python bench/ws_fanout_bench.py --connections 0,1000 --rounds 2000 --repeat 3

One process serves (uvloop, pinned to CPU 0): an in-memory engine and market views, the real
``Publisher``, ``Registry`` and ``Wire``s on plain loopback TCP connections, each subscribed to
book depth 10 and trade on BTC/USD. A second process (CPU 1) opens the connections and discards
what it reads. Each round applies one order command (a third of them trade), then lets the
publisher write its round and waits until the flusher is idle. The figure is the server
thread's CPU time (user + system, so the socket writes count) per round, and per connection
after subtracting the run without connections: steadier than delays on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from machine import pin, raise_fd_limit

HERE = Path(__file__).resolve()
MID_TICKS = 300_000
READ_BYTES = 1 << 16


def _drain(port: int, count: int) -> None:
    """The client side: ``count`` connections whose bytes are read and dropped until the server leaves."""
    import selectors

    selector = selectors.DefaultSelector()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    print("connected", flush=True)
    open_ = count
    while open_:
        for key, _ in selector.select():
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            try:
                data = conn.recv(READ_BYTES)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(conn)
                conn.close()
                open_ -= 1


class _Rig:
    """Engine, market views and publisher as the sequencer wires them, with ``count`` subscribers."""

    def __init__(self) -> None:
        from abyssal.config import load_config
        from abyssal.core.engine import Engine
        from abyssal.core.messages import Deposit
        from abyssal.gateway.ws_publisher import Publisher
        from abyssal.gateway.ws_subscriptions import Registry
        from abyssal.gateway.ws_wire import Flusher
        from abyssal.runtime.market import MarketData

        self.instruments = load_config(None).instruments
        self.pair = self.instruments.pairs[0]
        self.engine = Engine(self.instruments)
        self.market = MarketData(self.instruments)
        self.market.attach(self.engine)
        self.registry = Registry()
        self.flusher = Flusher()
        self.publisher = Publisher(self.market, self.registry, self.flusher)
        self.publisher.attach()
        self.rng = random.Random(1)
        self.seq = 0
        self.run([
            Deposit(ts_ns=time.time_ns(), account=a, asset=asset, amount_minor=10**14, ref="b")
            for a in (1, 2) for asset in (self.pair.quote.index, self.pair.base.index)
        ])  # fmt: skip

    def run(self, commands: list[Any]) -> None:
        results = []
        for command in commands:
            self.seq += 1
            results.append((self.seq, command, self.engine.apply(command)))
        self.market.on_batch(results)

    def command(self) -> Any:
        from abyssal.core.messages import OrderType, PlaceOrder, Side, TimeInForce

        rng = self.rng
        side = rng.choice((Side.buy, Side.sell))
        taker = rng.random() < 0.33
        offset = -40 if taker else rng.randint(1, 30)
        price = MID_TICKS - offset if side == Side.buy else MID_TICKS + offset
        return PlaceOrder(
            ts_ns=time.time_ns(),
            account=2 if taker else 1,
            pair=self.pair.index,
            side=int(side),
            ordertype=int(OrderType.limit),
            volume_lots=rng.randint(1, 5) * 100_000,
            price_ticks=price,
            tif=int(TimeInForce.ioc if taker else TimeInForce.gtc),
        )

    def subscribe(self, transport: Any) -> None:
        from abyssal.gateway.ws_subscriptions import Subscription
        from abyssal.gateway.ws_wire import Wire

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError("the direct path never sends through ASGI")

        wire = Wire(send, self.flusher, transport)
        newest = self.publisher.newest_trade_id(self.pair.index)
        self.registry.add(Subscription(wire, "book", self.pair.index, 10))
        self.registry.add(Subscription(wire, "trade", self.pair.index, after_trade_id=newest))


async def _measure(count: int, rounds: int) -> tuple[float, float]:
    """CPU seconds and wall seconds of ``rounds`` rounds with ``count`` connections."""
    loop = asyncio.get_running_loop()
    rig = _Rig()
    for _ in range(300):  # a book to publish
        rig.run([rig.command()])
    transports: list[asyncio.BaseTransport] = []

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)

    server = await loop.create_server(Accept, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    client = None
    if count:
        client = subprocess.Popen(
            [sys.executable, str(HERE), "--drain", str(port), str(count)], stdout=subprocess.PIPE, text=True
        )
        assert client.stdout is not None
        await loop.run_in_executor(None, client.stdout.readline)
        while len(transports) < count:
            await asyncio.sleep(0.01)
    for transport in transports:
        rig.subscribe(transport)

    async def flusher_idle() -> None:
        idle: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not idle.done():
                idle.set_result(None)

        rig.flusher.when_idle(done)
        await idle

    async def one_round() -> None:
        rig.run([rig.command()])
        await flusher_idle()  # the round was wanted when the previous one was out: it ran first
        await flusher_idle()  # and what it queued is written

    for _ in range(50):  # warm up
        await one_round()
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for _ in range(rounds):
        await one_round()
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    for transport in transports:
        transport.close()
    server.close()
    if client is not None:
        await loop.run_in_executor(None, client.wait)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", default="0,1000", help="comma-separated; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drain", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.drain:
        pin(1)
        _drain(*args.drain)
        return
    import uvloop

    pin(0)
    counts = [int(c) for c in args.connections.split(",")]
    print(
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.rounds} rounds, best of {args.repeat}"
    )
    base_us = 0.0
    for count in counts:
        runs = [uvloop.run(_measure(count, args.rounds)) for _ in range(args.repeat)]
        cpu, wall = min(runs)
        per_round_us = cpu / args.rounds * 1e6
        if count == counts[0]:
            base_us = per_round_us
        per_conn = f"{(per_round_us - base_us) / count:.2f} µs per connection" if count else "baseline"
        print(
            f"  {count:5d} connections: CPU {per_round_us:8.1f} µs per round ({per_conn}), "
            f"wall {wall / args.rounds * 1e6:8.1f} µs per round; all CPU runs (s): "
            + ", ".join(f"{c:.3f}" for c, _ in runs)
        )


if __name__ == "__main__":
    main()
