"""A live ``abyssal serve`` process on a free port with its own data directory, for tests."""

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

ADMIN_TOKEN = "test-admin-token"
START_TIMEOUT_S = 20.0


def terminate(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout_s``."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running exchange process; ``url`` is the base URL for every client."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    database: str | None = None  # a postgresql:// URL; None: SQLite in data_dir
    config: Path | None = None  # a TOML file for --config
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    command: str = "serve"  # or "gateway" / "marketdata" (scaled out: needs database and extra --bus)
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # more environment (e.g. PYTHONPATH of a build)
    _log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "ABYSSAL_ADMIN_TOKEN": ADMIN_TOKEN, **self.env}
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        self._close_log()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        command = [self.command, "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra]
        if self.database:
            command += ["--database", self.database]
        if self.config is not None:
            command += ["--config", str(self.config)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "abyssal.cli", *command], stdout=self._log, stderr=self._log, env=env
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                self._close_log()
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/0/public/Time", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush: the crash case."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self._close_log()

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def account(self, name: str, **deposits: str) -> dict[str, Any]:
        """Create an account with a full-permission key and fund it: ``account("a", USD="1000")``."""
        created = self.admin("POST", "/admin/accounts", {"name": name})
        for asset, amount in deposits.items():
            self.admin("POST", "/admin/deposits", {"account": name, "asset": asset, "amount": amount})
        return dict(created)

    def status(self) -> Any:
        return self.admin("GET", "/admin/status")
