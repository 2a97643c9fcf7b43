"""Who listens to what: one ``Subscription`` per (connection, channel, symbol), grouped for fan-out.

A group key names everything that receives the same bytes: ``("book", pair, depth)``,
``("ticker", pair, trigger)``, ``("trade", pair)``, ``("ohlc", pair, interval)``,
``("instrument",)``, ``("level3", pair, depth)``; private groups are per account
(``("executions", account)``, ``("balances", account)``). A publisher encodes a frame once per
group and pushes the same bytes to every member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from abyssal.gateway.ws_wire import Out

if TYPE_CHECKING:
    from abyssal.gateway.ws_wire import Wire

GroupKey = tuple[object, ...]

HELD_FRAMES_MAX: Final = 10_000  # updates held while a snapshot is read from storage


@dataclass(slots=True, eq=False)
class Subscription:
    """One subscription of one connection; ``active`` turns False when it ends."""

    wire: Wire
    channel: str
    pair: int = -1  # -1 for channels without a symbol
    depth: int = 0
    interval: int = 0
    trigger: str = ""
    snapshot: bool = True
    account: int = -1
    snap_orders: bool = True
    snap_trades: bool = False
    order_status: bool = True
    after_trade_id: int = 0  # trade channel: trades up to this id were in the snapshot
    after_seq: int = 0  # private channels: batches up to this seq were in the snapshot
    token: str = ""  # private channels: the token it was made with (pinned while it lives)
    sequence: int = 0  # private channels: the last ``sequence`` sent on this subscription
    active: bool = True
    ready: bool = True  # False while its snapshot is being read; updates wait in ``held``
    held: list[Out] = field(default_factory=list)

    @property
    def group(self) -> GroupKey:
        channel = self.channel
        if channel == "book" or channel == "level3":
            return (channel, self.pair, self.depth)
        if channel == "ticker":
            return (channel, self.pair, self.trigger)
        if channel == "ohlc":
            return (channel, self.pair, self.interval)
        if channel == "trade":
            return (channel, self.pair)
        if channel == "executions" or channel == "balances":
            return (channel, self.account)
        return (channel,)

    def deliver(self, out: Out | bytes) -> None:
        """Push to the connection, or hold it until the snapshot went out."""
        if not self.active:
            return
        if self.ready:
            self.wire.push(out)
        elif len(self.held) < HELD_FRAMES_MAX:
            self.held.append(out if isinstance(out, Out) else Out(out))
        else:  # a snapshot read that never ends must not grow memory without bound
            self.active = False
            self.wire.close(1011, "snapshot did not complete", flush_pending=False)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def release(self) -> None:
        """The snapshot went out: send what was held, then deliver directly."""
        self.ready = True
        held, self.held = self.held, []
        for out in held:
            self.wire.push(out)


class Registry:
    """Subscriptions by group, in subscription order; ``version`` counts joins and leaves."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, dict[Subscription, None]] = {}
        self.version = 0

    def add(self, sub: Subscription) -> None:
        assert sub.active
        self.version += 1
        self._groups.setdefault(sub.group, {})[sub] = None

    def remove(self, sub: Subscription) -> None:
        sub.active = False
        self.version += 1
        group = self._groups.get(sub.group)
        if group is not None:
            group.pop(sub, None)
            if not group:
                del self._groups[sub.group]

    def members(self, key: GroupKey) -> list[Subscription]:
        """A copy: a member may leave while a broadcast walks the list."""
        group = self._groups.get(key)
        return list(group) if group else []

    def has(self, key: GroupKey) -> bool:
        return key in self._groups

    def keys(self, channel: str) -> list[GroupKey]:
        return [key for key in self._groups if key[0] == channel]

    def broadcast(self, key: GroupKey, payload: bytes) -> int:
        """Push one frame to every member of a group; returns how many received it."""
        group = self._groups.get(key)
        if not group:
            return 0
        out = Out(payload)
        members = list(group)
        for sub in members:
            if sub.ready:  # the common case, inlined: this loop runs once per subscriber per round
                sub.wire.push(out)
            else:
                sub.deliver(out)
        return len(members)
