"""A publish round's fan-out: one byte string per group of identical subscriptions, one write each.

Most subscribers of a busy pair hold the same public subscriptions (say book depth 10 and trade
on BTC/USD), so in a round they all receive the same frames. ``Fanout`` keeps the direct wires
in *cohorts*, one per set of public group keys, rebuilt only when a subscription starts or ends
or a wire stops sending. A round then joins, per cohort, the round's frames for its keys into
one byte string and hands it to each member's ``transport.write``: no per-connection buffer,
object or method call besides the write (docs/adr/0004-websocket.md).

What cannot take that path goes through ``Subscription.deliver`` and the wire's own buffer, as
before: ASGI wires, a subscription still waiting for its snapshot, and (``deliver_each``) a round
in which some subscriber must get other bytes than the rest. Ordering holds because the round
first writes whatever the flusher had pending. Transports written this way are not checked after
each write: every ``BUFFER_CHECK_S`` a round checks them all and closes slow consumers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final

from abyssal.gateway.ws_subscriptions import GroupKey, Registry, Subscription
from abyssal.gateway.ws_wire import BUFFER_CHECK_S, SEND_BUFFER_BYTES_MAX, Flusher, Out, Stamp, Wire

Frames = list[tuple[GroupKey, Out]]  # a round's frames, in the order each connection gets them

PUBLIC_ROUND_CHANNELS: Final = ("book", "trade", "ticker", "ohlc")


class Cohort:
    """Direct wires subscribed to exactly ``keys``: they get the same bytes each round."""

    __slots__ = ("keys", "stamp", "wires", "writes")

    def __init__(self, keys: frozenset[GroupKey]) -> None:
        self.keys = keys
        self.stamp = Stamp()
        self.wires: list[Wire] = []
        self.writes: list[Callable[[bytes], object]] = []  # each wire's ``transport.write``


def _write_each(writes: Iterable[Callable[[bytes], object]], data: bytes) -> None:
    """``data`` to every transport; one that closed under us (uvloop raises) is skipped."""
    remaining = iter(writes)
    while True:
        try:
            for write in remaining:
                write(data)
            return
        except RuntimeError:  # its connection is being torn down: the session ends it soon
            continue


class Fanout:
    def __init__(self, registry: Registry, flusher: Flusher) -> None:
        self.registry = registry
        self.flusher = flusher
        self._cohorts: list[Cohort] = []
        self._slow: dict[GroupKey, list[Subscription]] = {}  # members that take the buffered path
        self._built_for = (-1, -1)  # (registry, flusher) versions the cohorts reflect
        self._checked_s = 0.0

    def send(self, frames: Frames) -> int:
        """Write one round; returns how many (frame, subscriber) deliveries it made."""
        self.flusher.flush_pending()
        self._refresh()
        now = time.monotonic()
        if now - self._checked_s >= BUFFER_CHECK_S:
            self._checked_s = now
            self._check_buffers()
            self._refresh()  # slow consumers it closed leave their cohorts
        deliveries = 0
        for cohort in self._cohorts:
            keys = cohort.keys
            mine = [out.framed() for key, out in frames if key in keys]
            if mine:
                _write_each(cohort.writes, mine[0] if len(mine) == 1 else b"".join(mine))
                cohort.stamp.s = now
                deliveries += len(mine) * len(cohort.writes)
        slow = self._slow
        if slow:
            for key, out in frames:
                for sub in slow.get(key, ()):
                    sub.deliver(out)
                    deliveries += 1
        return deliveries

    def deliver_each(self, frames: Frames, instead: dict[Subscription, Out | None]) -> int:
        """The buffered path for everyone: ``instead`` maps a subscriber to its own frame (or none)."""
        deliveries = 0
        for key, out in frames:
            for sub in self.registry.members(key):
                frame = instead.get(sub, out)
                if frame is not None:
                    sub.deliver(frame)
                    deliveries += 1
        return deliveries

    def _check_buffers(self) -> None:
        """Slow-consumer checks for the transports rounds write to unchecked."""
        for cohort in self._cohorts:
            for wire in cohort.wires:
                transport = wire.transport
                if wire.closed or transport is None:
                    continue
                if transport.is_closing():
                    wire.lost()
                elif wire.full_since is not None or transport.get_write_buffer_size() > SEND_BUFFER_BYTES_MAX:
                    wire.check_full()

    def _refresh(self) -> None:
        """Rebuild the cohorts if a subscription started or ended or a wire stopped since."""
        if self._built_for == (self.registry.version, self.flusher.version):
            return
        self._built_for = (self.registry.version, self.flusher.version)
        by_wire: dict[Wire, dict[GroupKey, Subscription]] = {}
        for channel in PUBLIC_ROUND_CHANNELS:
            for key in self.registry.keys(channel):
                for sub in self.registry.members(key):
                    by_wire.setdefault(sub.wire, {})[key] = sub
        cohorts: dict[frozenset[GroupKey], Cohort] = {}
        self._slow = {}
        for wire, subs in by_wire.items():
            transport = wire.transport
            if transport is None or wire.closed or not all(sub.ready for sub in subs.values()):
                for key, sub in subs.items():
                    self._slow.setdefault(key, []).append(sub)
                continue
            keys = frozenset(subs)
            cohort = cohorts.get(keys)
            if cohort is None:
                cohort = cohorts[keys] = Cohort(keys)
            cohort.wires.append(wire)
            cohort.writes.append(transport.write)
            wire.join(cohort.stamp)
        for old in self._cohorts:
            for wire in old.wires:
                if wire.stamp is old.stamp:  # in no cohort now: its own time again
                    wire.join(Stamp())
        self._cohorts = list(cohorts.values())
