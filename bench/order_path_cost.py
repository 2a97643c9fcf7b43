"""Cost of one signed AddOrder through the whole server path, without the network: CPU and instructions.

Run from the repo root with the project venv (about 1 minute; add PYTHONPATH=build/mypyc/lib for
the compiled build, which is what ``./scripts/serve`` runs)::

    python bench/order_path_cost.py                      # CPU µs per order, 3 passes
    python bench/order_path_cost.py --instructions       # + instructions per order (valgrind)
    python bench/order_path_cost.py --wave 1             # one request at a time: a batch per order

One process: the embedded ``Exchange`` (SQLite WAL, ``synchronous=FULL``) and its ASGI ``App``,
started through the lifespan as uvicorn does, under uvloop. Two funded accounts send signed
``AddOrder``s from ``OrderMix`` (80 % resting, 20 % taking) in waves of 64 concurrent requests
(``--wave``),
each an ASGI call with the headers and body a client sends: authentication with its HMAC, nonce,
parameter parsing, the sequencer's batch (engine, projection, the durable commit in the writer
thread), the acknowledgement and the JSON answer. Every answer must be ``"error":[]``.

The batch writer is the thread (``engine.batch_writer = "thread"``), not the default child process,
so that every instruction of the path is this process's.

Figures: process CPU time (every thread: the writer's statements and COMMIT included) per order,
after a warm-up. CPU time still moves with other load on a shared machine (caches, frequency);
``--instructions`` also runs the same workload twice under ``valgrind --tool=cachegrind``, with
and without the measured orders, and prints the difference per order: user-space instructions,
which do not depend on other load, so two builds or two commits compare to a fraction of a
percent, as long as they batch alike: the mean batch is printed, and a change that makes commits
faster makes waves of 64 split into more, smaller batches, each paying the per-batch work again.
``--wave 1`` (every order its own batch) is the figure that cannot move that way. Kernel time
(the commit's WAL writes and fdatasync) is in the CPU figure only. uvicorn's HTTP parsing and the
socket writes are not in either figure (``http_bench.py`` measures them).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
from machine import bench_config, contention, machine_lines
from order_mix import OrderMix, add_order_body

from abyssal.core import engine_build
from abyssal.core.messages import Side
from abyssal.gateway.app import App
from abyssal.gateway.auth import sign
from abyssal.runtime.exchange import Exchange

PATH = "/0/private/AddOrder"
WAVE = 64  # concurrent requests, as http_bench.py's 64 connections
FUNDING = {"ZUSD": "10000000000", "XXBT": "1000000"}
NONCE_WINDOW = 10**6
NONCE_START = 10**9
READY_TIMEOUT_S = 20.0
Request = tuple[list[tuple[bytes, bytes]], bytes]


async def _asgi(
    app: App, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes, *, ok: bool = True
) -> bytes:
    """One ASGI HTTP call; returns the response body (the status must be 200 unless not ``ok``)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}  # fmt: skip
    delivered = False
    chunks: list[bytes] = []
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # a disconnect never comes: the call ends when the answer is sent
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    assert status == 200 or not ok, (path, status, b"".join(chunks)[:300])
    return b"".join(chunks) if status == 200 else b""


async def _admin(app: App, token: str, path: str, fields: dict[str, Any]) -> Any:
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    return json.loads(await _asgi(app, "POST", path, headers, json.dumps(fields).encode()))


