"""The two primitives the scaled-out roles need of Kafka (confluent-kafka / librdkafka).

``LogProducer``: an idempotent producer (``enable.idempotence``, ``acks=all``); ``send`` returns
the record's offset once the broker acknowledged it, or raises ``LogUnavailable``. Delivery
reports are served by one poll thread and handed to the event loop.

``PartitionReader``: a consumer *assigned* one partition at a given offset (no group: every
reader of a shard's log reads all of it, and nothing waits for a rebalance). A reader thread
fetches and hands batches to the event loop through a bounded queue (a slow consumer stops
fetching rather than buffering without end). Offsets are never committed to Kafka: each role
keeps its own position next to its own durable write.

A reader hands over every offset once, in order, without a hole. Kafka lets a consumer skip
offsets (transaction markers, aborted and compacted records leave holes), but the shards' topics
are written by idempotent, non-transactional producers and never compacted, so every offset
below the end is a record. Tansu assigns a batch its offsets before the batch can be read, so
under load a fetch can return a later batch while an earlier one is not readable yet, and
librdkafka moves past the missing offsets. The reader therefore stops at the first missing
offset and fetches again from it until it appears; one still missing after ``HOLE_WAIT_S`` is
lost, and the reader stops with an error rather than skip a command.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import structlog
from confluent_kafka import OFFSET_END, Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from abyssal.adapters.kafka_bus import bootstrap_of

log = structlog.get_logger("abyssal.cluster")

SEND_TIMEOUT_S: Final = 10.0  # a command not acknowledged by then is refused (EService:Unavailable)
DELIVERY_TIMEOUT_MS: Final = 9_000
POLL_INTERVAL_S: Final = 0.05
# Tansu answers an empty fetch only after fetch.wait.max.ms: each hop of the log costs up to this
FETCH_WAIT_MAX_MS: Final = 2
READ_BATCH_MAX: Final = 1_000
READ_QUEUE_BATCHES: Final = 64
READ_POLL_S: Final = 0.1
ADMIN_TIMEOUT_S: Final = 10.0
LAST_QUIET_S: Final = 0.2  # no record for this long after the last one: the end of the partition
HOLE_RETRY_S: Final = 0.01  # a missing offset is fetched again after this
HOLE_WAIT_S: Final = 30.0  # an offset still missing after this is lost: the reader stops

Headers = Sequence[tuple[str, bytes]]


class LogUnavailable(Exception):
    """The broker did not acknowledge a record in time: its fate is unknown to the sender."""


def ensure_topics(url: str, names: Sequence[str]) -> None:
    """Create single-partition topics that do not exist yet (blocking)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_of(url)})
    existing = set(admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics)
    missing = [NewTopic(n, num_partitions=1, replication_factor=1) for n in names if n not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result(ADMIN_TIMEOUT_S)
        except Exception as exc:  # a concurrent creator won: fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc).lower():
                raise
            log.debug("topic_exists", topic=name)


class LogProducer:
    def __init__(self, url: str, *, client_id: str, linger_ms: int = 0) -> None:
        self._producer = Producer({
            "bootstrap.servers": bootstrap_of(url), "enable.idempotence": True, "acks": "all",
            "linger.ms": linger_ms, "delivery.timeout.ms": DELIVERY_TIMEOUT_MS,
            "client.id": client_id,
        })  # fmt: skip
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_forever, name=f"{client_id}-poll", daemon=True)
        self._started = False
        self.sent = 0

    def _poll_forever(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(POLL_INTERVAL_S)

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        if not self._started:
            self._loop = asyncio.get_running_loop()
            self._thread.start()
            self._started = True
        assert self._loop is not None
        return self._loop

    def send_nowait(
        self, topic: str, value: bytes, key: bytes | None, headers: Headers
    ) -> asyncio.Future[int]:
        """Queue one record; the future resolves to its offset when the broker acknowledged it."""
        loop = self._ensure_started()
        future: asyncio.Future[int] = loop.create_future()

        def delivered(err: KafkaError | None, msg: Message) -> None:  # on the poll thread
            loop.call_soon_threadsafe(_settle, future, err, msg.offset())

        try:
            self._producer.produce(topic, value, key, on_delivery=delivered, headers=list(headers),
                                   partition=0)  # fmt: skip
        except BufferError:  # librdkafka's queue is full: the caller is refused at once
            raise LogUnavailable("producer queue full") from None
        return future

    async def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> int:
        future = self.send_nowait(topic, value, key, headers)
        try:
            offset = await asyncio.wait_for(asyncio.shield(future), SEND_TIMEOUT_S)
        except TimeoutError:
            raise LogUnavailable(f"no acknowledgement from the broker in {SEND_TIMEOUT_S} s") from None
        self.sent += 1
        return offset

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait for what is queued (bounded), then stop the poll thread."""
        with contextlib.suppress(Exception):
            self._producer.flush(timeout_s)
        self._stop.set()
        if self._started:
            self._thread.join(timeout=1.0)


def _settle(future: asyncio.Future[int], err: KafkaError | None, offset: int | None) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(LogUnavailable(str(err)))
    else:
        future.set_result(int(offset if offset is not None else -1))


class Record:
    __slots__ = ("headers", "offset", "value")

    def __init__(self, offset: int, value: bytes, headers: dict[str, bytes]) -> None:
        self.offset = offset
        self.value = value
        self.headers = headers


def _record(msg: Message) -> Record:
    found = msg.headers() or []
    pairs = found.items() if isinstance(found, dict) else found
    headers = {str(k): (v if isinstance(v, bytes) else str(v or "").encode()) for k, v in pairs}
    value = msg.value()
    return Record(int(msg.offset() or 0), value if isinstance(value, bytes) else b"", headers)


class PartitionConsumer(Protocol):
    """What a reader needs of a consumer (librdkafka's ``Consumer``; tests use an in-memory twin)."""

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def poll(self, timeout: float = -1) -> Message | None: ...

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def close(self) -> None: ...


def _consumer(url: str, client_id: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap_of(url), "group.id": f"abyssal-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest", "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        "client.id": client_id,
    })  # fmt: skip


def end_offset(url: str, topic: str) -> int:
    """The partition's high watermark: the offset the next record will get (blocking)."""
    c = _consumer(url, "abyssal-watermark")
    try:
        _low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=ADMIN_TIMEOUT_S)
        return int(high)
    finally:
        c.close()


