"""The WebSocket side's one sequencer listener: private feeds and snapshots at batch boundaries.

Between a batch being applied and its listeners running, the engine (and the projector's
balance cache) are ahead of what is durable. Snapshots that read them (open orders, balances,
level3 queues) must therefore be taken at a *boundary*: right now when no batch is in flight,
else at the end of the next listener call, before the sequencer can apply another batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from abyssal.core.messages import Command, Event

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

log = structlog.get_logger("abyssal.ws")

Results = list[tuple[int, Command, list[Event]]]
Feed = Callable[[Results], None]


class BatchTap:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.feeds: list[Feed] = []
        self.last_seq = -1
        self._deferred: list[Callable[[], None]] = []

    def attach(self) -> None:
        """Called from ``Exchange.on_ready``: the sequencer exists and has applied nothing yet."""
        sequencer = self.exchange.sequencer
        self.last_seq = sequencer.next_seq - 1
        sequencer.listeners.append(self.on_batch)

    @property
    def in_sync(self) -> bool:
        return self.exchange.sequencer.next_seq - 1 == self.last_seq

    def at_boundary(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when engine state equals the last committed batch (maybe at once)."""
        if self.in_sync:
            callback()
        else:
            self._deferred.append(callback)

    def on_batch(self, results: Results) -> None:
        if results:
            self.last_seq = results[-1][0]
        for feed in self.feeds:
            try:
                feed(results)
            except Exception as exc:  # one broken feed must not starve the others
                log.exception("ws_feed_failed", error=repr(exc))
        deferred, self._deferred = self._deferred, []
        for callback in deferred:
            try:
                callback()
            except Exception as exc:
                log.exception("ws_snapshot_failed", error=repr(exc))
