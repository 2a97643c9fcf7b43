"""Order driver: AddOrders over HTTP/1.1 keep-alive connections, closed loop or paced over a pool.

Each connection is one ``Trader`` (its own keys and order stream); every answer is timed from the
write of its request, and each acknowledged txid is kept with the account that owns it.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httptools
from traders import Account, Trader

DRAIN_S = 20.0  # after the run, how long answers still in flight may take


@dataclass
class Ack:
    txid: str
    account: Account
    sent: float  # perf_counter
    done: float


class Conn(asyncio.Protocol):
    def __init__(self, driver: Driver, trader: Trader, host: str) -> None:
        self.driver = driver
        self.trader = trader
        self.host = host
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.account: Account | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        done = time.perf_counter()
        body = b"".join(self.body)
        self.body.clear()
        self.busy = False
        self.driver.completed(self, self.parser.get_status_code(), body, self.sent_at, done)

    def send(self) -> None:
        assert self.transport is not None
        request, self.account = self.trader.add_order(self.host)
        self.busy = True
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.driver.closing:
            self.driver.lost += 1


class Driver:
    """Closed loop (each connection sends again when answered) or paced (``rate``/s over idle ones)."""

    def __init__(self, traders: Sequence[Trader], ports: Sequence[int], rate: float | None = None) -> None:
        self.traders = traders
        self.ports = ports
        self.rate = rate
        self.running = False
        self.closing = False
        self.conns: list[Conn] = []
        # paced: first in, first out, so no connection idles past the server's keep-alive timeout
        self.idle: collections.deque[Conn] = collections.deque()
        self.acks: list[Ack] = []
        self.latencies: list[tuple[float, float]] = []  # (done, ms) of every answered request
        self.bad = 0
        self.err_sample = ""
        self.lost = 0
        self.skipped = 0  # paced: no idle connection when a send was due

    def completed(self, conn: Conn, status: int, body: bytes, sent: float, done: float) -> None:
        self.latencies.append((done, (done - sent) * 1000))
        start = body.find(b'"txid":["')
        if status == 200 and body.startswith(b'{"error":[]') and start >= 0:
            start += len(b'"txid":["')
            assert conn.account is not None
            txid = body[start : body.index(b'"', start)].decode()
            self.acks.append(Ack(txid, conn.account, sent, done))
        else:
            self.bad += 1
            self.err_sample = self.err_sample or f"{status} {body[:200]!r}"
        if self.running and self.rate is None:
            conn.send()
        else:
            self.idle.append(conn)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for i, trader in enumerate(self.traders):
            port = self.ports[i % len(self.ports)]
            _, conn = await loop.create_connection(functools.partial(Conn, self, trader, f"127.0.0.1:{port}"),
                                                   "127.0.0.1", port)  # fmt: skip
            self.conns.append(conn)

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Send for ``seconds`` (or until ``stop``), then wait for every answer (bounded)."""
        self.running = True
        end = time.perf_counter() + seconds
        if self.rate is None:
            for c in self.conns:
                c.send()
            while time.perf_counter() < end and not (stop and stop.is_set()):
                await asyncio.sleep(0.05)
        else:
            self.idle = collections.deque(self.conns)
            start, sent = time.perf_counter(), 0
            while time.perf_counter() < end and not (stop and stop.is_set()):
                due = int((time.perf_counter() - start) * self.rate) + 1
                while sent < due:
                    sent += 1
                    while self.idle and not self.idle[0].usable():
                        self.idle.popleft()  # closed by the server: counted in ``lost``
                    if self.idle:
                        self.idle.popleft().send()
                    else:
                        self.skipped += 1
                await asyncio.sleep(0.002)
        self.running = False
        deadline = time.perf_counter() + DRAIN_S
        while any(c.busy for c in self.conns) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.closing = True
        for c in self.conns:
            if c.transport is not None:
                c.transport.close()
