"""A throwaway PostgreSQL 15 cluster (initdb + pg_ctl on a free port), for tests and benchmarks.

As root the server runs as the ``postgres`` user (``initdb`` refuses root); the unix socket
lives in the cluster's temp dir (``-k``) so it never collides with another server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import free_port

PG_BIN = Path(os.environ.get("ABYSSAL_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT_S = 30
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def binaries_present() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file()


@dataclass
class PgCluster:
    """``start()`` then ``dsn``; ``stop()`` removes everything. ``durable`` keeps fsync on."""

    durable: bool = False
    port: int = field(default_factory=free_port)
    root: Path | None = None
    extra: tuple[str, ...] = ()

    def _as_postgres(self, *argv: str) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*prefix, *argv]

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def dsn(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not binaries_present():
            raise FileNotFoundError(
                f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql-15)"
            )
        self.root = Path(tempfile.mkdtemp(prefix="abyssal-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "-N")  # fmt: skip
        settings = ("-c max_connections=200", *(f"-c {s}" for s in (() if self.durable else FAST_SETTINGS)),
                    *(f"-c {s}" for s in self.extra))  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} " + " ".join(settings)
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            subprocess.run(self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                             "-w", "stop"), capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def log(self) -> str:
        path = self.root / "server.log" if self.root else None
        return path.read_text() if path and path.exists() else ""

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *argv: str) -> None:
        done = subprocess.run(self._as_postgres(*argv), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr}\n{self.log()}")
