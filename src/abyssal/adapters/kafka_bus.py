"""Kafka bus (confluent-kafka / librdkafka): the scaled-out Publisher and Subscriber of ``ports``.

Publisher: an idempotent producer (``enable.idempotence``, ``acks=all``); ``publish`` returns only
once every message's delivery report succeeded, and raises ``PublishFailed`` otherwise (the
rows stay unpublished, in the outbox or behind the event log's cursor, and the relay retries;
duplicates carry the same event id).
Subscriber: a consumer group with auto-commit off; a message's offset is committed only after
the handler returned for it, so delivery is at least once and handlers dedupe by event id.
librdkafka's blocking calls (flush, poll, commit, close) run on one dedicated thread per
client, never on the event loop. Headers carry event id, type, schema version and trace id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from abyssal.ports import BusMessage, Handler

log = structlog.get_logger("abyssal.bus")

DELIVERY_TIMEOUT_MS = 30_000  # a publish fails after this rather than waiting for a dead broker
LINGER_MS = 2
POLL_TIMEOUT_S = 0.2
CONSUME_BATCH_MAX = 500
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000
# Tansu (and a broker under little load) answers a fetch only at fetch.wait.max.ms when no new data
# arrives in between; librdkafka's 500 ms default put ~250 ms on every delivery (bench/pg_bench.py)
FETCH_WAIT_MAX_MS = 10
REDELIVERIES_MAX = 5
REDELIVERY_PAUSE_S = 0.1
CLOSE_TIMEOUT_S = 10.0
RESERVED_HEADERS = ("event_id", "event_type", "schema_version", "trace_id")
T = TypeVar("T")


class PublishFailed(Exception):
    """At least one message was not acknowledged by the broker: the whole publish failed."""


def bootstrap_of(url: str) -> str:
    """``kafka://host:port[,host:port]`` -> librdkafka's ``bootstrap.servers``."""
    if not url.startswith("kafka://") or not url.removeprefix("kafka://").strip("/"):
        raise ValueError(f"not a Kafka URL: {url!r} (use kafka://host:port)")
    return url.removeprefix("kafka://").strip("/")


def headers_of(m: BusMessage) -> list[tuple[str, str | bytes | None]]:
    extra: list[tuple[str, str | bytes | None]] = [
        (k, v.encode()) for k, v in m.headers.items() if k not in RESERVED_HEADERS
    ]
    return [("event_id", m.event_id.encode()), ("event_type", m.event_type.encode()),
            ("schema_version", str(m.schema_version).encode()), ("trace_id", m.trace_id.encode()),
            *extra]  # fmt: skip


