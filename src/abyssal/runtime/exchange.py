"""The embedded exchange: store, recovered engine, sequencer, keys and market data, wired once."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import structlog

from abyssal.adapters import owner_lock
from abyssal.adapters.bus import Bus, open_bus
from abyssal.adapters.event_log_outbox import EVENTS_CURSOR, EventLogOutbox
from abyssal.adapters.sqlite import SqliteStore
from abyssal.adapters.sqlite_payments import SqlitePaymentStore
from abyssal.adapters.sqlite_webhooks import SqliteWebhookStore
from abyssal.adapters.sqlite_writer import ProcessBatchWriter
from abyssal.adapters.store import Store, is_postgres, open_store, redact, sqlite_path
from abyssal.config import Config
from abyssal.core import engine_build
from abyssal.core.messages import Command, Deposit, Event, WithdrawHold, WithdrawPost, WithdrawVoid
from abyssal.gateway.auth import SecretBox, load_or_create_master_key
from abyssal.gateway.keys import KeyRing
from abyssal.gateway.ratelimit import (
    CALL_TIER_STARTER,
    CALL_TIERS,
    TRADING_TIER_STARTER,
    TRADING_TIERS,
    CallCounter,
    TradingCounter,
)
from abyssal.runtime import notifications
from abyssal.runtime.heap import settle_heap
from abyssal.runtime.market import MarketData
from abyssal.runtime.notifications import Notifier
from abyssal.runtime.outbox import OutboxRelay
from abyssal.runtime.payments import PaymentService
from abyssal.runtime.projector import Projector
from abyssal.runtime.recovery import Recovered, recover
from abyssal.runtime.sequencer import Sequencer

if TYPE_CHECKING:
    from abyssal.cluster.gateway_log import LogSequencer
    from abyssal.cluster.shared import SharedState

log = structlog.get_logger("abyssal.exchange")

READ_THREADS = 4
# payments, relay and webhooks use their own pool, off the readers'. One thread: SQLite has one
# writer, and threads queueing on its lock sleep in the busy handler far longer than they wait here.
PAYMENT_THREADS = 1
# PostgreSQL takes concurrent writers (row locks, SKIP LOCKED claims): round trips overlap
PAYMENT_THREADS_POSTGRES = 8
NONCE_FLUSH_INTERVAL_S = 1.0
# the payments outbox relay's longest poll while idle: every in-process writer wakes it at once
# (``_payments_io``, and batches with payment commands), the poll only backs that up
IDLE_POLL_MAX_S = 0.5
# commands of the payments service: their batches sit between its outbox writes (see _wake_relays)
PAYMENT_COMMANDS = (Deposit, WithdrawHold, WithdrawPost, WithdrawVoid)
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
    def __init__(
        self,
        config: Config,
        data_dir: Path,
        *,
        database: str | None = None,
        bus: str | None = None,
        role: str = "embedded",
        shard: int = 0,
    ) -> None:
        self.config = config
        # embedded: everything in this process; gateway: a stateless gateway of the scaled-out
        # mode (the engine is reached through the Kafka log; cluster/gateway_log.py);
        # marketdata: a gateway that serves public REST and WebSocket data only
        self.role = role
        self.shard = shard
        self.shared: SharedState | None = None  # gateway role: nonces, tokens, counters in PostgreSQL
        self.database = database  # None: SQLite in data_dir; else a URL (adapters.store.open_store)
        self.bus_url = bus  # None or memory://: in-process; kafka://host:port (adapters.bus.open_bus)
        self.instruments = config.instruments
        self.data_dir = data_dir
        self.started_ns = time.time_ns()
        self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="abyssal-read")
        threads = PAYMENT_THREADS_POSTGRES if is_postgres(database) else PAYMENT_THREADS
        self._payment_io = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="abyssal-pay")
        self.payments: PaymentService | None = None  # None: no payments adapter for this database
        self.payment_store: SqlitePaymentStore
        self.webhook_store: SqliteWebhookStore
        self.payment_tokens: dict[str, int] = {}  # sha256(token) -> account
        self.bus: Bus = open_bus(bus if role == "embedded" else None)
        self.relay: OutboxRelay | None = None  # the payments outbox table
        self.event_relay: OutboxRelay | None = None  # the engine's events, from the event log
        self.event_log: EventLogOutbox | None = None
        self.notifier: Notifier | None = None
        self._consumer: asyncio.Task[None] | None = None
        self.store: Store
        self.sequencer: Sequencer | LogSequencer
        self.keys: KeyRing
        self.market = MarketData(self.instruments)
        self.admin_token = admin_token(data_dir)
        self._flusher: asyncio.Task[None] | None = None
        self._flushed_nonces: dict[str, int] = {}
        self.ws_tokens: dict[str, tuple[int, int]] = {}  # token -> (key_no, expires_ns)
        # Kraken's REST call counter per key and matching-engine counter per (account, pair);
        # off unless [limits] rest_tier / trading_tier name a tier
        rest_tier, trading_tier = config.limits.rest_tier.value, config.limits.trading_tier.value
        self.calls = CallCounter(CALL_TIERS.get(rest_tier, CALL_TIER_STARTER), enabled=rest_tier != "off")
        self.trading = TradingCounter(
            TRADING_TIERS.get(trading_tier, TRADING_TIER_STARTER), enabled=trading_tier != "off"
        )
        self.on_ready: list[Callable[[], None]] = []
        self.opened = False
        self._writer: ProcessBatchWriter | None = None  # SQLite's batch writer process, once started
        self._owner_fd = -1  # SQLite: this exchange's lock on its database (adapters/owner_lock.py)
        self.phase = "starting"  # starting -> recovering -> ready -> stopping -> stopped (or failed)
        self.startup_error = ""  # why open() failed, for the command line

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not is_postgres(self.database):  # before anything reads or writes the database
            self._owner_fd = owner_lock.take(sqlite_path(self.database, self.data_dir))
        self.store = await loop.run_in_executor(None, open_store, self.database, self.data_dir)
        self.phase = "recovering"
        replayed = 0  # a gateway's replica replays the record in recover_consistent
        if self.role in ("gateway", "marketdata"):
            from abyssal.cluster.gateway_setup import open_gateway

            engine, self.sequencer, self.shared = await open_gateway(self, loop)
        else:
            recovered = await loop.run_in_executor(None, recover, self.store, self.instruments)
            balances = await loop.run_in_executor(None, self.store.load_balances)
            engine, replayed = recovered.engine, recovered.replayed
            self._writer = await loop.run_in_executor(None, self._batch_writer)
            self.sequencer = self._embedded_sequencer(recovered, balances, self._writer)
        master = await loop.run_in_executor(None, load_or_create_master_key, self.data_dir / "master.key")
        self.keys = KeyRing(self.store, SecretBox(master))
        await loop.run_in_executor(None, self.keys.load)
        # market.load is annotated with SqliteStore but needs only the Store port's conn()
        await loop.run_in_executor(None, self.market.load, cast(Any, self.store))
        self.market.attach(engine)
        # the recovered state is long-lived: keep it out of every future collection, and
        # collect young objects less often (full collections of a large book cost 20-125 ms)
        settle_heap()
        self.sequencer.listeners.append(self.market.on_batch)
        self.sequencer.start()
        if self.shared is None:  # a gateway's nonces are checked and kept in PostgreSQL at once
            self._flusher = asyncio.create_task(self._flush_nonces_forever())
        await self._open_payments()
        log.info("exchange_open", seq=self.sequencer.next_seq - 1, replayed=replayed, role=self.role,
                 url=redact(self.database), engine_build=engine_build())  # fmt: skip
        self.opened = True
        self.phase = "ready"
        for hook in self.on_ready:
            hook()

    def _batch_writer(self) -> ProcessBatchWriter | None:
        """SQLite's batch writer process (blocking: it spawns and waits until the child is ready)."""
        if self.config.engine.batch_writer != "process" or not isinstance(self.store, SqliteStore):
            return None
        writer = ProcessBatchWriter(self.store.path, self.store.synchronous)
        writer.start()
        return writer

    def _embedded_sequencer(
        self,
        recovered: Recovered,
        balances: dict[tuple[int, int], list[int]],
        writer: ProcessBatchWriter | None,
    ) -> Sequencer:
        settings = self.config.engine
        return Sequencer(
            recovered.engine,
            self.store,
            Projector(self.instruments, balances),
            intake_queue_max=settings.intake_queue_max,
            batch_commands_max=settings.batch_commands_max,
            snapshot_every_commands=settings.snapshot_every_commands,
            next_seq=recovered.next_seq,
            last_snapshot_seq=recovered.last_snapshot_seq,
            batch_writer=writer,
        )

    async def _open_payments(self) -> None:
        """Payments, the outbox relays, the in-process bus and the webhook consumer, in that order.

        The adapters run on the Store port: SQLite and PostgreSQL alike."""
        self.payment_store = SqlitePaymentStore(self.store)
        self.payment_store.exclusive = self.role == "embedded"  # gateways share the database
        self.webhook_store = SqliteWebhookStore(self.store)
        self.payment_tokens = await self.payment_io(self.payment_store.tokens)
        self.payments = PaymentService(self.payment_store, self.instruments, self.execute, self._payments_io)
        await self.payments.reconcile()
        if self.role != "embedded":  # the relay and the notifier are roles of their own
            self.payments.start()
            return
        self.notifier = Notifier(self.webhook_store, self.payment_io)
        self.bus.subscribe(notifications.TOPICS, notifications.CONSUMER)  # before the relay publishes
        self._consumer = asyncio.create_task(
            self.bus.run(notifications.TOPICS, notifications.CONSUMER, self.notifier.handle)
        )
        # two relays, one bus: payment transitions from the outbox table, the engine's order,
        # trade and ledger events from the event log itself (adapters/event_log_outbox.py)
        self.relay = OutboxRelay(
            self.payment_store, self.bus, self.payment_io, idle_poll_max_s=IDLE_POLL_MAX_S
        )
        self.event_log = EventLogOutbox(self.store, self.bus.audience)
        # idle, it backs off like the payments relay: every batch wakes it while engine topics
        # have readers (_wake_relays), and while they have none there is nothing to claim
        self.event_relay = OutboxRelay(
            self.event_log, self.bus, self.payment_io, idle_poll_max_s=IDLE_POLL_MAX_S
        )
        # while no engine topic has a reader (the in-process default), the relay has nothing to
        # send: each batch's own transaction moves its cursor, and the relay is not woken
        assert isinstance(self.sequencer, Sequencer)  # embedded: the role that runs the relays here
        self.sequencer.follows.append((EVENTS_CURSOR, self._no_event_readers))
        self.sequencer.listeners.append(self._wake_relays)
        self.payments.start()
        self.notifier.start()
        self.relay.start()
        self.event_relay.start()

    def _no_event_readers(self) -> bool:
        return self.event_log is not None and not self.event_log.topics()

    def _wake_relays(self, results: list[tuple[int, Command, list[Event]]]) -> None:
        """Every committed batch has events to publish; the outbox table has rows from payments
        only, which write them around their engine commands (the relay also polls)."""
        if self.event_relay is not None and not self._no_event_readers():
            self.event_relay.wake.set()
        if self.relay is not None and any(isinstance(cmd, PAYMENT_COMMANDS) for _, cmd, _ in results):
            self.relay.wake.set()

    async def payment_io(self, fn: Any, *args: Any) -> Any:
        """Run a blocking payments/outbox/webhook call on its own pool (never on the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._payment_io, fn, *args)

    async def _payments_io(self, fn: Any, *args: Any) -> Any:
        """``payment_io`` for the payment service, every outbox row's writer here: what a call wrote
        is committed when it returns, so the outbox relay is woken then (idle, it polls slowly)."""
        try:
            return await self.payment_io(fn, *args)
        finally:
            if self.relay is not None:
                self.relay.wake.set()

    async def _close_payments(self) -> None:
        for relay in (self.relay, self.event_relay):
            if relay is not None:
                await relay.stop()
        if self.notifier is not None:
            await self.notifier.stop()
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        await self.bus.close()
        if self.payments is not None:
            await self.payments.stop()

    async def close(self) -> None:
        """Graceful shutdown: the sequencer closes intake, finishes its batch and writes a snapshot."""
        if not self.opened:
            self.phase = "stopped"
            if self._writer is not None:  # opening failed after the batch writer process started
                self._writer.close()
            self._reads.shutdown(wait=True)
            self._payment_io.shutdown(wait=True)
            self._release_owner()
            return
        self.phase = "stopping"
        if self._flusher is not None:
            self._flusher.cancel()
        await self._close_payments()
        await self.sequencer.stop()
        await self._flush_nonces()
        self._reads.shutdown(wait=True)
        self._payment_io.shutdown(wait=True)
        self._release_owner()
        self.phase = "stopped"
        log.info("exchange_closed", seq=self.sequencer.next_seq - 1, phase=self.phase)

    def _release_owner(self) -> None:
        if self._owner_fd >= 0:
            owner_lock.release(self._owner_fd)
            self._owner_fd = -1

    @property
    def engine(self) -> Any:
        return self.sequencer.engine

    async def execute(self, command: Command, nonce: tuple[int, int] | None = None) -> list[Event]:
        return await self.sequencer.execute(command, nonce)

    async def catch_up(self) -> None:
        """Gateway role: before a private call, reach the seq PostgreSQL has (read-your-writes
        for a client whose previous call went through another gateway). Embedded: nothing."""
        if self.shared is not None:
            seq = await self.read(self.shared.projected_seq)
            await cast("LogSequencer", self.sequencer).catch_up(seq)

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
                changed.append((api_key, last, key.key_no))
        if changed:
            await self.read(self._write_nonces, [(last, key_no) for _, last, key_no in changed])
            for api_key, last, _ in changed:  # only once written: a failed write is retried next time
                self._flushed_nonces[api_key] = last

    def _write_nonces(self, changed: list[tuple[int, int]]) -> None:
        self.store.bump_nonces(changed)
