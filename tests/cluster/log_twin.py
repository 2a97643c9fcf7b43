"""One partition of a shard's log as a reader's consumer sees it on Tansu under load.

Tansu gives a produced batch its offsets before the batch can be read, so a fetch can return a
later batch while an earlier one is not readable yet, and librdkafka moves its position past the
missing offsets (docs/scaled-out.md, "Every offset is a record").

``OvertakenLog`` is the in-memory twin of that consumer: an offset listed in ``unreadable`` is
passed over by the given number of fetches that reach past it, then is read like any other.
``HidingConsumer`` wraps a real librdkafka consumer and drops chosen offsets the first time they
arrive, to show what a reader does with the real client and broker when that happens.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition

FETCH_RECORDS_MAX = 4  # records per fetch: a hole can fall between two fetches, or inside one
IDLE_POLL_S = 0.005


class TwinMessage:
    """The part of ``confluent_kafka.Message`` a reader uses."""

    def __init__(self, offset: int, value: bytes) -> None:
        self._offset = offset
        self._value = value

    def error(self) -> None:
        return None

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("rid", f"twin:{self._offset}".encode())]


class OvertakenLog:
    def __init__(self, values: list[bytes], unreadable: dict[int, int]) -> None:
        self.values = values
        self.unreadable = dict(unreadable)  # offset -> fetches that pass it over
        self.seeks: list[int] = []  # every position a consumer was sent back to
        self.fetches = 0
        self._lock = threading.Lock()

    def connect(self, url: str, client_id: str) -> TwinConsumer:
        return TwinConsumer(self)

    def fetch(self, position: int) -> list[TwinMessage]:
        """What one fetch from ``position`` returns: the readable records, in offset order."""
        with self._lock:
            self.fetches += 1
            out: list[TwinMessage] = []
            for offset in range(position, len(self.values)):
                if len(out) == FETCH_RECORDS_MAX:
                    break
                if self.unreadable.get(offset, 0) > 0:
                    self.unreadable[offset] -= 1
                    continue
                out.append(TwinMessage(offset, self.values[offset]))
            return out


class TwinConsumer:
    """A consumer assigned one partition of an ``OvertakenLog``; its position follows librdkafka's:
    after a fetch it is one past the last record returned, wherever that record was."""

    def __init__(self, log: OvertakenLog) -> None:
        self.log = log
        self.position = 0
        self.fetched: collections.deque[TwinMessage] = collections.deque()
        self.closed = False

    def assign(self, partitions: list[TopicPartition]) -> None:
        offset = partitions[0].offset
        self.position = offset if offset >= 0 else len(self.log.values)

    def _take(self, n: int) -> list[TwinMessage]:
        if not self.fetched:
            got = self.log.fetch(self.position)
            if got:
                self.position = got[-1].offset() + 1
            self.fetched.extend(got)
        return [self.fetched.popleft() for _ in range(min(n, len(self.fetched)))]

    def poll(self, timeout: float = -1) -> TwinMessage | None:
        got = self._take(1)
        if not got:
            time.sleep(IDLE_POLL_S)
            return None
        return got[0]

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[TwinMessage]:
        return self._take(num_messages)

    def seek(self, partition: TopicPartition) -> None:
        self.log.seeks.append(partition.offset)
        self.fetched.clear()
        self.position = partition.offset

    def close(self) -> None:
        self.closed = True


class HidingConsumer:
    """A real consumer whose messages at ``hide`` are dropped the first time each arrives."""

    def __init__(self, real: Consumer, hide: set[int]) -> None:
        self.real = real
        self.hide = set(hide)
        self.seeks: list[int] = []

    def _filter(self, msgs: list[Any]) -> list[Any]:
        kept = []
        for m in msgs:
            if m.error() is None and m.offset() in self.hide:
                self.hide.discard(m.offset())
                continue
            kept.append(m)
        return kept

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.real.assign(partitions)

    def poll(self, timeout: float = -1) -> Any:
        m = self.real.poll(timeout)
        kept = self._filter([m] if m is not None else [])
        return kept[0] if kept else None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        return self._filter(self.real.consume(num_messages, timeout))

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append(partition.offset)
        self.real.seek(partition)

    def close(self) -> None:
        self.real.close()