def message_of(msg: Message) -> BusMessage:
    """A consumed record back to a ``BusMessage`` (headers decoded; reserved ones lifted out)."""
    found = msg.headers() or []
    pairs = list(found.items()) if isinstance(found, dict) else [(h[0], h[1]) for h in found]
    raw = {str(k): _text(v) for k, v in pairs}
    key = msg.key()
    value = msg.value()
    return BusMessage(
        topic=msg.topic() or "",
        key=key.decode() if isinstance(key, bytes) else str(key or ""),
        event_id=raw.get("event_id", ""),
        event_type=raw.get("event_type", ""),
        schema_version=int(raw.get("schema_version") or 0),
        payload=value if isinstance(value, bytes) else str(value or "").encode(),
        trace_id=raw.get("trace_id", ""),
        headers={k: v for k, v in raw.items() if k not in RESERVED_HEADERS},
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


class _Thread:
    """One worker thread for one librdkafka client (its calls are not made concurrently)."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class KafkaPublisher:
    def __init__(
        self,
        url: str,
        *,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
        config: dict[str, Any] | None = None,
    ) -> None:
        assert delivery_timeout_ms > 0
        self.delivery_timeout_ms = delivery_timeout_ms
        self._producer = Producer({
            "bootstrap.servers": bootstrap_of(url), "enable.idempotence": True, "acks": "all",
            "linger.ms": LINGER_MS, "delivery.timeout.ms": delivery_timeout_ms,
            "client.id": "abyssal-publisher", **(config or {}),
        })  # fmt: skip
        self._thread = _Thread("abyssal-kafka-pub")
        self._lock = asyncio.Lock()  # one publish in flight: flush() waits for every queued record
        self.published = 0

    async def publish(self, messages: list[BusMessage]) -> None:
        if not messages:
            return
        async with self._lock:
            await self._thread.run(self._produce_all, messages)
        self.published += len(messages)

    def _produce_all(self, messages: list[BusMessage]) -> None:
        errors: list[str] = []
        acked = 0

        def report(err: KafkaError | None, _msg: Message) -> None:
            nonlocal acked
            if err is None:
                acked += 1
            else:
                errors.append(str(err))

        for m in messages:
            while True:
                try:
                    self._producer.produce(m.topic, m.payload, m.key.encode(), on_delivery=report,
                                           headers=headers_of(m))  # fmt: skip
                    break
                except BufferError:  # the local queue is full: serve delivery reports, then retry
                    self._producer.poll(0.05)
        remaining = self._producer.flush(self.delivery_timeout_ms / 1000 + 1)
        if errors or remaining or acked != len(messages):
            raise PublishFailed(
                f"{acked}/{len(messages)} acknowledged, {remaining} still queued; first error: "
                f"{errors[0] if errors else 'timeout'}"
            )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._thread.run(self._producer.flush, CLOSE_TIMEOUT_S)
        self._thread.shutdown()


def _fetch(consumer: Consumer) -> list[Message]:
    """Wait for one message, then take whatever else is already there (``consume`` alone would
    wait for a full batch or its whole timeout, adding up to that timeout to every delivery)."""
    first = consumer.poll(POLL_TIMEOUT_S)
    return [] if first is None else [first, *consumer.consume(CONSUME_BATCH_MAX - 1, 0)]


class KafkaSubscriber:
    """One consumer group member. ``run`` returns after ``close``; it raises if a handler keeps
    failing (``redeliveries_max``), leaving that message uncommitted for the next member."""

    def __init__(
        self,
        url: str,
        *,
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
        redeliveries_max: int = REDELIVERIES_MAX,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.redeliveries_max = redeliveries_max
        self._config = {
            "bootstrap.servers": bootstrap_of(url), "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": session_timeout_ms, "heartbeat.interval.ms": heartbeat_interval_ms,
            "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
            "client.id": "abyssal-subscriber", **(config or {}),
        }  # fmt: skip
        self._consumer: Consumer | None = None
        self._thread = _Thread("abyssal-kafka-sub")
        self._stopping = False
        self._done = asyncio.Event()
        self.handled = 0

    async def run(self, topics: list[str], group: str, handler: Handler) -> None:
        assert topics and group and self._consumer is None, "one run per subscriber"
        consumer = self._consumer = Consumer({**self._config, "group.id": group})
        try:
            await self._thread.run(consumer.subscribe, topics)
            while not self._stopping:
                batch = await self._thread.run(_fetch, consumer)
                done: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to read
                try:
                    for msg in batch:
                        if self._stopping:
                            return  # not handled: not committed
                        err = msg.error()
                        if err is not None:
                            if err.fatal():
                                raise KafkaException(err)
                            log.warning("bus_consume_error", error=str(err))
                            continue
                        await self._handle(handler, message_of(msg))
                        done[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
                finally:
                    if done:  # only what the handler returned for, even if a later one failed
                        await self._commit(done)
        finally:
            await self._thread.run(self._close_consumer)
            self._done.set()

    async def _handle(self, handler: Handler, message: BusMessage) -> None:
        for attempt in range(self.redeliveries_max + 1):
            try:
                await handler(message)
                self.handled += 1
                return
            except Exception as exc:
                if attempt == self.redeliveries_max:
                    raise
                log.warning("bus_handler_failed", error=repr(exc), count=attempt + 1)
                await asyncio.sleep(REDELIVERY_PAUSE_S)

    async def _commit(self, done: dict[tuple[str, int], int]) -> None:
        """Synchronous commit of the offsets after the messages whose handler returned."""
        consumer = self._consumer
        assert consumer is not None
        offsets = [TopicPartition(t, p, o) for (t, p), o in done.items()]
        await self._thread.run(lambda: consumer.commit(offsets=offsets, asynchronous=False))

    def _close_consumer(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.close()  # leaves the group at once: the partitions move without waiting

    async def close(self) -> None:
        """Stop after the message in hand (committed if handled), leave the group, free the thread."""
        self._stopping = True
        if self._consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), CLOSE_TIMEOUT_S)
        self._thread.shutdown()


class KafkaBus:
    """Both ends over one URL, shaped like ``memory_bus.MemoryBus``: one publisher, and a new
    subscriber (group member) per ``run``. ``subscribe`` has nothing to do: the topic retains
    what is published, and a new group starts from the earliest offset."""

    def __init__(self, url: str, *, subscriber_config: dict[str, Any] | None = None) -> None:
        self.url = url
        self.publisher = KafkaPublisher(url)
        self._subscriber_config = subscriber_config
        self._subscribers: list[KafkaSubscriber] = []

    async def publish(self, messages: list[BusMessage]) -> None:
        await self.publisher.publish(messages)

    def audience(self) -> None:
        """Unknown: the topics' readers are other processes, now or later."""
        return None

    def subscribe(self, topics: list[str], group: str) -> None:
        bootstrap_of(self.url)  # nothing to register; the URL is checked early

    async def run(self, topics: list[str], group: str, handler: Handler) -> None:
        sub = KafkaSubscriber(self.url, config=self._subscriber_config)
        self._subscribers.append(sub)
        await sub.run(topics, group, handler)

    async def close(self) -> None:
        for sub in self._subscribers:
            await sub.close()
        await self.publisher.close()
