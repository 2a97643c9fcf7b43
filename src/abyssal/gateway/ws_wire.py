"""One connection's outbound side: a bounded send buffer, time-sliced flushing, slow-consumer close.

Publishers only ever ``push``: it appends to the wire's buffer and never awaits, so neither the
sequencer nor a broadcast can stall on a subscriber. A shared ``Flusher`` writes buffered frames
``WIRES_PER_SLICE`` connections per event-loop turn (other work runs in between), joining all a
connection has pending into one socket write. Public rounds skip the buffer: ``ws_fanout`` writes
one byte string per group of identical subscriptions straight to the transports, after the
flusher wrote what was pending (so frames keep their order), and checks those transports'
buffers every ``BUFFER_CHECK_S``.

Two ways to the socket (docs/adr/0004-websocket.md):
- *direct*: under uvicorn's websockets-sansio protocol without permessage-deflate, a frame is
  ``0x81 <len> <payload>``, identical for every subscriber, so it is built once per broadcast and
  written to each transport (one syscall per connection and flush instead of one per frame);
- *ASGI*: anything else (another server, a compressed connection) goes through ``send`` from a
  per-connection writer task.

A connection whose buffer (ours plus the transport's) stays above ``SEND_BUFFER_BYTES_MAX`` for
``SEND_BUFFER_FULL_S_MAX``, or ever exceeds ``SEND_BUFFER_BYTES_HARD_MAX``, is closed with code
1008 and the reason ``SLOW_CONSUMER_REASON``; what it had not read is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import structlog

log = structlog.get_logger("abyssal.ws")

Send = Callable[[dict[str, Any]], Awaitable[None]]

SEND_BUFFER_BYTES_MAX: Final = 4 * 1024 * 1024  # per connection, ours + the transport's
SEND_BUFFER_BYTES_HARD_MAX: Final = 2 * SEND_BUFFER_BYTES_MAX  # beyond it: closed at once
SEND_BUFFER_FULL_S_MAX: Final = 2.0  # how long a connection may stay above the soft limit
WIRES_PER_SLICE: Final = 128  # connections flushed per event-loop turn (about 0.3 ms of writes)
BUFFER_CHECK_S: Final = 0.05  # how often transports written without a check are checked
IDLE_WAIT_S_MAX: Final = 0.05  # the longest a publish round waits for the previous one to be written
CLOSE_TIMEOUT_S: Final = 5.0  # a close that cannot be written by then aborts the transport
SLOW_CONSUMER_CODE: Final = 1008
SLOW_CONSUMER_REASON: Final = "send buffer full: the client does not read fast enough"
DIRECT_ENV: Final = "ABYSSAL_WS_DIRECT"  # "0" forces the portable ASGI path


_closing: set[asyncio.Task[None]] = set()


def ws_header(length: int) -> bytes:
    """Header of an unmasked, final text frame of ``length`` payload bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 1 << 16:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


