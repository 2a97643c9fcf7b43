"""Transport wire: what the transport benchmark's gateway and engine agree on (gRPC method, deadline,
payload, and the Kafka client settings of both paths)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

SERVICE = "abyssal.bench.Engine"
METHOD = f"/{SERVICE}/Apply"
DEADLINE_S = 5.0
PAYLOAD = (
    b'{"kind":"AddOrder","account":1234,"pair":"XBTUSD","side":"buy","type":"limit",'
    b'"price":"64123.5","volume":"0.25","userref":42}'
)  # ~120 bytes, an AddOrder-sized command


def kafka_common(bootstrap: str) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap, "socket.nagle.disable": True, "log_level": 3}


def producer_conf(bootstrap: str, linger_ms: float) -> dict[str, object]:
    return {
        **kafka_common(bootstrap),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
    }


def consumer_conf(bootstrap: str, fetch_wait_ms: int) -> dict[str, object]:
    return {
        **kafka_common(bootstrap),
        "group.id": f"bench-{uuid.uuid4().hex}",  # never joined: partitions are assigned manually
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": fetch_wait_ms,
        "fetch.min.bytes": 1,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }


def drain(consumer: Consumer) -> list[Message]:
    """Wait up to 50 ms for one record, then take what else is already fetched without waiting.

    (``consume(n, timeout)`` alone would wait for n records or the whole timeout.)
    """
    first = consumer.poll(0.05)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=1000, timeout=0)]