def _signed_orders(keys: dict[Side, dict[str, Any]], count: int) -> list[Request]:
    mix = OrderMix()
    out: list[Request] = []
    for i in range(count):
        order = mix.next()
        key = keys[order.side]
        nonce = NONCE_START + i
        body = add_order_body(order, nonce).encode()
        headers = [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"api-key", key["api_key"].encode()),
            (b"api-sign", sign(key["api_secret"], PATH, str(nonce), body).encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        out.append((headers, body))
    return out


async def _send_waves(app: App, requests: list[Request], wave: int) -> None:
    async def one(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        answer = await _asgi(app, "POST", PATH, headers, body)
        assert answer.startswith(b'{"error":[]'), answer[:300]

    for i in range(0, len(requests), wave):
        await asyncio.gather(*(one(h, b) for h, b in requests[i : i + wave]))


async def _run(data_dir: Path, warmup: int, orders: int, passes: int, wave: int) -> tuple[list[float], float]:
    """CPU µs per order of each pass (all threads of this process), and the passes' mean batch."""
    config = bench_config()  # the packaged defaults, the open-orders limit raised for load
    # the batch writer as a thread, so the commit is this process's and counted with the rest
    config = dataclasses.replace(config, engine=dataclasses.replace(config.engine, batch_writer="thread"))
    exchange = Exchange(config, data_dir)
    app = App(exchange)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), READY_TIMEOUT_S)
    assert started["type"] == "lifespan.startup.complete", started
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not await _asgi(app, "GET", "/health/ready", [], b"", ok=False):
            assert time.monotonic() < deadline, "the exchange did not become ready"
            await asyncio.sleep(0.01)
        keys: dict[Side, dict[str, Any]] = {}
        for side, name in ((Side.buy, "cost-buyer"), (Side.sell, "cost-seller")):
            token = exchange.admin_token
            keys[side] = await _admin(
                app, token, "/admin/accounts", {"name": name, "nonce_window": NONCE_WINDOW}
            )
            for asset, amount in FUNDING.items():
                await _admin(
                    app, token, "/admin/deposits", {"account": name, "asset": asset, "amount": amount}
                )
        requests = _signed_orders(keys, warmup + orders * passes)
        await _send_waves(app, requests[:warmup], wave)
        per_order: list[float] = []
        seq = exchange.sequencer
        commands0, batches0 = seq.commands_committed, seq.batches_committed
        for p in range(passes):
            cpu = time.process_time()
            start = warmup + p * orders
            await _send_waves(app, requests[start : start + orders], wave)
            per_order.append((time.process_time() - cpu) / max(orders, 1) * 1e6)
        batches = seq.batches_committed - batches0
        return per_order, (seq.commands_committed - commands0) / batches if batches else 0.0
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(outbox.get(), READY_TIMEOUT_S)
        await asyncio.wait_for(lifespan, READY_TIMEOUT_S)


def _instructions(warmup: int, orders: int, wave: int) -> int:
    """User-space instructions of one child run under cachegrind (``--orders`` may be 0)."""
    with tempfile.TemporaryDirectory(prefix="abyssal-cost-") as tmp:
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp}/cg.out"]
        cmd += [sys.executable, __file__, "--child", "--warmup", str(warmup), "--orders", str(orders)]
        cmd += ["--wave", str(wave)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(
                f"valgrind run failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        return int(found.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=5_000, help="measured orders per pass")
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument(
        "--wave", type=int, default=WAVE,
        help=f"concurrent requests (default {WAVE}); 1 makes every order its own batch",
    )  # fmt: skip
    ap.add_argument(
        "--instructions", action="store_true", help="also count instructions per order (valgrind)"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import uvloop

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.child:  # one pass, nothing printed: the parent reads cachegrind's totals
        with tempfile.TemporaryDirectory(prefix="abyssal-cost-") as tmp:
            uvloop.run(_run(Path(tmp) / "data", args.warmup, args.orders, 1 if args.orders else 0, args.wave))
        return 0
    print("# Abyssal order path cost (in-process ASGI, SQLite WAL, synchronous=FULL)")
    for line in machine_lines():
        print(line)
    print(f"engine build: {engine_build()}")
    with tempfile.TemporaryDirectory(prefix="abyssal-cost-") as tmp:
        per_order, mean_batch = uvloop.run(
            _run(Path(tmp) / "data", args.warmup, args.orders, args.passes, args.wave)
        )
    shown = ", ".join(f"{x:.1f}" for x in per_order)
    print(f"CPU per signed AddOrder ({args.orders:,} orders per pass, waves of {args.wave}): {shown} µs "
          f"(best {min(per_order):.1f}); mean batch {mean_batch:.1f} commands")  # fmt: skip
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("valgrind is missing (apt-get install valgrind): no instruction counts", file=sys.stderr)
            return 1
        measured = min(args.orders, 1_000)  # ~50x slower under valgrind
        base = _instructions(args.warmup // 4, 0, args.wave)
        full = _instructions(args.warmup // 4, measured, args.wave)
        each = (full - base) / measured
        print(f"instructions per signed AddOrder (cachegrind, {measured:,} orders after "
              f"{args.warmup // 4:,} warm-up, minus the same run without them): {each:,.0f}")  # fmt: skip
    print(f"other load at the end: {contention()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