class Out:
    """One outgoing JSON frame; the framed bytes and the text are built once and shared."""

    __slots__ = ("_framed", "_text", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._framed: bytes | None = None
        self._text: str | None = None

    def __len__(self) -> int:
        return len(self.payload)

    def framed(self) -> bytes:
        if self._framed is None:
            self._framed = ws_header(len(self.payload)) + self.payload
        return self._framed

    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode("utf-8")
        return self._text


def direct_transport(send: Send) -> asyncio.Transport | None:
    """uvicorn's transport behind ``send`` when frames may be written to it as-is, else None."""
    if os.environ.get(DIRECT_ENV) == "0":
        return None
    proto = getattr(send, "__self__", None)
    if type(proto).__name__ != "WebSocketsSansIOProtocol":
        return None
    conn = getattr(proto, "conn", None)
    transport = getattr(proto, "transport", None)
    if conn is None or getattr(conn, "extensions", True):
        return None  # compressed (or unknown) connections need the protocol to frame them
    # uvloop's transports are not registered as asyncio.Transport subclasses: check the methods used
    if not all(hasattr(transport, m) for m in ("write", "get_write_buffer_size", "is_closing", "abort")):
        return None
    return cast(asyncio.Transport, transport)


class Stamp:
    """When a group of wires was last written to (shared, so a broadcast updates it once)."""

    __slots__ = ("s",)

    def __init__(self, s: float = 0.0) -> None:
        self.s = s


class Flusher:
    """Writes pending wires, ``wires_per_slice`` per loop turn, and tells when a round is out.

    Direct wires are written here; ASGI wires write from their own task and count as busy until
    their queue is empty. ``when_idle`` waits for both, but never longer than ``IDLE_WAIT_S_MAX``:
    one connection that cannot take its frames must not hold back everybody's next round.
    ``version`` changes whenever a wire stops sending (closed, or its transport went away).
    """

    def __init__(self, wires_per_slice: int = WIRES_PER_SLICE) -> None:
        assert wires_per_slice > 0
        self.wires_per_slice = wires_per_slice
        self._pending: deque[Wire] = deque()
        self._busy: set[Wire] = set()  # ASGI wires still sending
        self._scheduled = False
        self._idle_callbacks: list[Callable[[], None]] = []
        self._deadline: asyncio.TimerHandle | None = None
        self.version = 0

    def schedule(self, wire: Wire) -> None:
        self._pending.append(wire)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def busy(self, wire: Wire) -> None:
        self._busy.add(wire)

    def done(self, wire: Wire) -> None:
        self._busy.discard(wire)
        if not self._busy and not self._pending:
            self._fire()

    def flush_pending(self) -> None:
        """Write every pending direct wire now (a round's direct writes must come after them)."""
        pending = self._pending
        while pending:
            pending.popleft().flush()

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once nothing is pending (now, on the next turn, if already idle)."""
        loop = asyncio.get_running_loop()
        if not self._pending and not self._busy:
            loop.call_soon(callback)
            return
        self._idle_callbacks.append(callback)
        if self._deadline is None:
            self._deadline = loop.call_later(IDLE_WAIT_S_MAX, self._fire)

    def _drain(self) -> None:
        pending = self._pending
        for _ in range(min(self.wires_per_slice, len(pending))):
            pending.popleft().flush()
        if pending:
            asyncio.get_running_loop().call_soon(self._drain)
            return
        self._scheduled = False
        if not self._busy:
            self._fire()

    def _fire(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._busy.clear()  # whoever is still sending is behind: rounds stop waiting for it
        callbacks, self._idle_callbacks = self._idle_callbacks, []
        for callback in callbacks:
            callback()


class Wire:
    """The outbound buffer of one connection (see module doc)."""

    __slots__ = (
        "_flusher",
        "_framed",
        "_frames",
        "_last_sent_s",
        "_ready",
        "_send",
        "_writer",
        "closed",
        "full_since",
        "queued_bytes",
        "scheduled",
        "stamp",
        "transport",
    )

    def __init__(self, send: Send, flusher: Flusher, transport: asyncio.Transport | None) -> None:
        self._send = send
        self._flusher = flusher
        self.transport = transport
        self._frames: deque[Out] = deque()  # ASGI path
        self._framed: deque[bytes] = deque()  # direct path: frames as written to the socket
        self.queued_bytes = 0
        self.scheduled = False
        self.closed = False
        self.full_since: float | None = None
        self._last_sent_s = time.monotonic()
        self.stamp = Stamp()  # a fan-out cohort's, while the wire is written as part of one
        self._ready: asyncio.Event | None = None  # the ASGI path's writer task waits on it
        self._writer: asyncio.Task[None] | None = None
        if transport is None:
            self._ready = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._asgi_writer(self._ready))

    @property
    def last_sent_s(self) -> float:
        """When anything was last written to this connection (monotonic seconds)."""
        return max(self._last_sent_s, self.stamp.s)

    def join(self, stamp: Stamp) -> None:
        """From now on broadcasts write to this wire as part of the group that shares ``stamp``."""
        self._last_sent_s = self.last_sent_s
        self.stamp = stamp

    def buffered_bytes(self) -> int:
        transport_bytes = self.transport.get_write_buffer_size() if self.transport is not None else 0
        return self.queued_bytes + transport_bytes

    def push(self, out: Out | bytes) -> None:
        """Queue one frame; never awaits. A closed wire drops it."""
        if self.closed:
            return
        frame = out if type(out) is Out else Out(out)  # type: ignore[arg-type]
        if self._ready is None:  # direct: keep the framed bytes, shared by every subscriber
            data = frame.framed()
            self._framed.append(data)
            self.queued_bytes += len(data)
            if not self.scheduled:
                self.scheduled = True
                self._flusher.schedule(self)
            return
        self._frames.append(frame)
        self.queued_bytes += len(frame.payload)
        if len(self._frames) == 1:  # it had caught up: the next round waits for it (a while)
            self._flusher.busy(self)
        if not self.scheduled:
            self.scheduled = True
            self._ready.set()
        if self.queued_bytes > SEND_BUFFER_BYTES_MAX:
            self.check_full()  # the direct path checks after each write instead

    def check_full(self) -> bool:
        """Close the wire when its buffer stayed full too long (True when it was closed)."""
        buffered = self.buffered_bytes()
        if buffered <= SEND_BUFFER_BYTES_MAX:
            self.full_since = None
            return False
        now = time.monotonic()
        if self.full_since is None:
            self.full_since = now
        if buffered > SEND_BUFFER_BYTES_HARD_MAX or now - self.full_since > SEND_BUFFER_FULL_S_MAX:
            log.warning("ws_slow_consumer_closed", buffered_bytes=buffered)
            self.close(SLOW_CONSUMER_CODE, SLOW_CONSUMER_REASON, flush_pending=False)
            return True
        return False

    def flush(self) -> None:
        """Direct path: write everything pending in one call (the flusher calls this)."""
        self.scheduled = False
        transport = self.transport
        if self.closed or transport is None or not self._framed:
            return
        if transport.is_closing():
            self.lost()
            return
        framed = self._framed
        data = framed[0] if len(framed) == 1 else b"".join(framed)
        self._last_sent_s = time.monotonic()
        framed.clear()
        self.queued_bytes = 0
        transport.write(data)
        if self.full_since is not None or transport.get_write_buffer_size() > SEND_BUFFER_BYTES_MAX:
            self.check_full()

    async def _asgi_writer(self, ready: asyncio.Event) -> None:
        """ASGI path: one ``send`` per frame, in order, until the wire closes."""
        try:
            while not self.closed:
                await ready.wait()
                ready.clear()
                self.scheduled = False
                while self._frames and not self.closed:
                    frame = self._frames.popleft()
                    self.queued_bytes -= len(frame)
                    await self._send({"type": "websocket.send", "text": frame.text()})
                    self._last_sent_s = time.monotonic()
                self._flusher.done(self)
        except OSError:  # uvicorn's ClientDisconnected: the reader side notices too
            self._drop()
        finally:
            self._flusher.done(self)

    def _drop(self) -> None:
        self._frames.clear()
        self._framed.clear()
        self.queued_bytes = 0

    def _stop(self) -> None:
        """No more data frames: drop the backlog and leave the flusher's fan-out groups."""
        self.closed = True
        self._drop()
        self._flusher.version += 1

    def lost(self) -> None:
        """The transport is closing (the peer left): stop sending; ``finish`` follows."""
        if not self.closed:
            self._stop()

    def close(self, code: int = 1000, reason: str = "", *, flush_pending: bool = True) -> None:
        """Stop sending data and close with ``code``/``reason`` (idempotent).

        ``flush_pending`` writes what was queued before the close frame (an error reply);
        a slow consumer's backlog is dropped instead.
        """
        if self.closed:
            return
        last: list[Out] = []
        if flush_pending and self.transport is not None:
            self.flush()
        elif flush_pending:
            last = list(self._frames)
        self._stop()
        if self._ready is not None:
            self._ready.set()
        task = asyncio.get_running_loop().create_task(self._close(code, reason, last))
        _closing.add(task)  # a task nobody references may be collected before it runs
        task.add_done_callback(_closing.discard)

    async def _close(self, code: int, reason: str, last: list[Out]) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._writer
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                for frame in last:
                    await self._send({"type": "websocket.send", "text": frame.text()})
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except (TimeoutError, OSError, RuntimeError):
            if self.transport is not None and not self.transport.is_closing():
                self.transport.abort()  # the peer never drained its buffer: drop the socket

    async def finish(self) -> None:
        """The connection is gone: stop the writer task (no close frame: the peer left)."""
        if not self.closed:
            self._stop()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._writer
