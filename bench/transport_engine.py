"""Transport engine: the two trivial engine processes of the transport benchmark (gRPC leader, log consumer).

Started by ``transport_runs.start_engine`` as ``python bench/transport_bench.py engine-grpc|engine-log ...``;
each prints ``READY`` once it serves and stops on SIGTERM, SIGINT or EOF on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys
import threading

from transport_wire import SERVICE, consumer_conf, drain, producer_conf


def _stop_flag(on_stop: object = None) -> threading.Event:
    """Set on SIGTERM/SIGINT or when stdin reaches EOF (the bench process is gone)."""
    stop = threading.Event()

    def set_stop(*_: object) -> None:
        stop.set()
        if callable(on_stop):
            on_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, set_stop)

    def watch_stdin() -> None:
        sys.stdin.read()
        set_stop()

    threading.Thread(target=watch_stdin, daemon=True).start()
    return stop


def engine_grpc(args: argparse.Namespace) -> None:
    """The leader: append (acks=all, idempotent) -> apply in log order -> answer."""
    import grpc
    from confluent_kafka import Producer

    async def main() -> None:
        loop = asyncio.get_running_loop()
        counter = 0
        producer = Producer(producer_conf(args.bootstrap, args.linger)) if args.append else None
        running = True

        acked: list[tuple[asyncio.Future[bytes], bytes, object]] = []

        def poller() -> None:
            # delivery reports are collected here and handed to the loop once per poll batch
            assert producer is not None
            while running:
                producer.poll(0.05)
                if acked:
                    batch = acked[:]
                    del acked[: len(batch)]
                    loop.call_soon_threadsafe(applied, batch)

        def applied(batch: list[tuple[asyncio.Future[bytes], bytes, object]]) -> None:
            # runs on the loop in delivery order = log order: this is where the engine applies
            nonlocal counter
            for fut, request, err in batch:
                if err is not None:
                    fut.set_exception(RuntimeError(str(err)))
                    continue
                counter += 1
                fut.set_result(struct.pack(">Q", counter) + request)

        async def apply(request: bytes, context: object) -> bytes:
            nonlocal counter
            if producer is None:
                counter += 1
                return struct.pack(">Q", counter) + request
            fut: asyncio.Future[bytes] = loop.create_future()
            producer.produce(
                args.cmd_topic, request, on_delivery=lambda err, _msg: acked.append((fut, request, err))
            )
            return await fut

        if producer is not None:
            threading.Thread(target=poller, daemon=True).start()
        handler = grpc.unary_unary_rpc_method_handler(apply)  # no (de)serializers: raw bytes
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Apply": handler}),))
        server.add_insecure_port(f"127.0.0.1:{args.port}")
        await server.start()
        print("READY", flush=True)
        stop = asyncio.Event()
        _stop_flag(lambda: loop.call_soon_threadsafe(stop.set))
        await stop.wait()
        await server.stop(0.5)
        running = False
        if producer is not None:
            producer.flush(5)

    asyncio.run(main())


def engine_log(args: argparse.Namespace) -> None:
    """Consume commands, apply, produce results with the command's correlation header."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    stop = _stop_flag()
    consumer = Consumer(consumer_conf(args.bootstrap, args.fetch_wait))
    consumer.assign([TopicPartition(args.cmd_topic, 0, 0)])
    producer = Producer(producer_conf(args.bootstrap, args.linger))
    counter = 0
    print("READY", flush=True)
    while not stop.is_set():
        for m in drain(consumer):
            if m.error():
                continue
            counter += 1
            producer.produce(args.events_topic, struct.pack(">Q", counter) + m.value(), headers=m.headers())
        producer.poll(0)
    producer.flush(5)
    consumer.close()
