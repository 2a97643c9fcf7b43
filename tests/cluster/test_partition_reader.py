"""A reader of a shard's log hands over every offset once, in order, even when the broker lets a
later record overtake an earlier one; an engine fed by it applies every command, and an offset
that never appears stops the reader instead of being skipped."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, Producer
from tests.cluster.log_twin import HidingConsumer, OvertakenLog
from tests.kafka.broker import Tansu

from abyssal.cluster.engine_node import EngineNode
from abyssal.cluster.kafka_log import PartitionReader, _consumer
from abyssal.cluster.records import commands_topic, offset_of_seq
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import Deposit, command_encoder
from abyssal.core.snapshot import state_hash

READ_TIMEOUT_S = 10.0
RECORDS = 12


async def _read(reader: PartitionReader, n: int) -> list[tuple[int, bytes]]:
    """(offset, value) of the first ``n`` records the reader hands over."""
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while len(out) < n:
        batch = await asyncio.wait_for(reader.next_batch(), max(0.0, deadline - time.monotonic()))
        out.extend((r.offset, r.value) for r in batch)
    return out


@pytest.mark.parametrize(
    ("start", "unreadable", "seeks"),
    [
        (0, {}, []),
        (0, {5: 1}, [5]),  # a later record overtakes one, once
        (0, {5: 3}, [5, 5, 5]),  # still missing on the first fetches again
        (0, {0: 1}, [0]),  # the very first offset
        (0, {3: 1, 4: 1, 9: 2}, [3, 9, 9]),  # two holes; 3 and 4 in the same fetch
        (7, {8: 1}, [8]),  # a reader started at a snapshot's offset
    ],
    ids=["none", "one", "one-three-times", "first", "several", "from-a-snapshot"],
)
def test_every_offset_is_handed_over_once_and_in_order(
    start: int, unreadable: dict[int, int], seeks: list[int]
) -> None:
    values = [f"record {i}".encode() for i in range(RECORDS)]
    log = OvertakenLog(values, unreadable)

    async def run() -> list[tuple[int, bytes]]:
        reader = PartitionReader("kafka://twin", "t", start, client_id="twin", connect=log.connect)
        reader.start()
        try:
            return await _read(reader, RECORDS - start)
        finally:
            reader.stop()

    got = asyncio.run(run())
    assert [o for o, _ in got] == list(range(start, RECORDS))
    assert [v for _, v in got] == values[start:]
    assert log.seeks == seeks


def test_an_offset_that_never_appears_stops_the_reader() -> None:
    values = [f"record {i}".encode() for i in range(RECORDS)]
    log = OvertakenLog(values, {6: 10**9})

    async def run() -> list[tuple[int, bytes]]:
        reader = PartitionReader("kafka://twin", "t", 0, client_id="twin", connect=log.connect,
                                 hole_wait_s=0.2)  # fmt: skip
        reader.start()
        got: list[tuple[int, bytes]] = []
        try:
            with pytest.raises(RuntimeError, match="no record at offset 6"):
                while True:
                    got.extend((r.offset, r.value) for r in await asyncio.wait_for(reader.next_batch(), 5))
        finally:
            reader.stop()
        return got

    got = asyncio.run(run())
    assert [o for o, _ in got] == [0, 1, 2, 3, 4, 5]  # nothing after the hole was handed over
    assert log.seeks and set(log.seeks) == {6}


def _deposit(i: int) -> Deposit:
    return Deposit(ts_ns=1_000 + i, account=1 + i % 3, asset=0, amount_minor=100 + i, ref=f"d{i}")


def test_an_engine_applies_every_command_when_a_later_one_overtakes_it() -> None:
    """The command at seq 255 is not readable when the fetch that returns seq 256 is served: the
    replica applies 255 and then 256, never 256 after 254."""
    commands = [_deposit(i) for i in range(300)]
    log = OvertakenLog([command_encoder.encode(c) for c in commands], {offset_of_seq(255): 2})
    config = load_config()
    node = EngineNode(config, "postgresql://unused", "kafka://unused", node_id="follower")

    async def run() -> None:
        node.reader = PartitionReader("kafka://twin", commands_topic(0), 0, client_id="twin",
                                      connect=log.connect)  # fmt: skip
        node.reader.start()
        task = asyncio.create_task(node._apply_forever())
        deadline = time.monotonic() + READ_TIMEOUT_S
        try:
            while node.seq < len(commands) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                if task.done():
                    task.result()  # raises what stopped the replica
        finally:
            task.cancel()
            node.reader.stop()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    reference = Engine(config.instruments)
    for c in commands:
        reference.apply(c)
    assert node.seq == len(commands)
    assert state_hash(node.engine) == state_hash(reference)
    assert log.seeks == [offset_of_seq(255)] * 2


@pytest.mark.slow
def test_a_reader_fetches_again_from_an_overtaken_offset_on_tansu(broker: Tansu) -> None:
    """librdkafka and Tansu for real: the record at an offset dropped on its first arrival is
    fetched again by seeking back, and everything after it follows once, in order."""
    broker.create_topic("overtaken", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    values = [f"record {i}".encode() for i in range(40)]
    for v in values:
        p.produce("overtaken", v, partition=0)
    assert p.flush(10) == 0
    hidden = {3, 17, 18}  # a hole shows once a later record arrives, so not the last offset
    consumers: list[HidingConsumer] = []

    def connect(url: str, client_id: str) -> HidingConsumer:
        real: Consumer = _consumer(url, client_id)
        consumers.append(HidingConsumer(real, hidden))
        return consumers[-1]

    async def run() -> list[tuple[int, bytes]]:
        reader = PartitionReader(broker.url, "overtaken", 0, client_id="hiding", connect=connect)
        reader.start()
        try:
            return await _read(reader, len(values))
        finally:
            reader.stop()

    got = asyncio.run(run())
    assert got == list(enumerate(values))
    assert consumers[0].hide == set()  # each hidden offset did arrive, and was dropped once
    assert consumers[0].seeks[0] == 3 and set(consumers[0].seeks) <= hidden
