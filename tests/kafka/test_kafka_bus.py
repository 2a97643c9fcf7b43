"""The Kafka bus adapter against a real broker (Tansu): delivery, headers, commits and faults."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from tests.kafka.broker import Tansu
from tests.kafka.conftest import FAST_GROUP

from abyssal.adapters.kafka_bus import KafkaPublisher, KafkaSubscriber, PublishFailed, bootstrap_of
from abyssal.ports import BusMessage

pytestmark = pytest.mark.slow

WAIT_S_MAX = 30.0


def messages(topic: str, count: int, start: int = 0) -> list[BusMessage]:
    return [
        BusMessage(topic=topic, key=f"acct-{i % 3}", event_id=f"evt-{i}", event_type="payment.settled",
                   schema_version=2, payload=b'{"n": %d}' % i, trace_id=f"{i:032x}", headers={"tenant": "t1"})
        for i in range(start, start + count)
    ]  # fmt: skip


class Collector:
    """An idempotent handler: effects keyed by event id; ``seen`` counts every delivery."""

    def __init__(self) -> None:
        self.effects: dict[str, BusMessage] = {}
        self.seen: list[str] = []

    async def __call__(self, m: BusMessage) -> None:
        self.seen.append(m.event_id)
        self.effects.setdefault(m.event_id, m)


async def consume_until(sub: KafkaSubscriber, topic: str, group: str, handler: Any, done: Any) -> None:
    """Run ``sub`` until ``done()`` holds (or fail after WAIT_S_MAX), then close it cleanly."""
    task = asyncio.create_task(sub.run([topic], group, handler))
    try:
        async with asyncio.timeout(WAIT_S_MAX):
            while not done():
                if task.done():
                    task.result()  # the subscriber failed: raise its error
                await asyncio.sleep(0.02)
    finally:
        await sub.close()
        with contextlib.suppress(Exception):
            await task


def test_publish_then_consume_with_headers_in_key_order_and_committed(broker: Tansu, unique: str) -> None:
    topic, group = f"payments-{unique}", f"g-{unique}"
    broker.create_topic(topic)
    sent = messages(topic, 300)

    async def scenario() -> None:
        pub = KafkaPublisher(broker.url)
        await pub.publish(sent)  # returns only after every delivery report succeeded
        assert pub.published == 300
        await pub.close()
        got = Collector()
        await consume_until(KafkaSubscriber(broker.url, config=FAST_GROUP), topic, group, got,
                            lambda: len(got.effects) == 300)  # fmt: skip
        first = got.effects["evt-7"]
        assert (first.key, first.event_type, first.schema_version, first.trace_id, first.payload) == (
            "acct-1", "payment.settled", 2, f"{7:032x}", b'{"n": 7}')  # fmt: skip
        assert first.headers == {"tenant": "t1"} and first.topic == topic
        for key in ("acct-0", "acct-1", "acct-2"):  # order holds per key (one partition per key)
            order = [int(e.split("-")[1]) for e in got.seen if got.effects[e].key == key]
            assert order == sorted(order)
        # offsets were committed: the next member of the group gets only what is new
        pub2 = KafkaPublisher(broker.url)
        await pub2.publish(messages(topic, 5, start=300))
        await pub2.close()
        again = Collector()
        await consume_until(KafkaSubscriber(broker.url, config=FAST_GROUP), topic, group, again,
                            lambda: len(again.effects) >= 5)  # fmt: skip
        await asyncio.sleep(0.5)
        assert sorted(again.effects) == sorted(f"evt-{i}" for i in range(300, 305))

    asyncio.run(scenario())


def test_killed_between_handler_and_commit_means_redelivery(
    broker: Tansu, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler's effect is durable but the offset commit never happens: the next member of
    the group receives the same messages again, and the idempotent handler applies each once."""
    topic, group = f"ledger-{unique}", f"g-{unique}"
    broker.create_topic(topic, partitions=1)
    effects = Collector()

    class Killed(BaseException):
        pass

    async def scenario() -> None:
        pub = KafkaPublisher(broker.url)
        await pub.publish(messages(topic, 20))
        await pub.close()
        victim = KafkaSubscriber(broker.url, config=FAST_GROUP)

        async def die(done: Any) -> None:
            raise Killed()

        monkeypatch.setattr(victim, "_commit", die)
        with pytest.raises(Killed):
            await victim.run([topic], group, effects)
        await victim.close()
        assert len(effects.effects) == 20 and len(effects.seen) == 20
        await consume_until(KafkaSubscriber(broker.url, config=FAST_GROUP), topic, group, effects,
                            lambda: len(effects.seen) >= 40)  # fmt: skip
        assert len(effects.seen) == 40, "every uncommitted message came again"
        assert len(effects.effects) == 20, "and was applied once"

    asyncio.run(scenario())


