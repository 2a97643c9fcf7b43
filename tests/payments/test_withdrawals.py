"""Withdrawals: the state machine with its transitions, one balance shared with trading, daily
limits that reset exactly at a business-day cutoff in a named zone (across DST), clear refusals."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
from tests.payments.paykit import Clock, exchange_env, run

from abyssal.runtime.calendar import to_ns

NY = ZoneInfo("America/New_York")


def test_the_state_machine_moves_only_forward_and_records_each_step(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice", USD="100")
            await env.withdraw_key(t)
            r = await env.http.post(
                "/v1/withdrawals",
                json={"asset": "USD", "amount": "40", "key": "bank"},
                headers=t.headers("w1"),
            )
            refid = r.json()["id"]
            assert r.status_code == 201 and r.json()["status"] == "held"
            balance = await env.client.private(t.kraken, "BalanceEx")
            assert balance["result"]["ZUSD"] == {"balance": "100.0000", "hold_trade": "40.0000"}
            sent = await env.client.admin("POST", f"/admin/payments/withdrawals/{refid}/sent", {})
            assert sent["status"] == "sent"
            cancel = await env.http.post(f"/v1/withdrawals/{refid}/cancel", headers=t.headers())
            assert cancel.status_code == 409  # sent is past cancel
            done = await env.client.admin("POST", f"/admin/payments/withdrawals/{refid}/completed", {})
            assert done["status"] == "completed"
            back = await env.http.post("/v1/withdrawals", json={}, headers=t.headers())  # no key, no effect
            assert back.status_code == 400
            again = await env.http.get(f"/v1/withdrawals/{refid}", headers=t.headers())
            steps = [(s["from"], s["to"]) for s in again.json()["transitions"]]
            assert steps == [
                ("", "requested"),
                ("requested", "held"),
                ("held", "sent"),
                ("sent", "completed"),
            ]
            balance = await env.client.private(t.kraken, "BalanceEx")
            assert balance["result"]["ZUSD"] == {"balance": "60.0000", "hold_trade": "0.0000"}
            ledger = await env.client.private(t.kraken, "Ledgers", type="withdrawal")
            (entry,) = ledger["result"]["ledger"].values()
            assert entry["amount"] == "-40.0000" and entry["refid"] == refid

    run(scenario)


def test_cancel_releases_the_hold_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice", USD="100")
            await env.withdraw_key(t)
            r = await env.http.post(
                "/v1/withdrawals",
                json={"asset": "USD", "amount": "100", "key": "bank"},
                headers=t.headers("w1"),
            )
            refid = r.json()["id"]
            order = await env.client.private(
                t.kraken,
                "AddOrder",
                pair="XBTUSD",
                type="buy",
                ordertype="limit",
                price="10000",
                volume="0.001",
            )
            assert order["error"] == ["EOrder:Insufficient funds"]  # one balance: the hold counts
            first = await env.http.post(f"/v1/withdrawals/{refid}/cancel", headers=t.headers())
            assert first.status_code == 200 and first.json()["status"] == "canceled"
            second = await env.http.post(f"/v1/withdrawals/{refid}/cancel", headers=t.headers())
            assert second.status_code == 409
            balance = await env.client.private(t.kraken, "BalanceEx")
            assert balance["result"]["ZUSD"] == {"balance": "100.0000", "hold_trade": "0.0000"}

    run(scenario)


def test_clear_refusals(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice", USD="10")
            await env.withdraw_key(t)
            cases = [
                ({"asset": "USD", "amount": "11", "key": "bank"}, "insufficient_funds"),
                ({"asset": "USD", "amount": "1", "key": "nope"}, "unknown_withdraw_key"),
                ({"asset": "USD", "amount": "1", "key": "bank", "address": "elsewhere"}, "invalid_address"),
            ]
            for i, (body, code) in enumerate(cases):
                r = await env.http.post("/v1/withdrawals", json=body, headers=t.headers(f"r{i}"))
                assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text

    run(scenario)


async def _limits(env, tier_limit: str = "100") -> None:  # type: ignore[no-untyped-def]
    await env.client.admin(
        "POST", "/admin/payments/settings", {"zone": "America/New_York", "cutoff": "17:00"}
    )
    await env.client.admin(
        "POST",
        "/admin/payments/calendar",
        {"calendar": "default", "seed_weekends": {"from": "2026-01-01", "to": "2026-12-31"}},
    )
    await env.client.admin(
        "POST", "/admin/payments/limits", {"tier": "default", "asset": "USD", "daily_limit": tier_limit}
    )


def test_the_daily_limit_resets_exactly_at_the_cutoff_across_dst(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice", USD="1000")
            await env.withdraw_key(t)
            await _limits(env)
            # Friday 2026-03-06 16:59:59 EST; DST begins Sunday; the next cutoff is Monday 17:00 EDT
            friday = to_ns(datetime(2026, 3, 6, 16, 59, 59, tzinfo=NY))
            monday_cutoff = to_ns(datetime(2026, 3, 9, 17, 0, tzinfo=NY))
            clock = Clock(friday)
            svc = env.service(clock)
            usd = env.exchange.instruments.asset("USD")
            assert usd is not None

            held: list[str] = []

            async def withdraw(key: str, amount: str) -> tuple[int, str]:
                a = await svc.request_withdrawal(
                    t.account,
                    "api",
                    key,
                    usd.index,
                    usd.to_minor(__import__("decimal").Decimal(amount)),
                    "bank",
                )
                body = msgspec.json.decode(a.body)
                if a.status == 201:
                    held.append(body["id"])
                return a.status, body.get("status") or body["error"]["code"]

            assert await withdraw("a", "80") == (201, "held")
            assert await withdraw("b", "30") == (422, "daily_limit_exceeded")  # 110 > 100 today
            clock.now_ns = friday + 2 * 10**9  # 17:00:01 Friday: after the cutoff, Monday's window
            assert await withdraw("c", "90") == (201, "held")
            clock.now_ns = monday_cutoff - 10**6  # still Monday's window (spanning the DST change)
            assert await withdraw("d", "20") == (422, "daily_limit_exceeded")
            clock.now_ns = monday_cutoff  # exactly the cutoff: a new window
            assert await withdraw("e", "100") == (201, "held")
            limit_text = "the daily withdrawal limit for this business day would be exceeded"
            clock.now_ns = monday_cutoff + 1
            a = await svc.request_withdrawal(t.account, "api", "f", usd.index, 1, "bank")
            assert msgspec.json.decode(a.body)["error"]["message"] == limit_text
            assert len(held) == 3
            for refid in held:  # release the holds so the audit and balances stay simple
                await env.client.admin("POST", f"/admin/payments/withdrawals/{refid}/failed", {})

    run(scenario)


def test_a_missing_calendar_day_refuses_without_storing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice", USD="1000")
            await env.withdraw_key(t)
            await _limits(env)
            today = datetime.now(NY).date().isoformat()
            if today.startswith("2026"):
                await env.client.admin(
                    "POST", "/admin/payments/calendar", {"calendar": "default", "delete": today}
                )
            body = {"asset": "USD", "amount": "1", "key": "bank"}
            r = await env.http.post("/v1/withdrawals", json=body, headers=t.headers("cal"))
            assert r.status_code == 503 and r.json()["error"]["code"] == "calendar_missing"
            year = int(today[:4])
            await env.client.admin(
                "POST",
                "/admin/payments/calendar",
                {
                    "calendar": "default",
                    "seed_weekends": {"from": f"{year - 1}-01-01", "to": f"{year + 1}-12-31"},
                },
            )
            r = await env.http.post("/v1/withdrawals", json=body, headers=t.headers("cal"))
            assert r.status_code == 201 and "idempotency-replayed" not in r.headers
            await env.client.admin("POST", f"/admin/payments/withdrawals/{r.json()['id']}/failed", {})

    run(scenario)
