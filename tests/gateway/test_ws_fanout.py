"""Publish rounds write one byte string per group of identical subscriptions, keeping order and bounds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from abyssal.gateway.ws_fanout import Fanout, Frames
from abyssal.gateway.ws_subscriptions import Registry, Subscription
from abyssal.gateway.ws_wire import (
    SEND_BUFFER_BYTES_HARD_MAX,
    SLOW_CONSUMER_CODE,
    SLOW_CONSUMER_REASON,
    Flusher,
    Out,
    Wire,
)

BOOK = ("book", 0, 10)
TRADE = ("trade", 0)


class FakeTransport:
    """Records writes; ``buffered`` is what the kernel did not take."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        if self.closing:
            raise RuntimeError("the handler is closed")
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


class Rig:
    def __init__(self) -> None:
        self.registry = Registry()
        self.flusher = Flusher()
        self.fanout = Fanout(self.registry, self.flusher)
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def wire(self, *keys: tuple[object, ...], direct: bool = True) -> tuple[Wire, FakeTransport]:
        transport = FakeTransport()
        wire = Wire(self.send, self.flusher, transport if direct else None)  # type: ignore[arg-type]
        for key in keys:
            if key == BOOK:
                self.registry.add(Subscription(wire, "book", 0, depth=10))
            else:
                self.registry.add(Subscription(wire, "trade", 0))
        return wire, transport


def frames() -> Frames:
    return [(BOOK, Out(b'{"channel":"book"}')), (TRADE, Out(b'{"channel":"trade"}'))]


def test_identical_subscriptions_get_one_joined_write_each() -> None:
    async def scenario() -> None:
        rig = Rig()
        both = [rig.wire(BOOK, TRADE) for _ in range(3)]
        _, book_only = rig.wire(BOOK)
        asgi, _ = rig.wire(BOOK, TRADE, direct=False)
        round_frames = frames()
        before = time.monotonic()
        assert rig.fanout.send(round_frames) == 2 * 3 + 1 + 2
        joined = round_frames[0][1].framed() + round_frames[1][1].framed()
        assert [t.writes for _, t in both] == [[joined]] * 3
        assert book_only.writes == [round_frames[0][1].framed()]
        await asyncio.sleep(0.01)  # the ASGI wire's writer task sends frame by frame
        assert [m["text"] for m in rig.sent] == ['{"channel":"book"}', '{"channel":"trade"}']
        assert both[0][0].last_sent_s >= before  # no heartbeat while rounds are written
        await asgi.finish()

    asyncio.run(scenario())


def test_frames_pushed_before_a_round_are_written_first() -> None:
    async def scenario() -> None:
        rig = Rig()
        wire, transport = rig.wire(BOOK, TRADE)
        wire.push(b'{"method":"subscribe"}')
        rig.fanout.send(frames())
        assert len(transport.writes) == 2
        assert transport.writes[0].endswith(b'{"method":"subscribe"}')

    asyncio.run(scenario())


def test_closed_and_vanished_connections_are_skipped_and_the_rest_written() -> None:
    async def scenario() -> None:
        rig = Rig()
        (closed, closed_t), (_, gone_t), (_, ok_t) = (rig.wire(BOOK) for _ in range(3))
        rig.fanout.send(frames())
        closed.close(1000, "bye")
        gone_t.closing = True  # the peer left; uvloop raises on write until the session ends
        rig.fanout.send(frames())
        assert (len(closed_t.writes), len(gone_t.writes), len(ok_t.writes)) == (1, 1, 2)
        await asyncio.sleep(0.01)
        assert rig.sent == [{"type": "websocket.close", "code": 1000, "reason": "bye"}]

    asyncio.run(scenario())


def test_a_transport_over_the_hard_limit_is_closed_with_the_reason() -> None:
    async def scenario() -> None:
        rig = Rig()
        (slow, slow_t), (_, other_t) = rig.wire(BOOK), rig.wire(BOOK)
        slow_t.buffered = SEND_BUFFER_BYTES_HARD_MAX + 1
        rig.fanout.send(frames())  # the first round checks buffers
        assert slow.closed and slow_t.writes == [] and len(other_t.writes) == 1
        await asyncio.sleep(0.01)
        assert rig.sent == [
            {"type": "websocket.close", "code": SLOW_CONSUMER_CODE, "reason": SLOW_CONSUMER_REASON}
        ]

    asyncio.run(scenario())


def test_a_subscriber_with_its_own_frame_takes_the_buffered_path() -> None:
    async def scenario() -> None:
        rig = Rig()
        (_, early_t), (late, late_t) = rig.wire(BOOK, TRADE), rig.wire(BOOK, TRADE)
        late_trade = next(s for s in rig.registry.members(TRADE) if s.wire is late)
        own = Out(b'{"channel":"trade","fresh":1}')
        rig.fanout.deliver_each(frames(), {late_trade: own})
        rig.flusher.flush_pending()
        assert early_t.writes == [frames()[0][1].framed() + frames()[1][1].framed()]
        assert late_t.writes == [frames()[0][1].framed() + own.framed()]

    asyncio.run(scenario())


def test_subscribing_elsewhere_moves_a_connection_to_another_group() -> None:
    async def scenario() -> None:
        rig = Rig()
        wire, transport = rig.wire(BOOK)
        rig.fanout.send(frames())
        rig.registry.add(Subscription(wire, "trade", 0))
        rig.fanout.send(frames())
        book, trade = (out.framed() for _, out in frames())
        assert transport.writes == [book, book + trade]

    asyncio.run(scenario())
