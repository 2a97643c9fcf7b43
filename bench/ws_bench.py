"""WebSocket v2 fan-out: book subscribers during a steady order stream, engine throughput, idle connections.

Run from the repo root with the project venv (about 3 minutes)::

    python bench/ws_bench.py
    python bench/ws_bench.py --subscribers 1000 --rate 1000 --seconds 10 --idle 10000

Three processes: this orchestrator; the server (the real ``App`` under uvicorn, uvloop, pinned to
CPU 0, with an order driver inside it calling ``Exchange.execute`` directly, so HTTP is not
measured); and the clients (raw asyncio sockets, no permessage-deflate, pinned to CPU 1).
Phases, each on a fresh data directory:

1. no subscribers: a steady stream of ``--rate`` commands/s for ``--seconds``, then the highest
   sustained throughput (``--inflight`` commands kept in flight) for ``--seconds``;
2. ``--subscribers`` connections, each subscribed to ``book`` (depth 10) and ``trade`` on BTC/USD:
   the same steady stream, then the same throughput run. Clients count every frame; ``--probes``
   of them parse frames for delays: trade-to-delivery (the fill's engine time to the client's
   receive time, so it includes the SQLite commit) and publish-to-delivery (the book update's
   ``timestamp``, the moment the committed batch reached the market views, to receive);
3. the same as 2 with the portable ASGI send path (``ABYSSAL_WS_DIRECT=0``);
4. ``--idle`` connections that only receive the status frame: server RSS per connection.

End state asserted: every subscriber got its snapshot, no connection was closed by the server,
the book clients saw checksums only from frames they parsed (probes re-check them), and the
engine acknowledged every command it was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.metadata
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SYMBOL = "BTC/USD"
MID_TICKS = 300_000  # 30000.0
MAKERS = 8
TAKER = 100


def raise_fd_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------------------------------- server
async def serve(port: int, data_dir: Path) -> None:
    import structlog
    import uvicorn

    from abyssal.config import load_config
    from abyssal.core.messages import CancelOrders, Deposit, OrderType, PlaceOrder, Side, TimeInForce
    from abyssal.gateway.app import App
    from abyssal.runtime.exchange import Exchange

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    config = load_config(None)
    exchange = Exchange(config, data_dir)
    app = App(exchange)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="none",
            http="httptools",
            lifespan="on",
            log_level="error",
            access_log=False,
            backlog=4096,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not exchange.opened:
        await asyncio.sleep(0.01)
    pair = config.instruments.pairs[0]
    rng = random.Random(1)
    open_orders: dict[int, list[int]] = {m: [] for m in range(1, MAKERS + 1)}
    for account in [*open_orders, TAKER]:
        for asset, amount in ((pair.quote.index, 10**14), (pair.base.index, 10**14)):
            await exchange.execute(
                Deposit(ts_ns=time.time_ns(), account=account, asset=asset, amount_minor=amount, ref="b")
            )
    sent = acked = 0

    def command() -> Any:
        now = time.time_ns()
        maker = rng.randint(1, MAKERS)
        if len(open_orders[maker]) > 150:
            return CancelOrders(ts_ns=now, account=maker, order_nos=[open_orders[maker].pop(0)])
        if rng.random() < 0.2:  # a marketable IOC: trades against the makers
            side = rng.choice((Side.buy, Side.sell))
            price = MID_TICKS + (40 if side == Side.buy else -40)
            return PlaceOrder(
                ts_ns=now,
                account=TAKER,
                pair=pair.index,
                side=int(side),
                ordertype=int(OrderType.limit),
                volume_lots=rng.randint(1, 5) * 100_000,
                price_ticks=price,
                tif=int(TimeInForce.ioc),
            )
        side = rng.choice((Side.buy, Side.sell))
        offset = rng.randint(1, 30)
        price = MID_TICKS - offset if side == Side.buy else MID_TICKS + offset
        return PlaceOrder(
            ts_ns=now,
            account=maker,
            pair=pair.index,
            side=int(side),
            ordertype=int(OrderType.limit),
            volume_lots=rng.randint(1, 20) * 100_000,
            price_ticks=price,
        )

    async def one() -> None:
        nonlocal acked
        cmd = command()
        events = await exchange.execute(cmd)
        acked += 1
        for e in events:
            no = getattr(e, "order_no", 0)
            if type(e).__name__ == "OrderAccepted" and e.account in open_orders and e.status == 1:
                open_orders[e.account].append(no)

    for _ in range(400):  # a book to subscribe to
        await one()
    sent = acked
    tasks: set[asyncio.Task[None]] = set()

    def launch() -> None:
        nonlocal sent
        sent += 1
        task = asyncio.get_running_loop().create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def steady(rate: float, seconds: float) -> dict[str, Any]:
        start_acked, start = acked, time.perf_counter()
        ws = app.websocket
        d0, r0 = ws.publisher.stats.deliveries, ws.publisher.stats.rounds
        b0 = exchange.sequencer.batches_committed
        t0_ns = time.time_ns()
        cpu0 = os.times()
        interval = 1.0 / rate
        next_at = start
        while time.perf_counter() - start < seconds:
            now = time.perf_counter()
            while next_at <= now:
                launch()
                next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        while tasks:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        cpu1 = os.times()
        cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / elapsed
        return {
            "cpu": cpu,
            "commands_per_s": (acked - start_acked) / elapsed,
            "batches_per_s": (exchange.sequencer.batches_committed - b0) / elapsed,
            "rounds_per_s": (ws.publisher.stats.rounds - r0) / elapsed,
            "deliveries_per_s": (ws.publisher.stats.deliveries - d0) / elapsed,
            "window_ns": [t0_ns, time.time_ns()],
        }

    async def flat_out(inflight: int, seconds: float) -> dict[str, Any]:
        start_acked, start = acked, time.perf_counter()
        b0 = exchange.sequencer.batches_committed
        while time.perf_counter() - start < seconds:
            while len(tasks) < inflight:
                launch()
            await asyncio.sleep(0.001)
        while tasks:
            await asyncio.sleep(0.01)
        batches = max(1, exchange.sequencer.batches_committed - b0)
        return {
            "commands_per_s": (acked - start_acked) / (time.perf_counter() - start),
            "mean_batch": (acked - start_acked) / batches,
        }

    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        if line[0] == "sessions":
            ws = app.websocket
            subscribed = sum(1 for s in ws.sessions if s.subs)
            closed = sum(1 for s in ws.sessions if s.wire.closed)
            print(
                json.dumps(
                    {
                        "sessions": len(ws.sessions),
                        "subscribed": subscribed,
                        "closed": closed,
                        "rss": rss_bytes(os.getpid()),
                    }
                ),
                flush=True,
            )
        elif line[0] == "steady":
            profile_to = os.environ.get("WS_BENCH_PROFILE")
            if profile_to:  # a developer aid: cProfile of the server during the steady stream
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            result = await steady(float(line[1]), float(line[2]))
            if profile_to:
                profiler.disable()
                profiler.dump_stats(profile_to)
            print(json.dumps(result), flush=True)
        elif line[0] == "flat":
            print(json.dumps(await flat_out(int(line[1]), float(line[2]))), flush=True)
    assert acked == sent, "every command sent was acknowledged"
    server.should_exit = True
    await serving


# ------------------------------------------------------------------------------------------ clients
class Client(asyncio.Protocol):
    """One raw v2 connection: handshake, minimal frame parsing, optional JSON parsing for delays."""

    def __init__(self, stats: dict[str, Any], probe: bool, subscribe: bool) -> None:
        self.stats, self.probe, self.subscribe = stats, probe, subscribe
        self.buf = b""
        self.handshake = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.snapshots = 0
        self.closed_by_server = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /v2 HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        header = (
            bytes((0x81, 0x80 | len(payload)))
            if len(payload) < 126
            else bytes((0x81, 0xFE)) + len(payload).to_bytes(2, "big")
        )
        self.transport.write(header + b"\0\0\0\0" + payload)  # a zero mask leaves the payload as is

    def data_received(self, data: bytes) -> None:
        if self.handshake and not self.probe:  # the crowd only counts bytes: the client CPU is the limit
            self.stats["bytes"] += len(data)
            if not self.ready.done() and b'"type":"snapshot"' in data:
                self.ready.set_result(None)
            return
        buf = self.buf + data
        if not self.handshake:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.handshake = True
            buf = buf[end + 4 :]
            if self.subscribe:
                self.send(
                    {"method": "subscribe", "params": {"channel": "book", "symbol": [SYMBOL], "depth": 10}}
                )
                self.send({"method": "subscribe", "params": {"channel": "trade", "symbol": [SYMBOL]}})
            else:
                self.ready.set_result(None)
            if not self.probe:
                self.data_received(buf)
                return
        stats = self.stats
        pos, size = 0, len(buf)
        now_ns = time.time_ns()
        while size - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            if opcode == 8:
                self.closed_by_server = True
                continue
            stats["probe_frames"] += 1
            stats["bytes"] += head + length
            self.frame(payload, now_ns)
        self.buf = buf[pos:]

    def frame(self, payload: bytes, now_ns: int) -> None:
        if payload.startswith(b'{"channel":"book","type":"snapshot"'):
            self.snapshots += 1
            if self.snapshots == 1 and not self.ready.done():
                self.ready.set_result(None)
        elif self.probe and payload.startswith(b'{"channel":"book","type":"update"'):
            at = payload.find(b'"timestamp":"')
            sent = datetime.fromisoformat(payload[at + 13 : at + 40].decode()).timestamp()
            self.stats["book"].append((now_ns, now_ns / 1e9 - sent))
        elif self.probe and payload.startswith(b'{"channel":"trade","type":"update"'):
            at = payload.find(b'"timestamp":"')  # the oldest trade of the frame: the longest wait
            sent = datetime.fromisoformat(payload[at + 13 : at + 40].decode()).timestamp()
            self.stats["trade"].append((now_ns, now_ns / 1e9 - sent))

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["lost"] += 1


async def clients(port: int, count: int, probes: int, subscribe: bool) -> None:
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {"probe_frames": 0, "bytes": 0, "lost": 0, "book": [], "trade": []}
    conns: list[Client] = []
    for start in range(0, count, 250):  # in waves: the listen backlog is finite
        wave = []
        for i in range(start, min(count, start + 250)):
            client = Client(stats, i < probes, subscribe)
            wave.append(loop.create_connection(lambda c=client: c, "127.0.0.1", port))  # type: ignore[misc]
            conns.append(client)
        await asyncio.gather(*wave)
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in conns[start:])), 60)
    print(json.dumps({"connected": len(conns)}), flush=True)
    samples: list[tuple[int, float]] = []

    async def sample_cpu() -> None:  # is the client side the bottleneck? its CPU use tells
        while True:
            t = os.times()
            samples.append((time.time_ns(), t.user + t.system))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_cpu())
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        if line[0] == "report":
            lo, hi = int(line[1]), int(line[2])
            window = [(t, c) for t, c in samples if lo <= t <= hi]
            cpu = (
                (window[-1][1] - window[0][1]) / ((window[-1][0] - window[0][0]) / 1e9)
                if len(window) > 1
                else 0
            )
            book = [d * 1000 for t, d in stats["book"] if lo <= t <= hi]
            trade = [d * 1000 for t, d in stats["trade"] if lo <= t <= hi]
            print(
                json.dumps(
                    {
                        "probe_frames": stats["probe_frames"],
                        "bytes": stats["bytes"],
                        "lost": stats["lost"],
                        "cpu": cpu,
                        "closed_by_server": sum(c.closed_by_server for c in conns),
                        "book_ms": [percentile(book, p) for p in (50, 99, 99.9)],
                        "book_n": len(book),
                        "trade_ms": [percentile(trade, p) for p in (50, 99, 99.9)],
                        "trade_n": len(trade),
                    }
                ),
                flush=True,
            )
    sampler.cancel()
    for c in conns:
        c.transport.close()


# -------------------------------------------------------------------------------------- orchestrator
class Child:
    def __init__(self, args: list[str], cpu: int, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), *args, "--cpu", str(cpu)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def ask(self, line: str | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"child {self.proc.args} ended")
        return dict(json.loads(answer))

    def quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def phase(args: argparse.Namespace, subscribers: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    port = 20_000 + random.randint(0, 9_999)
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        server = Child(["--serve", str(port), tmp], -1 if args.no_pin else 0, env)
        ready = server.ask()
        out: dict[str, Any] = {"rss_before": rss_bytes(ready["pid"])}
        crowd = None
        if subscribers:
            crowd = Child(
                ["--clients", str(port), str(subscribers), str(args.probes), "1"], -1 if args.no_pin else 1
            )
            crowd.ask()
        out["sessions"] = server.ask("sessions")
        out["steady"] = server.ask(f"steady {args.rate} {args.seconds}")
        out["flat"] = server.ask(f"flat {args.inflight} {args.seconds}")
        if crowd is not None:
            lo, hi = out["steady"]["window_ns"]
            out["clients"] = crowd.ask(f"report {lo} {hi}")
            out["after"] = server.ask("sessions")
            crowd.quit()
        server.quit()
    return out


def idle_phase(count: int) -> dict[str, Any]:
    port = 20_000 + random.randint(0, 9_999)
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        server = Child(["--serve", str(port), tmp], 0)
        server.ask()
        before = server.ask("sessions")
        crowd = Child(["--clients", str(port), str(count), "0", "0"], 1)
        crowd.ask()
        time.sleep(1.0)
        after = server.ask("sessions")
        crowd.quit()
        server.quit()
    return {
        "sessions": after["sessions"],
        "rss_per_connection": (after["rss"] - before["rss"]) / max(1, after["sessions"]),
        "rss_before": before["rss"],
        "rss_after": after["rss"],
    }


def report(name: str, r: dict[str, Any]) -> None:
    s, f = r["steady"], r["flat"]
    print(f"  {name}")
    print(
        f"    steady stream : {s['commands_per_s']:8.0f} commands/s, {s['batches_per_s']:6.0f} batches/s, "
        f"{s['rounds_per_s']:6.0f} publish rounds/s, {s['deliveries_per_s']:7.0f} frames delivered/s; "
        f"server CPU {s['cpu']:.0%}"
    )
    print(
        f"    flat out      : {f['commands_per_s']:8.0f} commands/s (engine throughput, "
        f"{r['sessions']['subscribed']} subscribers, {f['mean_batch']:.0f} commands per commit)"
    )
    c = r.get("clients")
    if c:
        seconds = (s["window_ns"][1] - s["window_ns"][0]) / 1e9
        print(
            f"    clients       : {c['bytes'] / 1e6:.1f} MB received in total, probes parsed "
            f"{c['probe_frames']} frames; lost {c['lost']}, closed by server {c['closed_by_server']}, "
            f"server-side closed {r['after']['closed']}; client CPU {c['cpu']:.0%}"
        )
        print(
            f"    trade->client : p50 {c['trade_ms'][0]:.2f} ms  p99 {c['trade_ms'][1]:.2f} ms  "
            f"p99.9 {c['trade_ms'][2]:.2f} ms  ({c['trade_n']} samples over {seconds:.0f} s, "
            f"{args_probes} probes)"
        )
        print(
            f"    views->client : p50 {c['book_ms'][0]:.2f} ms  p99 {c['book_ms'][1]:.2f} ms  "
            f"p99.9 {c['book_ms'][2]:.2f} ms  (book update timestamp to receive; {c['book_n']} samples)"
        )


args_probes = 0


def main() -> None:
    global args_probes
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", default="100,1000", help="comma-separated subscriber counts")
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="steady commands per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inflight", type=int, default=512)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--skip-asgi", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place the processes")
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--clients", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = raise_fd_limit()
    if args.cpu >= 0:
        pin(args.cpu)
    if args.serve:
        import uvloop

        uvloop.run(serve(int(args.serve[0]), Path(args.serve[1])))
        return
    if args.clients:
        import uvloop

        port, count, probes, subscribe = (int(x) for x in args.clients)
        uvloop.run(clients(port, count, probes, bool(subscribe)))
        return
    args_probes = args.probes
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}" for p in ("uvicorn", "websockets", "uvloop", "msgspec")
    )
    print(
        f"machine: {cpu} x{os.cpu_count()}, Python {platform.python_version()}, {versions}; "
        f"fd limit {limit}; load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'no pinning' if args.no_pin else 'server pinned to CPU 0, clients to CPU 1'}; steady stream "
        f"{args.rate:.0f} commands/s for {args.seconds:.0f} s (orders, IOC takers, cancels on BTC/USD); "
        "subscribers take book depth 10 + trade"
    )
    results = {"none": phase(args, 0)}
    report("no subscribers", results["none"])
    counts = [int(x) for x in args.subscribers.split(",")]
    for count in counts:
        paths = [("direct", None)] + ([] if args.skip_asgi else [("asgi", {"ABYSSAL_WS_DIRECT": "0"})])
        for name, env in paths:
            r = results[f"{name}-{count}"] = phase(args, count, env)
            report(
                f"{count} subscribers, {'direct transport writes' if name == 'direct' else 'ASGI send path'}",
                r,
            )
            assert r["sessions"]["subscribed"] == count, "every subscriber got its snapshot"
            assert r["clients"]["lost"] == 0 and r["after"]["closed"] == 0, "the server closed no subscriber"
    none_tp = results["none"]["flat"]["commands_per_s"]
    for count in counts:
        with_tp = results[f"direct-{count}"]["flat"]["commands_per_s"]
        print(
            f"  engine throughput with {count} subscribers: {with_tp / none_tp:.0%} of the throughput without"
        )
    if args.idle:
        idle = idle_phase(args.idle)
        assert idle["sessions"] == args.idle, "every idle connection was accepted"
        print(
            f"  {args.idle} idle connections: server RSS {idle['rss_before'] / 1e6:.0f} MB -> "
            f"{idle['rss_after'] / 1e6:.0f} MB, {idle['rss_per_connection'] / 1024:.1f} KiB per connection"
        )


if __name__ == "__main__":
    main()
