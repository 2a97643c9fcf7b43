"""Payments, the outbox relay and webhooks on PostgreSQL: the payments e2e suite, unchanged, on a
server whose ``--database`` is a fresh PostgreSQL database (this package's ``server`` fixture),
the relay/consumer crash tests on PostgreSQL, the daily-limit race, and webhooks through Kafka.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness import Server
from tests.kafka.broker import Tansu
from tests.kafka.conftest import broker
from tests.payments.test_payments_e2e import (
    Receiver,
    _crash_then_recover,
    receiver,
    tenant,
    test_100_concurrent_requests_with_one_key_make_one_effect,
    test_kraken_funding_endpoints,
    test_the_sandbox_auto_settles_withdrawals,
)

from abyssal.adapters.postgres import PostgresStore
from abyssal.adapters.sqlite_payments import SqlitePaymentStore
from abyssal.ports import LimitWindow, NewPayment, OutboxEvent

pytestmark = pytest.mark.slow

__all__ = [
    "broker",
    "receiver",
    "test_100_concurrent_requests_with_one_key_make_one_effect",
    "test_kraken_funding_endpoints",
    "test_the_sandbox_auto_settles_withdrawals",
]


def test_relay_killed_between_publish_and_mark_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver, pg_url: str
) -> None:
    monkeypatch.setenv("ABYSSAL_DATABASE", pg_url)
    _crash_then_recover(tmp_path, monkeypatch, receiver, "relay.after_publish_before_mark", pg_url)


def test_consumer_killed_between_its_write_and_its_commit_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver, pg_url: str
) -> None:
    monkeypatch.setenv("ABYSSAL_DATABASE", pg_url)
    _crash_then_recover(tmp_path, monkeypatch, receiver, "notifications.before_commit", pg_url)


# -- the daily limit under concurrency -------------------------------------------------------------
class _SlowSum:
    """A Store whose transactions pause right after reading the limit's sum: without a per-account
    lock, two racing withdrawals would both read 0 and both pass."""

    def __init__(self, store: PostgresStore, pause_s: float) -> None:
        self.store = store
        self.pause_s = pause_s

    def conn(self) -> Any:
        return self.store.conn()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.store.transaction() as c:
            yield _SlowConnection(c, self.pause_s)


class _SlowConnection:
    def __init__(self, c: Any, pause_s: float) -> None:
        self.c = c
        self.pause_s = pause_s

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        cur = self.c.execute(sql, parameters)
        if "SUM(amount_minor)" in sql:
            time.sleep(self.pause_s)
        return cur

    def executemany(self, sql: str, parameters: Any) -> Any:
        return self.c.executemany(sql, parameters)


def _race(payments: SqlitePaymentStore, account: int, tag: str) -> list[str]:
    """Two withdrawals of 60 against a limit of 100, released together: each one's outcome."""
    window = LimitWindow(0, 2**62, 100)
    gate = threading.Barrier(2)
    outcomes: list[str] = []

    def withdraw(i: int) -> None:
        claim = payments.claim(account, "test", f"{tag}-{i}", "fp", "owner", 1_000 + i, 10**12)
        new = NewPayment(f"{tag}W{i}", "withdrawal", account, 1, 60, "requested")
        event = OutboxEvent(f"{tag}-e{i}", "payments", f"{tag}W{i}", "payment.requested", 1, b"{}", "")
        gate.wait()
        got = payments.open_payment(claim.key_id, new, window, event, 1_000 + i)
        outcomes.append(got if isinstance(got, str) else got.status)

    threads = [threading.Thread(target=withdraw, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return sorted(outcomes)


def test_two_withdrawals_racing_across_the_daily_limit_one_passes(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresStore(pg_url)
    try:
        payments = SqlitePaymentStore(_SlowSum(store, 0.3))  # type: ignore[arg-type]
        account = store.create_account("racer", 1)
        assert _race(payments, account, "locked") == ["daily_limit_exceeded", "requested"]
        # the race is real: without the per-account lock, both would pass
        monkeypatch.setattr(SqlitePaymentStore, "_lock_account", lambda *_: None)
        other = store.create_account("unlocked", 1)
        assert _race(payments, other, "unlocked") == ["requested", "requested"]
    finally:
        store.close()


def test_two_withdrawals_racing_through_the_api_one_passes(server: Server) -> None:
    _, auth = tenant(server, "alice", USD="1000")
    today = datetime.now(UTC).date()
    server.admin(
        "POST",
        "/admin/payments/calendar",
        {
            "calendar": "default",
            "seed_weekends": {
                "from": (today - timedelta(days=10)).isoformat(),
                "to": (today + timedelta(days=30)).isoformat(),
            },
        },
    )
    server.admin("POST", "/admin/payments/limits", {"tier": "default", "asset": "USD", "daily_limit": "100"})
    httpx.post(
        server.url + "/v1/withdraw-keys",
        json={"asset": "USD", "key": "bank", "address": "CH93-0076"},
        headers=auth,
    ).raise_for_status()

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            return await asyncio.gather(
                *[
                    http.post(
                        "/v1/withdrawals",
                        json={"asset": "USD", "amount": "60", "key": "bank"},
                        headers={**auth, "Idempotency-Key": f"race-{i}"},
                    )
                    for i in range(2)
                ]
            )

    answers = asyncio.run(race())
    assert sorted(r.status_code for r in answers) == [201, 422], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 422)
    assert refused.json()["error"]["code"] == "daily_limit_exceeded"


# -- webhooks through Kafka ------------------------------------------------------------------------
def test_a_deposit_webhook_is_delivered_once_through_kafka(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver, pg_url: str, broker: Tansu
) -> None:
    broker.create_topic("payments")
    monkeypatch.setenv("ABYSSAL_DATABASE", pg_url)
    monkeypatch.setenv("ABYSSAL_BUS", broker.url)
    server = Server(tmp_path / "data", database=pg_url)
    server.start()
    try:
        _, auth = tenant(server, "alice")
        httpx.post(
            server.url + "/v1/webhooks", json={"url": receiver.url, "secret": "x"}, headers=auth
        ).raise_for_status()
        r = httpx.post(
            server.url + "/v1/deposits",
            json={"asset": "USD", "amount": "5"},
            headers={**auth, "Idempotency-Key": "kafka-1"},
            timeout=10,
        )
        assert r.status_code == 201 and r.json()["status"] == "captured", r.text
        refid = r.json()["id"]
        expected = {f"p-{refid}-1", f"p-{refid}-2"}
        deadline = time.monotonic() + 60  # the consumer group's first join takes a few seconds
        while time.monotonic() < deadline and not expected <= set(receiver.events):
            time.sleep(0.1)
        time.sleep(1.0)  # a duplicate would arrive now
        assert sorted(receiver.events) == sorted(expected), (receiver.events, server.log()[-3000:])
        assert server.status()["audit"] == []
    finally:
        server.stop()
