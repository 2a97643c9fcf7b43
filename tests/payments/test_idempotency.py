"""The idempotency contract of /v1 (ledger-notes 6.2 I1-I4, I7): first write wins, retries replay
byte for byte, other parameters are refused, twins in flight wait or get 409, failures replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from tests.payments.paykit import exchange_env, run

from abyssal.runtime import faults


def _ledger_deposits(env, refid: str) -> int:  # type: ignore[no-untyped-def]
    c = env.exchange.store.conn()
    return int(
        c.execute("SELECT COUNT(*) FROM ledger WHERE refid = ? AND account >= 0", (refid,)).fetchone()[0]
    )


def test_a_retry_replays_the_stored_answer_byte_for_byte(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            first = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "10.5"}, headers=t.headers("dep-1")
            )
            assert first.status_code == 201 and "idempotency-replayed" not in first.headers
            assert first.json()["status"] == "captured"
            # the same request after canonicalisation: other decimals, other key order, other asset name
            for body in ({"amount": "10.50", "asset": "ZUSD"}, {"asset": "USD", "amount": "10.5000"}):
                again = await env.http.post("/v1/deposits", json=body, headers=t.headers("dep-1"))
                assert again.status_code == 201 and again.headers["idempotency-replayed"] == "true"
                assert again.content == first.content
            assert _ledger_deposits(env, first.json()["id"]) == 1

    run(scenario)


def test_the_same_key_with_other_parameters_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            first = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("k")
            )
            for body in (
                {"asset": "USD", "amount": "2"},
                {"asset": "XBT", "amount": "1"},
                {"asset": "USD", "amount": "1", "reference": "other"},
            ):
                r = await env.http.post("/v1/deposits", json=body, headers=t.headers("k"))
                assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_mismatch"
            assert _ledger_deposits(env, first.json()["id"]) == 1
            # the same key under another tenant is another request
            other = await env.tenant("bob")
            r = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "2"}, headers=other.headers("k")
            )
            assert r.status_code == 201 and r.json()["id"] != first.json()["id"]

    run(scenario)


def test_concurrent_twins_make_one_effect_and_identical_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            answers = await asyncio.gather(
                *[
                    env.http.post(
                        "/v1/deposits", json={"asset": "USD", "amount": "3"}, headers=t.headers("twin")
                    )
                    for _ in range(50)
                ]
            )
            assert {r.status_code for r in answers} == {201}
            assert len({r.content for r in answers}) == 1
            assert sum("idempotency-replayed" not in r.headers for r in answers) == 1
            assert _ledger_deposits(env, answers[0].json()["id"]) == 1

    run(scenario)


def test_a_twin_still_in_flight_after_the_wait_gets_409(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            assert env.exchange.payments is not None
            env.exchange.payments.in_flight_wait_s = 0.05
            faults.arm("payments.before_engine", "sleep_ms=400")
            try:
                slow = asyncio.create_task(
                    env.http.post(
                        "/v1/deposits", json={"asset": "USD", "amount": "3"}, headers=t.headers("slow")
                    )
                )
                await asyncio.sleep(0.1)
                twin = await env.http.post(
                    "/v1/deposits", json={"asset": "USD", "amount": "3"}, headers=t.headers("slow")
                )
                assert twin.status_code == 409 and twin.json()["error"]["code"] == "idempotency_key_in_use"
                assert (await slow).status_code == 201
            finally:
                faults.disarm("payments.before_engine")
            again = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "3"}, headers=t.headers("slow")
            )
            assert again.headers["idempotency-replayed"] == "true"

    run(scenario)


def test_failures_replay_as_failures_even_after_funds_arrive(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            await env.withdraw_key(t)
            body = {"asset": "USD", "amount": "50", "key": "bank"}
            first = await env.http.post("/v1/withdrawals", json=body, headers=t.headers("w"))
            assert first.status_code == 422 and first.json()["error"]["code"] == "insufficient_funds"
            assert first.json()["payment"]["status"] == "failed"
            await env.client.admin(
                "POST", "/admin/deposits", {"account": "alice", "asset": "USD", "amount": "100"}
            )
            again = await env.http.post("/v1/withdrawals", json=body, headers=t.headers("w"))
            assert again.content == first.content and again.headers["idempotency-replayed"] == "true"
            fresh = await env.http.post("/v1/withdrawals", json=body, headers=t.headers("w2"))
            assert fresh.status_code == 201 and fresh.json()["status"] == "held"

    run(scenario)


def test_requests_refused_before_execution_are_not_stored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            cases = [
                ({"asset": "USD", "amount": 5}, t.headers("v"), 400, "invalid_amount"),  # a JSON number
                ({"asset": "USD", "amount": 5.5}, t.headers("v"), 400, "invalid_amount"),
                ({"asset": "USD", "amount": "1.00001"}, t.headers("v"), 400, "invalid_amount"),  # USD has 4
                ({"asset": "USD", "amount": "-1"}, t.headers("v"), 400, "invalid_amount"),
                # 2**63 minor units (USD has 4 decimals): beyond the 64-bit columns, and beyond
                # the 28 digits a default Decimal context keeps
                ({"asset": "USD", "amount": "922337203685477.5808"}, t.headers("v"), 400, "invalid_amount"),
                ({"asset": "USD", "amount": "1" * 31 + ".0001"}, t.headers("v"), 400, "invalid_amount"),
                ({"asset": "NOPE", "amount": "1"}, t.headers("v"), 400, "unknown_asset"),
                ({"asset": "USD", "amount": "1"}, t.headers(), 400, "idempotency_key_required"),
                ({"asset": "USD", "amount": "1"}, {"Idempotency-Key": "v"}, 401, "unauthorized"),
                (
                    {"asset": "USD", "amount": "1"},
                    {**t.headers("v"), "Authorization": "Bearer nope"},
                    401,
                    "unauthorized",
                ),
            ]
            for body, headers, status, code in cases:
                r = await env.http.post("/v1/deposits", json=body, headers=headers)
                assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
            ok = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("v")
            )
            assert ok.status_code == 201 and "idempotency-replayed" not in ok.headers

    run(scenario)


def test_a_client_that_goes_away_mid_request_converges_on_retry(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            faults.arm("payments.before_engine", "sleep_ms=200")
            try:
                gone = asyncio.create_task(
                    env.http.post(
                        "/v1/deposits", json={"asset": "USD", "amount": "7"}, headers=t.headers("gone")
                    )
                )
                await asyncio.sleep(0.05)
                gone.cancel()  # the client disconnects while the engine step is pending
                await asyncio.gather(gone, return_exceptions=True)
            finally:
                faults.disarm("payments.before_engine")
            retry = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "7"}, headers=t.headers("gone")
            )
            assert retry.status_code == 201
            assert _ledger_deposits(env, retry.json()["id"]) == 1

    run(scenario)


def test_a_fault_before_commit_leaves_no_event_and_the_retry_resumes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            assert env.exchange.payments is not None
            faults.arm("payments.before_transition_commit", "raise")
            try:
                usd = env.exchange.instruments.asset("USD")
                assert usd is not None
                r = await env.exchange.payments.capture_deposit(t.account, "api", "crash", usd.index, 10_000)
            except faults.FaultInjected:
                pass
            else:
                raise AssertionError(f"the fault did not fire: {r}")
            finally:
                faults.disarm("payments.before_transition_commit")
            c = env.exchange.store.conn()
            (status,) = c.execute("SELECT status FROM payments WHERE account = ?", (t.account,)).fetchone()
            assert status == "pending"  # the capture transition rolled back: D1
            types = [r[0] for r in c.execute("SELECT event_type FROM outbox WHERE topic = 'payments'")]
            assert types == ["payment.deposit.pending"]
            retry = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=t.headers("crash")
            )
            assert retry.status_code == 201 and retry.json()["status"] == "captured"
            assert _ledger_deposits(env, retry.json()["id"]) == 1  # resumed, not re-applied

    run(scenario)


def test_the_faucet_refuses_amounts_beyond_64_bits_with_a_clear_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            await env.tenant("alice")
            bob = await env.tenant("bob")
            admin = {"Authorization": f"Bearer {env.client.admin_token}"}

            async def faucet(amount: str) -> httpx.Response:
                body = {"account": "alice", "asset": "USD", "amount": amount}
                return await env.client.http.post("/admin/deposits", json=body, headers=admin)

            for amount in ("922337203685477.5808", "1" * 31 + ".12345678"):  # USD: 4 decimals
                r = await faucet(amount)
                assert r.status_code == 422 and "below 2**63 minor units" in r.json()["error"], r.text
            # the exchange's whole USD must fit 64 bits too: 1 USD short of it is taken...
            assert (await faucet("922337203685476.5807")).status_code == 200
            assert (await faucet("1.0001")).status_code == 422  # ...then 1.0001 USD more is not
            fits = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=bob.headers("k")
            )
            assert fits.status_code == 201, fits.text  # the last dollar, and the exchange goes on
            full = await env.http.post(
                "/v1/deposits", json={"asset": "USD", "amount": "1"}, headers=bob.headers("l")
            )
            assert full.status_code == 422 and full.json()["error"]["code"] == "invalid_amount", full.text

    run(scenario)
