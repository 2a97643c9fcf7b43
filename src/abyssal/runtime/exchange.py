"""The embedded exchange: store, recovered engine, sequencer, keys and market data, wired once."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from abyssal.adapters.sqlite import SqliteStore
from abyssal.config import Config
from abyssal.core.messages import Command, Event
from abyssal.gateway.auth import SecretBox, load_or_create_master_key
from abyssal.gateway.keys import KeyRing
from abyssal.runtime.market import MarketData
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import recover
from abyssal.runtime.sequencer import Sequencer

log = structlog.get_logger("abyssal.exchange")

READ_THREADS = 4
NONCE_FLUSH_INTERVAL_S = 1.0
T = TypeVar("T")


def admin_token(data_dir: Path) -> str:
    """ABYSSAL_ADMIN_TOKEN, else the token file the first start writes into the data directory."""
    env = os.environ.get("ABYSSAL_ADMIN_TOKEN")
    if env:
        return env
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


class Exchange:
    def __init__(self, config: Config, data_dir: Path) -> None:
        self.config = config
        self.instruments = config.instruments
        self.data_dir = data_dir
        self.started_ns = time.time_ns()
        self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="abyssal-read")
        self.store: SqliteStore
        self.sequencer: Sequencer
        self.keys: KeyRing
        self.market = MarketData(self.instruments)
        self.admin_token = admin_token(data_dir)
        self._flusher: asyncio.Task[None] | None = None
        self._flushed_nonces: dict[str, int] = {}
        self.ws_tokens: dict[str, tuple[int, int]] = {}  # token -> (key_no, expires_ns)
        self.on_ready: list[Callable[[], None]] = []
        self.opened = False
        self.phase = "starting"  # starting -> recovering -> ready -> stopping -> stopped (or failed)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await loop.run_in_executor(None, SqliteStore, self.data_dir / "abyssal.db")
        self.phase = "recovering"
        recovered = await loop.run_in_executor(None, recover, self.store, self.instruments)
        balances = await loop.run_in_executor(None, self.store.load_balances)
        master = await loop.run_in_executor(None, load_or_create_master_key, self.data_dir / "master.key")
        self.keys = KeyRing(self.store, SecretBox(master))
        await loop.run_in_executor(None, self.keys.load)
        await loop.run_in_executor(None, self.market.load, self.store)
        settings = self.config.engine
        self.sequencer = Sequencer(
            recovered.engine,
            self.store,
            Projector(self.instruments, balances),
            intake_queue_max=settings.intake_queue_max,
            batch_commands_max=settings.batch_commands_max,
            snapshot_every_commands=settings.snapshot_every_commands,
            next_seq=recovered.next_seq,
            last_snapshot_seq=recovered.last_snapshot_seq,
        )
        self.market.attach(recovered.engine)
        self.sequencer.listeners.append(self.market.on_batch)
        self.sequencer.start()
        self._flusher = asyncio.create_task(self._flush_nonces_forever())
        log.info("exchange_open", seq=recovered.next_seq - 1, replayed=recovered.replayed)
        self.opened = True
        self.phase = "ready"
        for hook in self.on_ready:
            hook()

    async def close(self) -> None:
        """Graceful shutdown: the sequencer closes intake, finishes its batch and writes a snapshot."""
        if not self.opened:
            self.phase = "stopped"
            self._reads.shutdown(wait=True)
            return
        self.phase = "stopping"
        if self._flusher is not None:
            self._flusher.cancel()
        await self.sequencer.stop()
        await self._flush_nonces()
        self._reads.shutdown(wait=True)
        self.phase = "stopped"
        log.info("exchange_closed", seq=self.sequencer.next_seq - 1, phase=self.phase)

    @property
    def engine(self) -> Any:
        return self.sequencer.engine

    async def execute(self, command: Command, nonce: tuple[int, int] | None = None) -> list[Event]:
        return await self.sequencer.execute(command, nonce)

    async def read(self, fn: Any, *args: Any) -> Any:
        """Run a blocking read on the reader pool (never on the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._reads, fn, *args)

    async def _flush_nonces_forever(self) -> None:
        while True:
            await asyncio.sleep(NONCE_FLUSH_INTERVAL_S)
            try:
                await self._flush_nonces()
            except Exception as exc:
                log.error("nonce_flush_failed", error=repr(exc))

    async def _flush_nonces(self) -> None:
        changed = []
        for api_key, key in self.keys.by_key.items():
            last = self.keys.nonces.last(api_key)
            if last and self._flushed_nonces.get(api_key) != last:
                changed.append((last, key.key_no))
                self._flushed_nonces[api_key] = last
        if changed:
            await self.read(self._write_nonces, changed)

    def _write_nonces(self, changed: list[tuple[int, int]]) -> None:
        with self.store.transaction() as c:
            c.executemany("UPDATE api_keys SET last_nonce = MAX(last_nonce, ?) WHERE key_no = ?", changed)
