"""Transport gateways: the gateway side of each path, gRPC to the leader (A) or through the Kafka log (B)."""

from __future__ import annotations

import asyncio
import struct
import threading
import uuid

from transport_wire import DEADLINE_S, METHOD, consumer_conf, drain, producer_conf


class GrpcGateway:
    def __init__(self, port: int) -> None:
        import grpc

        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = self.channel.unary_unary(METHOD)  # raw bytes in and out
        self.delivery_errors = 0  # no producer on this side

    async def call(self, payload: bytes) -> bytes:
        return await self.stub(payload, timeout=DEADLINE_S)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.channel.close()


class LogGateway:
    def __init__(self, bootstrap: str, cmd_topic: str, events_topic: str, fetch_wait: int, linger: float):
        from confluent_kafka import Consumer, Producer, TopicPartition

        self.loop = asyncio.get_running_loop()
        self.cmd_topic = cmd_topic
        self.producer = Producer(producer_conf(bootstrap, linger))
        self.consumer = Consumer(consumer_conf(bootstrap, fetch_wait))
        self.consumer.assign([TopicPartition(events_topic, 0, 0)])  # fresh topic: from the start
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        self.delivery_errors = 0
        self.running = True
        self.threads = [threading.Thread(target=self._consume, daemon=True),
                        threading.Thread(target=self._deliveries, daemon=True)]  # fmt: skip
        self.seq = 0
        self.prefix = uuid.uuid4().bytes[:8]  # gateway id: correlation = gateway id + sequence
        for t in self.threads:
            t.start()

    def _consume(self) -> None:
        while self.running:
            batch = []
            for m in drain(self.consumer):
                if m.error():
                    continue
                for k, v in m.headers() or ():
                    if k == "corr":
                        batch.append((v, m.value()))
            if batch:
                self.loop.call_soon_threadsafe(self._resolve, batch)

    def _resolve(self, batch: list[tuple[bytes, bytes]]) -> None:
        for corr, value in batch:
            fut = self.pending.pop(corr, None)  # results of other gateways are not ours: skipped
            if fut is not None and not fut.done():
                fut.set_result(value)

    def _report(self, err: object, _msg: object) -> None:
        if err is not None:
            self.delivery_errors += 1

    def _deliveries(self) -> None:
        while self.running:
            self.producer.poll(0.05)

    async def call(self, payload: bytes) -> bytes:
        self.seq += 1
        corr = self.prefix + struct.pack(">Q", self.seq)
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self.pending[corr] = fut
        self.producer.produce(self.cmd_topic, payload, headers=[("corr", corr)], on_delivery=self._report)
        try:
            return await asyncio.wait_for(fut, DEADLINE_S)
        finally:
            self.pending.pop(corr, None)

    async def close(self) -> None:
        self.running = False
        for t in self.threads:
            await asyncio.to_thread(t.join)
        self.producer.flush(5)
        self.consumer.close()
