"""The notifications consumer: payment events to signed webhooks, at least once, never twice.

``handle`` (the bus handler) makes the consumer's one durable write: a dedupe row keyed by event
id and one delivery record per registered webhook, in the same transaction; only then does the
bus acknowledge. A redelivered event finds its dedupe row and adds nothing. The deliverer sends
due deliveries with bounded concurrency, a timeout on every call, exponential backoff with full
jitter, and ``attempts_max`` tries before the delivery is dead-lettered (visible via /v1).

Each request carries ``Abyssal-Event-Id`` (receivers may dedupe too: a crash between a 2xx and
its record means one more send) and ``Abyssal-Signature: t=<unix s>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 of ``"<t>.<body>"`` under the webhook's secret.

Version gate (ledger-notes 4.4): the consumer reads a payload only through a reader for its
(topic, schema version). An event of a version it has no reader for is parked durably
(``parked_events``, with the reason) and acknowledged, so it is neither misread nor blocks the
stream; ``retry_parked`` (at start, i.e. after an upgrade adds the reader) handles it then.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog

from abyssal.adapters.sqlite_webhooks import Delivery, SqliteWebhookStore
from abyssal.adapters.webhook_http import post
from abyssal.ports import BusMessage
from abyssal.runtime.payment_records import PAYMENT_EVENT_SCHEMA_VERSION

log = structlog.get_logger("abyssal.notifications")

CONSUMER = "webhooks"
TOPICS = ["payments"]
CONCURRENCY_MAX = 8
TIMEOUT_S = 5.0
ATTEMPTS_MAX = 8
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 60.0
POLL_INTERVAL_S = 0.1
PARKED_BATCH_MAX = 500

# (topic, schema version) -> the account a payload is addressed to (None: nobody)
Reader = Callable[[bytes], int | None]


def _account_v1(payload: bytes) -> int | None:
    account = msgspec.json.decode(payload).get("account")
    return account if isinstance(account, int) else None


READERS: dict[tuple[str, int], Reader] = {("payments", PAYMENT_EVENT_SCHEMA_VERSION): _account_v1}

Post = Callable[[str, bytes, dict[str, str], float], Awaitable[int]]


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={mac}"


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2^attempt)]; attempt counts from 1."""
    return rng.uniform(0, min(max_s, base_s * 2 ** (attempt - 1)))


class Notifier:
    def __init__(
        self,
        store: SqliteWebhookStore,
        blocking: Callable[..., Awaitable[Any]],
        *,
        send: Post = post,
        concurrency_max: int = CONCURRENCY_MAX,
        timeout_s: float = TIMEOUT_S,
        attempts_max: int = ATTEMPTS_MAX,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        assert concurrency_max > 0 and timeout_s > 0 and attempts_max > 0
        self.store = store
        self.blocking = blocking
        self.send = send
        self.concurrency_max = concurrency_max
        self.timeout_s = timeout_s
        self.attempts_max = attempts_max
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.readers = dict(READERS)  # an upgrade adds readers; unknown versions are parked
        self.rng = random.Random()
        self.wake = asyncio.Event()
        self._sending: set[int] = set()
        self._slots = asyncio.Semaphore(concurrency_max)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- the consumer ------------------------------------------------------------------------
    async def handle(self, message: BusMessage) -> None:
        reader = self.readers.get((message.topic, message.schema_version))
        if reader is None:  # a version this consumer cannot read: park it, never guess
            reason = f"unknown schema version {message.schema_version} of {message.topic}"
            await self.blocking(self.store.park, CONSUMER, message, reason, time.time_ns())
            log.warning("event_parked", ref=message.event_id, reason=reason)
            return
        account = reader(message.payload)
        if account is None:
            return  # not addressed to an account: nothing to notify
        created = await self.blocking(self.store.record, CONSUMER, message, account, time.time_ns())
        if created:
            self.wake.set()

    async def retry_parked(self) -> int:
        """Handle parked events this consumer can read now; returns how many left the park."""
        parked: list[BusMessage] = await self.blocking(self.store.parked, CONSUMER, PARKED_BATCH_MAX)
        done = 0
        for message in parked:
            if (message.topic, message.schema_version) not in self.readers:
                continue
            await self.handle(message)  # dedupes by event id, so a crash before unpark is harmless
            await self.blocking(self.store.unpark, CONSUMER, message.event_id)
            done += 1
        if done:
            log.info("parked_events_handled", count=done)
        return done

    # -- the deliverer -----------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._deliver_forever())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(
            *([self._loop_task] if self._loop_task else []), *self._tasks, return_exceptions=True
        )

    async def _deliver_forever(self) -> None:
        try:
            await self.retry_parked()
        except Exception as exc:  # they stay parked; the next start tries again
            log.error("parked_events_retry_failed", error=repr(exc))
        resumed = await self.blocking(self.store.resume_interrupted, time.time_ns())
        if resumed:
            log.info("webhook_calls_resumed", count=resumed)
        while True:
            try:
                await self.deliver_due()
            except Exception as exc:
                log.error("webhook_loop_failed", error=repr(exc))
            self.wake.clear()
            try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                async with asyncio.timeout(POLL_INTERVAL_S):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def deliver_due(self) -> int:
        free = self.concurrency_max - len(self._sending)
        if free <= 0:
            return 0
        due: list[Delivery] = await self.blocking(self.store.due, time.time_ns(), free, set(self._sending))
        for d in due:
            self._sending.add(d.id)
            task = asyncio.create_task(self._deliver(d))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _deliver(self, d: Delivery) -> None:
        try:
            async with self._slots:
                attempt = d.attempts + 1
                # if we crash mid-call, retry once the call would surely have timed out
                retry_at = time.time_ns() + int((self.timeout_s + self.backoff_max_s) * 10**9)
                await self.blocking(self.store.begin_attempt, d.id, retry_at)
                error = await self._call(d)
                now = time.time_ns()
                if error is None:
                    await self.blocking(self.store.delivered, d.id, now)
                    log.info("webhook_delivered", ref=d.event_id, url=d.url, count=attempt)
                    return
                if attempt >= self.attempts_max:
                    await self.blocking(self.store.failed, d.id, error, None)
                    log.warning("webhook_dead_lettered", ref=d.event_id, url=d.url, error=error)
                    return
                pause = backoff_s(attempt, self.backoff_base_s, self.backoff_max_s, self.rng)
                await self.blocking(self.store.failed, d.id, error, now + int(pause * 10**9))
        finally:
            self._sending.discard(d.id)
            self.wake.set()

    async def _call(self, d: Delivery) -> str | None:
        """None on a 2xx answer, else the reason it failed."""
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Abyssal-Event-Id": d.event_id,
            "Abyssal-Event-Type": d.event_type,
            "Abyssal-Signature": signature(d.secret, ts, d.payload),
        }
        try:
            async with asyncio.timeout(self.timeout_s):
                status = await self.send(d.url, d.payload, headers, self.timeout_s)
        except TimeoutError:
            return f"timeout after {self.timeout_s}s"
        except Exception as exc:
            return repr(exc)[:200]
        return None if 200 <= status < 300 else f"HTTP {status}"