def test_a_failing_handler_is_retried_then_the_message_stays_uncommitted(broker: Tansu, unique: str) -> None:
    topic, group = f"hooks-{unique}", f"g-{unique}"
    broker.create_topic(topic, partitions=1)
    calls: list[str] = []

    async def flaky(m: BusMessage) -> None:
        calls.append(m.event_id)
        if m.event_id == "evt-1":
            raise RuntimeError("webhook endpoint down")

    async def scenario() -> None:
        pub = KafkaPublisher(broker.url)
        await pub.publish(messages(topic, 3))
        await pub.close()
        sub = KafkaSubscriber(broker.url, redeliveries_max=2, config=FAST_GROUP)
        with pytest.raises(RuntimeError, match="webhook endpoint down"):
            await sub.run([topic], group, flaky)
        await sub.close()
        assert calls == ["evt-0", "evt-1", "evt-1", "evt-1"]
        after = Collector()
        await consume_until(KafkaSubscriber(broker.url, config=FAST_GROUP), topic, group, after,
                            lambda: len(after.seen) >= 2)  # fmt: skip
        assert after.seen == ["evt-1", "evt-2"], "evt-0 was committed; evt-1 was not"

    asyncio.run(scenario())


def test_broker_stopped_publish_fails_then_new_clients_work_on_a_restarted_broker(
    broker: Tansu, unique: str
) -> None:
    topic = f"orders-{unique}"
    broker.create_topic(topic)

    async def scenario() -> None:
        pub = KafkaPublisher(broker.url, delivery_timeout_ms=2_000)
        await pub.publish(messages(topic, 10))
        broker.stop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        ticks = 0

        async def ticker() -> None:  # the event loop stays free while librdkafka waits
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        beat = asyncio.create_task(ticker())
        with pytest.raises(PublishFailed):
            await pub.publish(messages(topic, 10, start=10))
        beat.cancel()
        elapsed = loop.time() - started
        assert elapsed < 10, "a publish to a dead broker fails within its delivery timeout"
        assert ticks >= int(elapsed / 0.05) // 2, "the publish did not block the event loop"
        await pub.close()

        restarted = Tansu()  # memory storage: nothing survived; a fresh port (see broker.py)
        restarted.start()
        try:
            restarted.create_topic(topic)
            pub2 = KafkaPublisher(restarted.url)
            await pub2.publish(messages(topic, 10, start=20))
            await pub2.close()
            got = Collector()
            await consume_until(KafkaSubscriber(restarted.url, config=FAST_GROUP), topic, f"g-{unique}", got,
                                lambda: len(got.effects) == 10)  # fmt: skip
            assert sorted(got.effects) == sorted(f"evt-{i}" for i in range(20, 30))
        finally:
            restarted.stop()

    asyncio.run(scenario())


def test_bus_urls() -> None:
    assert bootstrap_of("kafka://127.0.0.1:9092") == "127.0.0.1:9092"
    assert bootstrap_of("kafka://a:1,b:2/") == "a:1,b:2"
    for bad in ("memory://", "kafka://", "http://x:1"):
        with pytest.raises(ValueError):
            bootstrap_of(bad)
