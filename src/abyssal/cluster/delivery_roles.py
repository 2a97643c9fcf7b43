"""``abyssal relay`` and ``abyssal notifier``: the embedded exchange's relays and webhook consumer,
run on their own against PostgreSQL and Kafka (the same classes: adapters, not forks).

A relay process runs both relays of the embedded exchange on one bus: the payments outbox table
and the event log (the engine's order, trade and ledger events, adapters/event_log_outbox.py).
Any number of relay processes compete on one database."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from abyssal.adapters.bus import Bus, open_bus
from abyssal.adapters.event_log_outbox import EventLogOutbox
from abyssal.adapters.sqlite_payments import SqlitePaymentStore
from abyssal.adapters.sqlite_webhooks import SqliteWebhookStore
from abyssal.adapters.store import Store, open_store
from abyssal.runtime import notifications
from abyssal.runtime.notifications import Notifier
from abyssal.runtime.outbox import OutboxRelay


class DeliveryRole:
    def __init__(self, kind: str, database: str, bus: str, data_dir: Path) -> None:
        assert kind in ("relay", "notifier")
        self.kind = kind
        self.database = database
        self.bus_url = bus
        self.data_dir = data_dir
        self.phase = "starting"
        # a relay process runs two relays, each with its own connection: a thread for each
        threads = 2 if kind == "relay" else 1
        self._io = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"abyssal-{kind}")
        self._stopping = asyncio.Event()
        self.relay: OutboxRelay | None = None  # the payments outbox table
        self.event_relay: OutboxRelay | None = None  # the event log
        self.notifier: Notifier | None = None
        self.bus: Bus | None = None
        self.store: Store | None = None

    async def blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def run(self) -> None:
        self.store = await self.blocking(open_store, self.database, self.data_dir)
        self.bus = open_bus(self.bus_url)
        consumer: asyncio.Task[None] | None = None
        if self.kind == "relay":
            self.relay = OutboxRelay(SqlitePaymentStore(self.store), self.bus, self.blocking)
            # every engine topic, whoever subscribes: this bus's readers are other processes
            self.event_relay = OutboxRelay(EventLogOutbox(self.store), self.bus, self.blocking)
            self.relay.start()
            self.event_relay.start()
        else:
            self.notifier = Notifier(SqliteWebhookStore(self.store), self.blocking)
            self.bus.subscribe(notifications.TOPICS, notifications.CONSUMER)
            consumer = asyncio.create_task(
                self.bus.run(notifications.TOPICS, notifications.CONSUMER, self.notifier.handle)
            )
            self.notifier.start()
        self.phase = "ready"
        stop = asyncio.create_task(self._stopping.wait())
        try:
            waits: list[asyncio.Task[Any]] = [stop] + ([consumer] if consumer else [])
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if consumer is not None and consumer in done and consumer.exception() is not None:
                raise consumer.exception()  # type: ignore[misc]
        finally:
            stop.cancel()
            for relay in (self.relay, self.event_relay):
                if relay is not None:
                    await relay.stop()
            if self.notifier is not None:
                await self.notifier.stop()
            if consumer is not None:
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
            await self.bus.close()
            self._io.shutdown(wait=True)
            if self.store is not None:
                self.store.close()
            self.phase = "stopped"

    def stop(self) -> None:
        self._stopping.set()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.kind, "phase": self.phase}
        if self.relay is not None and self.event_relay is not None:
            out["published"] = self.relay.published + self.event_relay.published
            out["published_outbox"] = self.relay.published  # payment transitions
            out["published_events"] = self.event_relay.published  # engine events
        return out
