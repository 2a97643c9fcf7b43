"""An idle outbox relay backs off when its writers wake it (the embedded exchange), and only then.

While nothing is written, the payments relay of the embedded exchange doubles its poll up to
``IDLE_POLL_MAX_S`` instead of querying the outbox 50 times a second; every write of the payment
service wakes it, so a transition that runs no engine command (a withdrawal marked ``sent``)
still reaches the bus at once. A relay without ``idle_poll_max_s`` (a separate relay process,
whose writers cannot wake it) keeps polling at its interval.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.payments.paykit import exchange_env, run

from abyssal.ports import BusMessage, OutboxRow
from abyssal.runtime.outbox import OutboxRelay


class _Table:
    """The outbox calls a relay makes on SQLite (SerialClaims), counted."""

    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []
        self.published: set[int] = set()
        self.claims = 0

    def unpublished(self, limit: int) -> list[OutboxRow]:
        self.claims += 1
        return [r for r in self.rows if r.id not in self.published][:limit]

    def mark_published(self, ids: list[int], now_ns: int) -> None:
        self.published.update(ids)

    def purge_published(self, before_ns: int, limit: int) -> int:
        return 0


class _Bus:
    def __init__(self) -> None:
        self.sent: list[tuple[float, BusMessage]] = []

    async def publish(self, messages: list[BusMessage]) -> None:
        self.sent += [(time.monotonic(), m) for m in messages]


async def _inline(fn: object, *args: object) -> object:
    assert callable(fn)
    return fn(*args)


def _row(n: int) -> OutboxRow:
    return OutboxRow(n, BusMessage("payments", "payment:1", f"p-{n}", "payment.test", 1, b"{}", ""))


def test_an_idle_relay_backs_off_and_a_wake_sends_at_once() -> None:
    async def scenario() -> None:
        table, bus = _Table(), _Bus()
        relay = OutboxRelay(table, bus, _inline, poll_interval_s=0.01, idle_poll_max_s=0.32)
        relay.start()
        await asyncio.sleep(1.0)
        idle_claims = table.claims  # waits of 0.02, 0.04 ... 0.32: about 7, against 50 at 0.01 + gap
        assert 4 <= idle_claims <= 10, idle_claims
        table.rows.append(_row(1))
        woken = time.monotonic()
        relay.wake.set()
        for _ in range(100):
            if bus.sent:
                break
            await asyncio.sleep(0.005)
        assert [m.event_id for _, m in bus.sent] == ["p-1"]
        assert bus.sent[0][0] - woken < 0.1, "a wake is not held back by the idle poll"
        await relay.stop()

    run(scenario)


def test_a_relay_nobody_wakes_keeps_its_poll() -> None:
    async def scenario() -> None:
        table, bus = _Table(), _Bus()
        relay = OutboxRelay(table, bus, _inline, poll_interval_s=0.01)
        relay.start()
        await asyncio.sleep(0.5)
        assert table.claims >= 20, table.claims  # every 10-20 ms: a row written elsewhere waits no longer
        table.rows.append(_row(1))  # no wake
        for _ in range(100):
            if bus.sent:
                break
            await asyncio.sleep(0.005)
        assert [m.event_id for _, m in bus.sent] == ["p-1"]
        await relay.stop()

    run(scenario)


def test_a_transition_without_an_engine_command_reaches_the_bus_while_the_relay_idles(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            ex = env.exchange
            assert ex.relay is not None and ex.relay.idle_poll_max_s is not None
            ex.relay.idle_poll_max_s = 60.0  # so that only a wake can deliver within the test
            got: list[tuple[float, BusMessage]] = []

            async def on_payment(m: BusMessage) -> None:
                got.append((time.monotonic(), m))

            ex.bus.subscribe(["payments"], "test-payments")
            reading = asyncio.create_task(ex.bus.run(["payments"], "test-payments", on_payment))
            t = await env.tenant("alice", USD="100")
            await env.withdraw_key(t)
            r = await env.http.post(
                "/v1/withdrawals", json={"asset": "USD", "amount": "5", "key": "bank"}, headers=t.headers("w")
            )
            refid = r.json()["id"]
            await env.settled()
            await asyncio.sleep(1.4)  # idle: the relay's wait has grown past a second
            claimed = time.monotonic()
            await env.client.admin("POST", f"/admin/payments/withdrawals/{refid}/sent", {})
            for _ in range(200):
                if any(m.event_type == "payment.withdrawal.sent" for _, m in got):
                    break
                await asyncio.sleep(0.005)
            sent = [at for at, m in got if m.event_type == "payment.withdrawal.sent"]
            assert sent and sent[0] - claimed < 0.3, "the payment service's write woke the relay"
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    run(scenario)
