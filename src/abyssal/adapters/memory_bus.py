"""The in-process bus (the embedded default): bounded queues, at-least-once, Publisher + Subscriber.

A message is acknowledged to the publisher only after every subscribed group's handler has
returned for it, i.e. after each consumer made its own durable write. Nothing is held in memory
that the outbox (the table, or the event log behind its cursor) does not also hold, so a crash
loses nothing: unacknowledged rows stay unpublished and the relay sends them again after the
restart (consumers dedupe by event id). A handler that raises gets the message again after a
short pause, up to ``redeliveries_max`` times; then the publish fails and the relay retries the
batch later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from abyssal.ports import BusMessage, Handler

log = structlog.get_logger("abyssal.bus")

QUEUE_MESSAGES_MAX = 1_000
ACK_TIMEOUT_S = 30.0
REDELIVERIES_MAX = 5
REDELIVERY_PAUSE_S = 0.05


@dataclass(slots=True)
class _Delivery:
    message: BusMessage
    done: asyncio.Future[None]


class MemoryBus:
    """One object is both ends: ``publish`` (Publisher) and ``run`` (Subscriber)."""

    def __init__(
        self,
        *,
        queue_messages_max: int = QUEUE_MESSAGES_MAX,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        redeliveries_max: int = REDELIVERIES_MAX,
    ) -> None:
        assert queue_messages_max > 0 and ack_timeout_s > 0 and redeliveries_max >= 0
        self.queue_messages_max = queue_messages_max
        self.ack_timeout_s = ack_timeout_s
        self.redeliveries_max = redeliveries_max
        self._groups: dict[str, tuple[list[str], asyncio.Queue[_Delivery]]] = {}
        self._closed = False
        self.published = 0

    # -- Publisher ---------------------------------------------------------------------------
    async def publish(self, messages: list[BusMessage]) -> None:
        if self._closed:
            raise RuntimeError("bus closed")
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        for message in messages:  # in order: each group's queue keeps the order per key
            for topics, queue in self._groups.values():
                if message.topic in topics:
                    done: asyncio.Future[None] = loop.create_future()
                    async with asyncio.timeout(self.ack_timeout_s):  # bounded: a full queue is back-pressure
                        await queue.put(_Delivery(message, done))
                    pending.append(done)
        if pending:
            acked, waiting = await asyncio.wait(pending, timeout=self.ack_timeout_s)
            for future in waiting:  # not acknowledged in time: the relay retries the whole batch
                future.cancel()
            if waiting:
                raise TimeoutError(f"{len(waiting)} deliveries not acknowledged in {self.ack_timeout_s}s")
            for future in acked:
                if future.cancelled():
                    raise RuntimeError("a consumer stopped before acknowledging")
                exc = future.exception()
                if exc is not None:
                    raise exc
        self.published += len(messages)

    def audience(self) -> frozenset[str]:
        """The topics some group reads: a message for any other topic goes nowhere."""
        return frozenset(t for topics, _ in self._groups.values() for t in topics)

    # -- Subscriber --------------------------------------------------------------------------
    def subscribe(self, topics: list[str], group: str) -> None:
        """Register a group now (``run`` does it too), so nothing published after is missed."""
        if group not in self._groups:
            self._groups[group] = (list(topics), asyncio.Queue(maxsize=self.queue_messages_max))

    async def run(self, topics: list[str], group: str, handler: Handler) -> None:
        self.subscribe(topics, group)
        queue = self._groups[group][1]
        while True:
            delivery = await queue.get()
            await self._deliver(delivery, handler, group)

    async def _deliver(self, delivery: _Delivery, handler: Handler, group: str) -> None:
        for attempt in range(self.redeliveries_max + 1):
            try:
                await handler(delivery.message)
            except asyncio.CancelledError:
                delivery.done.cancel()  # the publisher sees an unacknowledged message
                raise
            except Exception as exc:  # at least once: the same message again, after a pause
                log.warning(
                    "bus_handler_failed",
                    projection=group,
                    ref=delivery.message.event_id,
                    count=attempt,
                    error=repr(exc),
                )
                if attempt == self.redeliveries_max:
                    if not delivery.done.done():
                        delivery.done.set_exception(exc)
                    return
                await asyncio.sleep(REDELIVERY_PAUSE_S * (attempt + 1))
            else:
                if not delivery.done.done():
                    delivery.done.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        for _, queue in self._groups.values():
            while not queue.empty():
                queue.get_nowait().done.cancel()
