"""Abyssal server: one ``abyssal serve`` process, pinned with taskset, driven over loopback.

The few lines of tests/conftest.py's Server a benchmark needs, plus the CPU pinning and CPU
accounting it reports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import BENCH_CONFIG_TOML, server_cpu_s

SERVER_CPUS = "0"  # taskset lists; --server-cpus/--client-cpus override them
ADMIN_TOKEN = "bench-admin-token"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    cpus: str = SERVER_CPUS
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    config: Path | None = None  # ``--config`` (TOML laid over the packaged defaults)
    launcher: tuple[str, ...] = ("-m", "abyssal.cli")  # what runs ``serve`` (http_bounds.py: its own)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "ABYSSAL_ADMIN_TOKEN": ADMIN_TOKEN}
        self.log_path = self.data_dir.parent / "server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        cmd = ["taskset", "-c", self.cpus, sys.executable, *self.launcher, "serve",
               "--data-dir", str(self.data_dir), "--port", str(self.port)]  # fmt: skip
        config = self.config
        if config is None:  # the packaged defaults, the open-orders limit raised for load
            config = self.data_dir.parent / "bench.toml"
            config.write_text(BENCH_CONFIG_TOML)
        cmd += ["--config", str(config)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/0/public/Time", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM and wait (the sequencer drains its queue); returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def cpu_s(self) -> float:
        """User + system CPU of the server process so far (all its threads)."""
        assert self.proc is not None
        return server_cpu_s(self.proc.pid)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())
