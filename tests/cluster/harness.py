"""A scaled-out Abyssal on loopback: roles as real processes over Tansu and a throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import ADMIN_TOKEN, Server, free_port, terminate

START_TIMEOUT_S = 30.0


@dataclass
class RoleProc:
    """``abyssal engine|ledger-writer|relay|notifier`` with its status listener on a free port."""

    role: str
    data_dir: Path
    database: str
    bus: str
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log: Any = None

    def start(self, wait_ready: bool = True) -> None:
        env = {**os.environ, "ABYSSAL_ADMIN_TOKEN": ADMIN_TOKEN}
        self.log_path = self.data_dir.parent / f"{self.role}-{self.port}.log"
        self._close_log()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        argv = [sys.executable, "-m", "abyssal.cli", self.role, "--data-dir", str(self.data_dir),
                "--database", self.database, "--bus", self.bus, "--port", str(self.port),
                "--log-format", "json", *self.extra]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=self._log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1):
                    return
            except OSError:
                if not wait_ready and self.listening():
                    return
                time.sleep(0.05)
        raise RuntimeError(f"{self.role} did not become ready:\n{self.log()}")

    def listening(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/livez", timeout=1):
                return True
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=10) as r:
            return dict(json.loads(r.read()))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        self._close_log()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    data_dir: Path
    database: str
    bus: str
    config: Path | None = None  # a TOML file every process gets with --config
    gateways: list[Server] = field(default_factory=list)
    engines: list[RoleProc] = field(default_factory=list)
    others: dict[str, RoleProc] = field(default_factory=dict)

    def role(self, name: str, *extra: str) -> RoleProc:
        config = ["--config", str(self.config)] if self.config is not None else []
        return RoleProc(name, self.data_dir, self.database, self.bus, [*config, *extra])

    def start(self, gateways: int = 2, engines: int = 2, lease_ttl: float = 2.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for i in range(engines):
            e = self.role("engine", "--node-id", f"engine-{i}", "--lease-ttl", str(lease_ttl))
            e.start()
            self.engines.append(e)
            if i == 0:
                self.wait_for_leader()
        for name in ("ledger-writer", "relay", "notifier"):
            self.others[name] = self.role(name)
            self.others[name].start()
        for _ in range(gateways):
            g = Server(self.data_dir, database=self.database, config=self.config, command="gateway",
                       extra=["--bus", self.bus])  # fmt: skip
            g.start()
            self.gateways.append(g)

    def leader(self) -> RoleProc | None:
        for e in self.engines:
            if e.alive():
                try:
                    if e.status()["leader"]:
                        return e
                except OSError:
                    continue
        return None

    def wait_for_leader(self, timeout_s: float = 15.0) -> RoleProc:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.leader()
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError("no engine took the lease:\n" + "\n".join(e.log()[-3000:] for e in self.engines))

    def stop(self) -> None:
        for g in self.gateways:
            g.stop()
        for r in [*self.others.values(), *self.engines]:
            r.stop()
