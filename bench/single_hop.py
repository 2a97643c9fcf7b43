"""Single hop: one record produced, then delivered to a reader with ``PartitionReader``'s settings, on Tansu.

Per ``fetch.wait.max.ms``: the producer's ack and the delivery, both from the call to produce.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Sequence

import uvloop
from percentile import percentile

# 0 is left out: librdkafka with fetch.wait.max.ms=0 never delivered a record from Tansu (100 of 100 lost)
SINGLE_HOP_WAITS_MS = (1, 2, 5, 10, 20, 50)
SINGLE_HOP_SAMPLES = 150
SINGLE_HOP_GAP_MAX_S = 0.01  # a random gap, so the samples do not phase-lock with fetch cycles


def single_hop(bus: str, waits: Sequence[int], samples: int) -> list[tuple[int, float, float, float]]:
    """Produce one record, then a consumer (PartitionReader's settings) receives it: per fetch.wait.max.ms,
    (wait, ack p50, delivery p50, delivery p99), times from the call to produce."""
    return [_one_hop(bus, wait, samples) for wait in waits]


def _one_hop(bus: str, wait: int, samples: int) -> tuple[int, float, float, float]:
    from confluent_kafka import TopicPartition

    from abyssal.cluster import kafka_log

    topic = f"bench.hop.{uuid.uuid4().hex[:8]}"
    kafka_log.ensure_topics(bus, [topic])
    saved = kafka_log.FETCH_WAIT_MAX_MS
    kafka_log.FETCH_WAIT_MAX_MS = wait  # type: ignore[misc]
    try:
        consumer = kafka_log._consumer(bus, "bench-single-hop")
    finally:
        kafka_log.FETCH_WAIT_MAX_MS = saved  # type: ignore[misc]
    consumer.assign([TopicPartition(topic, 0, 0)])
    received: dict[int, float] = {}
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            m = consumer.poll(0.1)
            if m is not None and m.error() is None:
                received[int(m.value() or b"-1")] = time.perf_counter()

    async def produce() -> tuple[list[float], list[float]]:
        p = kafka_log.LogProducer(bus, client_id="bench-single-hop")
        await p.send(topic, b"-1")
        await asyncio.sleep(0.5)
        acks, delivered = [], []
        for i in range(samples):
            t0 = time.perf_counter()
            await p.send(topic, str(i).encode())
            acks.append((time.perf_counter() - t0) * 1000)
            while i not in received and time.perf_counter() - t0 < 5:
                await asyncio.sleep(0.0002)
            if i not in received:
                raise AssertionError(f"fetch.wait.max.ms={wait}: record {i} not delivered in 5 s")
            delivered.append((received[i] - t0) * 1000)
            await asyncio.sleep(random.uniform(0, SINGLE_HOP_GAP_MAX_S))
        p.close()
        return acks, delivered

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        acks, delivered = uvloop.run(produce())
    finally:
        stop.set()
        t.join(timeout=2)
        consumer.close()
    acks.sort()
    delivered.sort()
    return wait, percentile(acks, 50), percentile(delivered, 50), percentile(delivered, 99)
