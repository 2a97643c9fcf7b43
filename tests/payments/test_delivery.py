"""Outbox -> relay -> bus -> notifications (ledger-notes 6.3): every committed change has its
event, a relay crash between publish and mark duplicates on the bus but never downstream, a
redelivered event notifies once, a target that is down then up gets one delivery, retries are
bounded with backoff and end in a dead letter visible through /v1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from pathlib import Path

import msgspec
import pytest
from tests.payments.paykit import Env, exchange_env, run

from abyssal.adapters.memory_bus import MemoryBus
from abyssal.ports import BusMessage
from abyssal.runtime.notifications import CONSUMER, backoff_s
from abyssal.runtime.outbox import OutboxRelay


class Target:
    """A fake webhook receiver: answers ``failures`` errors first, then 200; records every call."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    async def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        self.calls.append((url, body, headers))
        if self.failures:
            self.failures -= 1
            return 503
        return 200

    def delivered_events(self) -> list[str]:
        return [h["Abyssal-Event-Id"] for _, _, h in self.calls]


async def _webhook(env: Env, name: str, target: Target, secret: str = "s3cret") -> None:
    assert env.exchange.notifier is not None
    env.exchange.notifier.send = target
    env.exchange.notifier.backoff_base_s, env.exchange.notifier.backoff_max_s = 0.01, 0.02
    r = await env.http.post(
        "/v1/webhooks",
        json={"url": "http://hooks.test/in", "secret": secret},
        headers=env.tenants[name].headers(),
    )
    assert r.status_code == 201


