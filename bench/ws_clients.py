"""WS clients: raw WebSocket v2 connections that subscribe and count frames; probes time deliveries.

Run by ws_phases.py as its own process (``ws_bench.py --clients PORT COUNT PROBES SUBSCRIBE``); it
prints ``{"connected": N}`` once every connection is ready, then answers ``report LO_NS HI_NS`` on
stdin with one JSON line until ``quit``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from datetime import datetime
from typing import Any

from percentile import percentile
from ws_phases import answer, commands

SYMBOL = "BTC/USD"
CONNECT_WAVE = 250  # connections opened at once: the listen backlog is finite


def _percentiles(values: list[float]) -> list[float]:
    """p50, p99 and p99.9 (NaN when a window has no samples)."""
    ordered = sorted(values)
    return [percentile(ordered, p) if ordered else float("nan") for p in (50, 99, 99.9)]


def _delay_s(payload: bytes, now_ns: int) -> float:
    """Seconds from the frame's first ``timestamp`` to ``now_ns``."""
    at = payload.find(b'"timestamp":"')
    sent = datetime.fromisoformat(payload[at + 13 : at + 40].decode()).timestamp()
    return now_ns / 1e9 - sent


class Client(asyncio.Protocol):
    """One raw v2 connection: handshake, minimal frame parsing, optional JSON parsing for delays."""

    def __init__(self, stats: dict[str, Any], probe: bool, subscribe: bool) -> None:
        self.stats, self.probe, self.subscribe = stats, probe, subscribe
        self.buf = b""
        self.handshake = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.snapshots = 0
        self.closed_by_server = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /v2 HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        header = (
            bytes((0x81, 0x80 | len(payload)))
            if len(payload) < 126
            else bytes((0x81, 0xFE)) + len(payload).to_bytes(2, "big")
        )
        self.transport.write(header + b"\0\0\0\0" + payload)  # a zero mask leaves the payload as is

    def data_received(self, data: bytes) -> None:
        if self.handshake and not self.probe:  # the crowd only counts bytes: the client CPU is the limit
            self.stats["bytes"] += len(data)
            if not self.ready.done() and b'"type":"snapshot"' in data:
                self.ready.set_result(None)
            return
        buf = self.buf + data
        if not self.handshake:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.handshake = True
            buf = buf[end + 4 :]
            if self.subscribe:
                self.send(
                    {"method": "subscribe", "params": {"channel": "book", "symbol": [SYMBOL], "depth": 10}}
                )
                self.send({"method": "subscribe", "params": {"channel": "trade", "symbol": [SYMBOL]}})
            else:
                self.ready.set_result(None)
            if not self.probe:
                self.data_received(buf)
                return
        stats = self.stats
        pos, size = 0, len(buf)
        now_ns = time.time_ns()
        while size - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if length >= 126:  # a 16-bit (126) or 64-bit (127) extended length follows
                head = 4 if length == 126 else 10
                if size - pos < head:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + head], "big")
            if size - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            if opcode == 8:
                self.closed_by_server = True
                continue
            stats["probe_frames"] += 1
            stats["bytes"] += head + length
            self.frame(payload, now_ns)
        self.buf = buf[pos:]

    def frame(self, payload: bytes, now_ns: int) -> None:
        if payload.startswith(b'{"channel":"book","type":"snapshot"'):
            self.snapshots += 1
            if self.snapshots == 1 and not self.ready.done():
                self.ready.set_result(None)
        elif self.probe and payload.startswith(b'{"channel":"book","type":"update"'):
            self.stats["book"].append((now_ns, _delay_s(payload, now_ns)))
        elif self.probe and payload.startswith(b'{"channel":"trade","type":"update"'):
            # the first timestamp is the oldest trade of the frame: the longest wait
            self.stats["trade"].append((now_ns, _delay_s(payload, now_ns)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["lost"] += 1


def _report(stats: dict[str, Any], conns: list[Client], cpu_samples: list[tuple[int, float]],
            lo: int, hi: int) -> dict[str, Any]:  # fmt: skip
    """The counters so far, and the client CPU and probe delays within the window ``lo..hi`` (ns)."""
    window = [(t, c) for t, c in cpu_samples if lo <= t <= hi]
    cpu = (window[-1][1] - window[0][1]) / ((window[-1][0] - window[0][0]) / 1e9) if len(window) > 1 else 0
    book = [d * 1000 for t, d in stats["book"] if lo <= t <= hi]
    trade = [d * 1000 for t, d in stats["trade"] if lo <= t <= hi]
    return {
        "probe_frames": stats["probe_frames"],
        "bytes": stats["bytes"],
        "lost": stats["lost"],
        "cpu": cpu,
        "closed_by_server": sum(c.closed_by_server for c in conns),
        "book_ms": _percentiles(book),
        "book_n": len(book),
        "trade_ms": _percentiles(trade),
        "trade_n": len(trade),
    }


async def clients(port: int, count: int, probes: int, subscribe: bool) -> None:
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {"probe_frames": 0, "bytes": 0, "lost": 0, "book": [], "trade": []}
    conns: list[Client] = []
    for start in range(0, count, CONNECT_WAVE):  # in waves: the listen backlog is finite
        wave = []
        for i in range(start, min(count, start + CONNECT_WAVE)):
            client = Client(stats, i < probes, subscribe)
            wave.append(loop.create_connection(lambda c=client: c, "127.0.0.1", port))  # type: ignore[misc]
            conns.append(client)
        await asyncio.gather(*wave)
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in conns[start:])), 60)
    answer({"connected": len(conns)})
    samples: list[tuple[int, float]] = []

    async def sample_cpu() -> None:  # is the client side the bottleneck? its CPU use tells
        while True:
            t = os.times()
            samples.append((time.time_ns(), t.user + t.system))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_cpu())
    async for line in commands():
        if line[0] == "report":
            answer(_report(stats, conns, samples, int(line[1]), int(line[2])))
    sampler.cancel()
    for c in conns:
        c.transport.close()
