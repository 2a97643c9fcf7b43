"""WS phases: the orchestrator's child processes (server, clients) and one benchmark phase each.

Each child is ``ws_bench.py`` run with a hidden flag (``--serve`` or ``--clients``) and pinned with
``--cpu``; the orchestrator talks to it one line of text out, one line of JSON back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from machine import rss_bytes

WS_BENCH = Path(__file__).resolve().with_name("ws_bench.py")
PORT_MIN = 20_000
PORT_SPREAD = 10_000
CHILD_STOP_TIMEOUT_S = 60
IDLE_SETTLE_S = 1.0


class Child:
    def __init__(self, args: list[str], cpu: int, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WS_BENCH), *args, "--cpu", str(cpu)],
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
        self.proc.wait(timeout=CHILD_STOP_TIMEOUT_S)


async def commands() -> AsyncIterator[list[str]]:
    """The child's side: each command line from the orchestrator, split, until ``quit`` or end of input."""
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            return
        yield line


def answer(message: dict[str, Any]) -> None:
    """The child's side: one JSON line to the orchestrator's ``Child.ask``."""
    print(json.dumps(message), flush=True)


def _port() -> int:
    return PORT_MIN + random.randint(0, PORT_SPREAD - 1)


def phase(args: argparse.Namespace, subscribers: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A fresh server, ``subscribers`` clients (none: no client process), the steady and flat-out runs."""
    port = _port()
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
    """A fresh server and ``count`` connections that subscribe to nothing: server RSS per connection."""
    port = _port()
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        server = Child(["--serve", str(port), tmp], 0)
        server.ask()
        before = server.ask("sessions")
        crowd = Child(["--clients", str(port), str(count), "0", "0"], 1)
        crowd.ask()
        time.sleep(IDLE_SETTLE_S)
        after = server.ask("sessions")
        crowd.quit()
        server.quit()
    return {
        "sessions": after["sessions"],
        "rss_per_connection": (after["rss"] - before["rss"]) / max(1, after["sessions"]),
        "rss_before": before["rss"],
        "rss_after": after["rss"],
    }