def last_record(url: str, topic: str, timeout_s: float = ADMIN_TIMEOUT_S) -> Record | None:
    """The partition's last record (blocking); None if it is empty.

    Reads from the high watermark's record to the end: some brokers (Tansu) report the watermark
    of the last record *batch*, so the record at ``high - 1`` may not be the last one."""
    high = end_offset(url, topic)
    if high == 0:
        return None
    c = _consumer(url, "abyssal-last-record")
    last: Record | None = None
    try:
        c.assign([TopicPartition(topic, 0, high - 1)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msgs = c.consume(READ_BATCH_MAX, READ_POLL_S if last is None else LAST_QUIET_S)
            found = [m for m in msgs if m.error() is None]
            if found:
                last = _record(found[-1])
            elif last is not None:
                return last  # nothing more arrived: the end
        if last is None:
            raise LogUnavailable(f"cannot read the last record of {topic}")
        return last
    finally:
        c.close()


class PartitionReader:
    """Reads partition 0 of ``topic`` from ``offset`` on; ``next_batch()`` returns lists of records
    whose offsets follow one another with no hole (the module's docstring says why it must check)."""

    def __init__(
        self,
        url: str,
        topic: str,
        offset: int,
        *,
        client_id: str,
        connect: Callable[[str, str], PartitionConsumer] = _consumer,
        hole_wait_s: float = HOLE_WAIT_S,
    ) -> None:
        self.url = url
        self.topic = topic
        self.offset = offset if offset >= 0 else OFFSET_END
        self.client_id = client_id
        self._connect = connect
        self.hole_wait_s = hole_wait_s
        self.next_offset: int | None = offset if offset >= 0 else None  # None: the first one read
        self.rereads = 0  # fetches again from a missing offset
        self._missing_since: float | None = None  # time.monotonic() when next_offset was found missing
        self._queue: asyncio.Queue[list[Record]] = asyncio.Queue(maxsize=READ_QUEUE_BATCHES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"{self.client_id}-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consumer = self._connect(self.url, self.client_id)
        try:
            consumer.assign([TopicPartition(self.topic, 0, self.offset)])
            while not self._stop.is_set():
                first = consumer.poll(READ_POLL_S)
                if first is None:
                    continue
                batch, hole = self._in_order([first, *consumer.consume(READ_BATCH_MAX - 1, 0)])
                if batch:
                    self._hand_over(batch)
                if hole:
                    self._reread(consumer)
        except BaseException as exc:  # surfaced to the consumer of batches()
            self.error = exc
            self._hand_over([])
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def _in_order(self, msgs: list[Message]) -> tuple[list[Record], bool]:
        """The records that continue from ``next_offset``, up to the first missing offset (then
        True: what follows it is dropped, to be fetched again in order)."""
        batch: list[Record] = []
        hole = False
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise RuntimeError(str(err))
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("log_read_error", topic=self.topic, error=str(err))
                continue
            rec = _record(m)
            expected = rec.offset if self.next_offset is None else self.next_offset
            if rec.offset < expected:
                continue  # handed over already: a fetch again overlaps what came before the hole
            if rec.offset > expected:
                hole = True
                break
            batch.append(rec)
            self.next_offset = rec.offset + 1
            self._missing_since = None
        assert all(b.offset == a.offset + 1 for a, b in itertools.pairwise(batch)), "contiguous"
        return batch, hole

    def _reread(self, consumer: PartitionConsumer) -> None:
        """Fetch again from ``next_offset``, which a later record overtook; stop once it has been
        missing for ``hole_wait_s`` (the record is lost, and skipping it would skip a command)."""
        assert self.next_offset is not None, "a hole is only found after a first record"
        now = time.monotonic()
        if self._missing_since is None:
            self._missing_since = now
            log.info("log_read_hole", topic=self.topic, offset=self.next_offset)
        elif now - self._missing_since > self.hole_wait_s:
            raise RuntimeError(
                f"{self.topic} has no record at offset {self.next_offset} after {self.hole_wait_s} s"
            )
        self.rereads += 1
        self._stop.wait(HOLE_RETRY_S)
        consumer.seek(TopicPartition(self.topic, 0, self.next_offset))

    def _hand_over(self, batch: list[Record]) -> None:
        """Put a batch on the loop's queue, waiting while it is full (backpressure on fetching)."""
        assert self._loop is not None
        try:
            put = asyncio.run_coroutine_threadsafe(self._queue.put(batch), self._loop)
        except RuntimeError:  # the loop is closed
            return
        while not self._stop.is_set():
            try:
                put.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                continue
        put.cancel()

    async def next_batch(self) -> list[Record]:
        """The next batch; raises what stopped the reader thread."""
        batch = await self._queue.get()
        if not batch and self.error is not None:
            raise RuntimeError(f"log reader for {self.topic} stopped: {self.error!r}")
        return batch

    def stop(self) -> None:
        """Stop fetching (call on the loop's thread); a ``next_batch`` waiting now returns []."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait([])