async def _until(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_every_committed_change_has_its_outbox_event_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            ledger_events: list[BusMessage] = []

            async def on_ledger(m: BusMessage) -> None:
                ledger_events.append(m)

            env.exchange.bus.subscribe(["ledger"], "test-ledger")  # before any ledger event
            listening = asyncio.create_task(env.exchange.bus.run(["ledger"], "test-ledger", on_ledger))
            t = await env.tenant("alice", USD="100")
            await env.withdraw_key(t)
            r = await env.http.post(
                "/v1/withdrawals", json={"asset": "USD", "amount": "5", "key": "bank"}, headers=t.headers("w")
            )
            refid = r.json()["id"]
            await env.client.admin("POST", f"/admin/payments/withdrawals/{refid}/completed", {})
            await env.settled()
            c = env.exchange.store.conn()
            rows = c.execute(
                "SELECT event_type, schema_version, payload FROM outbox WHERE aggregate = ? ORDER BY id",
                (f"payment:{refid}",),
            ).fetchall()
            assert [r[0] for r in rows] == [
                "payment.withdrawal.requested",
                "payment.withdrawal.held",
                "payment.withdrawal.sent",
                "payment.withdrawal.completed",
            ]
            versions = [msgspec.json.decode(r[2])["payment"]["version"] for r in rows]
            assert versions == [1, 2, 3, 4] and {r[1] for r in rows} == {1}
            assert c.execute("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL").fetchone()[0] == 0
            # engine events are not copied into ``outbox``: the event log is their outbox
            assert c.execute("SELECT COUNT(*) FROM outbox WHERE topic != 'payments'").fetchone()[0] == 0
            assert [m.event_type for m in ledger_events] == ["deposited", "withdraw_held", "withdraw_posted"]
            assert [m.key for m in ledger_events] == [f"account:{t.account}"] * 3
            seqs = [msgspec.json.decode(m.payload)["seq"] for m in ledger_events]
            assert seqs == sorted(seqs) and all(m.event_id.startswith("e-") for m in ledger_events)
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    run(scenario)


def test_webhooks_are_signed_and_a_target_down_then_up_gets_one_delivery(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            target = Target(failures=3)
            await _webhook(env, "alice", target)
            r = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("d")
            )
            captured = f"p-{r.json()['id']}-2"
            await _until(lambda: target.calls and target.failures == 0 and len(target.calls) >= 5)
            await asyncio.sleep(0.1)
            ok = [h for _, _, h in target.calls][3:]
            assert sorted(h["Abyssal-Event-Id"] for h in ok) == sorted([f"p-{r.json()['id']}-1", captured])
            _, body, headers = target.calls[-1]
            ts, mac = (part.split("=", 1)[1] for part in headers["Abyssal-Signature"].split(","))
            assert mac == hmac.new(b"s3cret", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
            d = await env.http.get("/v1/webhooks/deliveries?status=delivered", headers=t.headers())
            rows = d.json()["data"]
            assert len(rows) == 2 and sum(row["attempts"] for row in rows) == 2 + 3  # 3 failures, then ok

    run(scenario)


def test_retries_are_bounded_and_end_in_a_visible_dead_letter(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            target = Target(failures=10**6)
            await _webhook(env, "alice", target)
            assert env.exchange.notifier is not None
            env.exchange.notifier.attempts_max = 3
            await env.http.post("/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("d"))

            async def dead() -> int:
                r = await env.http.get("/v1/webhooks/dead-letters", headers=t.headers())
                return len(r.json()["data"])

            for _ in range(300):
                if await dead() == 2:
                    break
                await asyncio.sleep(0.02)
            r = await env.http.get("/v1/webhooks/dead-letters", headers=t.headers())
            assert {(row["attempts"], row["last_error"]) for row in r.json()["data"]} == {(3, "HTTP 503")}
            assert len(target.calls) == 6  # 2 events x 3 attempts, then no more

    run(scenario)


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        for _ in range(50):
            pause = backoff_s(attempt, 0.5, 10.0, rng)
            assert 0 <= pause <= min(10.0, 0.5 * 2 ** (attempt - 1))


def test_a_relay_crash_between_publish_and_mark_duplicates_upstream_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            ex = env.exchange
            assert ex.relay is not None
            await ex.relay.stop()  # drive our own relay instead
            t = await env.tenant("alice")
            target = Target()
            await _webhook(env, "alice", target)
            await env.http.post("/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("d"))

            class DiesAfterPublish:
                def __init__(self, bus: MemoryBus) -> None:
                    self.bus, self.sent = bus, 0

                async def publish(self, messages: list[BusMessage]) -> None:
                    await self.bus.publish(messages)
                    self.sent += len(messages)
                    raise ConnectionError("relay died before marking")  # as if killed here

                async def close(self) -> None:
                    return None

            dying = DiesAfterPublish(ex.bus)
            with pytest.raises(ConnectionError):
                await OutboxRelay(ex.payment_store, dying, ex.payment_io).run_once()
            assert dying.sent > 0
            restarted = OutboxRelay(ex.payment_store, ex.bus, ex.payment_io)
            assert await restarted.run_once() == dying.sent  # everything again: at least once
            await _until(lambda: len(target.calls) >= 2)
            await asyncio.sleep(0.2)
            events = target.delivered_events()
            assert len(events) == len(set(events)) == 2  # deduplicated downstream
            c = ex.store.conn()
            assert (
                c.execute("SELECT COUNT(*) FROM consumed_events WHERE consumer = ?", (CONSUMER,)).fetchone()[
                    0
                ]
                >= 2
            )
            ex.relay.start()

    run(scenario)


def test_a_redelivered_event_never_notifies_twice(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            target = Target()
            await _webhook(env, "alice", target)
            assert env.exchange.notifier is not None
            payload = msgspec.json.encode({"account": t.account, "payment": {}})
            message = BusMessage("payments", "payment:X", "evt-1", "payment.deposit.captured", 1, payload)
            for _ in range(4):
                await env.exchange.bus.publish([message])
            await _until(lambda: len(target.calls) >= 1)
            await asyncio.sleep(0.2)
            assert target.delivered_events() == ["evt-1"]

    run(scenario)


def test_the_in_process_bus_redelivers_until_the_handler_succeeds() -> None:
    async def scenario() -> None:
        bus = MemoryBus(queue_messages_max=2)
        seen: list[str] = []

        async def flaky(m: BusMessage) -> None:
            seen.append(m.event_id)
            if len(seen) < 3:
                raise RuntimeError("not yet")

        bus.subscribe(["t"], "g")
        consumer = asyncio.create_task(bus.run(["t"], "g", flaky))
        await bus.publish([BusMessage("t", "k", "e1", "x", 1, b"{}")])
        assert seen == ["e1", "e1", "e1"]  # acknowledged only after the handler succeeded
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await bus.close()

    asyncio.run(scenario())
