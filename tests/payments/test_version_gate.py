"""The consumer's version gate (ledger-notes 4.4, D5): an event of a schema version the webhook
consumer has no reader for is parked, acknowledged and reported, never misread; the stream
behind it flows on; once an upgrade adds the reader, the parked event is handled exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from tests.payments.paykit import exchange_env, run
from tests.payments.test_delivery import Target, _until, _webhook

from abyssal.ports import BusMessage
from abyssal.runtime.notifications import CONSUMER, _account_v1


def _v2(account: int, event_id: str) -> BusMessage:
    """A future payload shape: the account moved under "data". A v1 reader finds no "account"
    and would silently drop the event as addressed to nobody: the misreading the gate prevents."""
    payload = msgspec.json.encode({"data": {"account": account, "payment": {"id": "FTX", "version": 1}}})
    return BusMessage("payments", "payment:FTX", event_id, "payment.deposit.captured", 2, payload)


def test_an_unknown_schema_version_is_parked_not_misread_and_handled_after_an_upgrade(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            target = Target()
            await _webhook(env, "alice", target)
            ex = env.exchange
            notifier = ex.notifier
            assert notifier is not None
            assert _account_v1(_v2(t.account, "x").payload) is None  # what a v1 reader would make of it

            await ex.bus.publish([_v2(t.account, "evt-v2")])  # acknowledged: the bus does not retry it
            r = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("after")
            )
            refid = r.json()["id"]
            await _until(lambda: len(target.calls) >= 2)  # the v1 stream behind it is not blocked
            await asyncio.sleep(0.2)
            assert sorted(target.delivered_events()) == sorted([f"p-{refid}-1", f"p-{refid}-2"])
            store = ex.webhook_store
            reasons = await ex.payment_io(store.parked_reasons, CONSUMER)
            assert reasons == {"evt-v2": "unknown schema version 2 of payments"}
            seen = "SELECT COUNT(*) FROM consumed_events WHERE event_id = 'evt-v2'"
            assert ex.store.conn().execute(seen).fetchone()[0] == 0  # parked, not consumed
            await ex.bus.publish([_v2(t.account, "evt-v2")])  # a redelivery parks it once
            assert len(await ex.payment_io(store.parked, CONSUMER, 10)) == 1

            assert await notifier.retry_parked() == 0  # still no reader: it stays parked

            def v2(payload: bytes) -> int | None:
                return int(msgspec.json.decode(payload)["data"]["account"])

            notifier.readers[("payments", 2)] = v2  # the upgrade
            assert await notifier.retry_parked() == 1
            await _until(lambda: "evt-v2" in target.delivered_events())
            assert await notifier.retry_parked() == 0
            await ex.bus.publish([_v2(t.account, "evt-v2")])  # a late redelivery: deduplicated
            await asyncio.sleep(0.2)
            assert target.delivered_events().count("evt-v2") == 1
            assert await ex.payment_io(store.parked_reasons, CONSUMER) == {}

    run(scenario)
