"""The idempotency key reaper (ledger-notes 6.2 I5): a key younger than the retention replays, an
older finished key is forgotten and the same key starts a new payment; a key whose request is in
flight is never reaped; rounds are bounded batches run on the blocking pool, off the event loop.

The scenarios take an ``Env`` so tests/postgres/test_payments_reaper_postgres.py runs them on
PostgreSQL unchanged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
from tests.payments.paykit import Clock, Env, exchange_env, run

from abyssal.runtime import faults
from abyssal.runtime.idempotency_reaper import KeyReaper

HOUR_NS = 3_600 * 10**9


def _count(env: Env, sql: str, *args: object) -> int:
    return int(env.exchange.store.conn().execute(sql, args).fetchone()[0])


async def _deposit(env: Env, svc: Any, account: int, key: str, amount_minor: int) -> Any:
    usd = env.exchange.instruments.asset("USD")
    assert usd is not None
    return await svc.capture_deposit(account, "api", key, usd.index, amount_minor)


async def reused_after_retention(env: Env) -> None:
    t = await env.tenant("alice")
    clock = Clock(time.time_ns())
    svc = env.service(clock)
    ex = env.exchange
    reaper = KeyReaper(ex.payment_store, ex.payment_io, retention_s=3_600, clock_ns=clock)
    first = await _deposit(env, svc, t.account, "k1", 10_000)
    assert first.status == 201 and not first.replayed
    refid = msgspec.json.decode(first.body)["id"]

    clock.now_ns += HOUR_NS - 10**9  # 59:59 later: still kept, still replays byte for byte
    assert await reaper.reap_once() == 0
    again = await _deposit(env, svc, t.account, "k1", 10_000)
    assert again.replayed and again.body == first.body
    mismatch = await _deposit(env, svc, t.account, "k1", 20_000)
    assert mismatch.status == 422 and b"idempotency_key_mismatch" in mismatch.body

    clock.now_ns += 2 * 10**9  # past the retention: forgotten
    assert await reaper.reap_once() == 1
    sql = "SELECT COUNT(*) FROM idempotency_keys WHERE tenant = ? AND key = ?"
    assert _count(env, sql, t.account, "k1") == 0
    fresh = await _deposit(env, svc, t.account, "k1", 20_000)  # other parameters: not a mismatch now
    assert fresh.status == 201 and not fresh.replayed
    assert msgspec.json.decode(fresh.body)["id"] != refid, "a reused key must name a new payment"
    assert msgspec.json.decode(fresh.body)["status"] == "captured"
    deposits = "SELECT COUNT(*) FROM ledger WHERE account = ? AND type = 'deposit'"
    assert _count(env, deposits, t.account) == 2
    total = "SELECT SUM(amount) FROM ledger WHERE account = ? AND type = 'deposit'"
    assert _count(env, total, t.account) == 30_000
    replay = await _deposit(env, svc, t.account, "k1", 20_000)  # the new key replays its own answer
    assert replay.replayed and replay.body == fresh.body


async def in_flight_is_never_reaped(env: Env) -> None:
    t = await env.tenant("bob")
    clock = Clock(time.time_ns())
    svc = env.service(clock)
    ex = env.exchange
    reaper = KeyReaper(ex.payment_store, ex.payment_io, retention_s=1, clock_ns=clock)
    faults.arm("payments.before_engine", "sleep_ms=1500")
    try:
        slow = asyncio.create_task(_deposit(env, svc, t.account, "slow", 500))
        in_flight = "SELECT COUNT(*) FROM idempotency_keys WHERE tenant = ? AND state = 'in_flight'"
        for _ in range(500):  # until it is claimed and opened, waiting before the engine
            if _count(env, in_flight, t.account) == 1:
                break
            await asyncio.sleep(0.002)
        assert _count(env, in_flight, t.account) == 1 and not slow.done()
        clock.now_ns += 2 * HOUR_NS  # far past the retention while it is still running
        assert await reaper.reap_once() == 0
        assert _count(env, in_flight, t.account) == 1
        answer = await slow
    finally:
        faults.disarm("payments.before_engine")
    assert answer.status == 201 and not answer.replayed
    retry = await _deposit(env, svc, t.account, "slow", 500)  # its answer was stored, not lost
    assert retry.replayed and retry.body == answer.body
    assert _count(env, "SELECT COUNT(*) FROM ledger WHERE account = ? AND type = 'deposit'", t.account) == 1


async def bounded_batches_off_the_loop(env: Env) -> None:
    assert env.exchange.payments is not None
    await env.exchange.payments.reaper.stop()  # the service's own reaper would race this one for the keys
    store = env.exchange.payment_store
    io = env.exchange.payment_io
    for i in range(25):
        claim = await io(store.claim, 999, "test", f"old-{i}", "fp", "me", 1_000 + i, 10**12)
        await io(store.finish_key, claim.key_id, 201, b"{}", 2_000 + i)
    await io(store.claim, 999, "test", "stuck", "fp", "me", 1, 10**12)  # left in flight (a crash)
    await io(store.claim, 999, "test", "young", "fp", "me", 10**12, 10**12)
    loop_thread = threading.get_ident()
    threads: list[int] = []

    async def blocking(fn: Any, *args: Any) -> Any:
        def call() -> Any:
            threads.append(threading.get_ident())
            return fn(*args)

        return await io(call)

    reaper = KeyReaper(
        store, blocking, retention_s=1, batch_rows_max=10, batches_per_round_max=2, clock_ns=lambda: 10**10
    )
    assert await reaper.reap_once() == 20  # two batches of ten, then the round stops
    assert len(threads) == 2 and loop_thread not in threads
    assert await reaper.reap_once() == 5
    assert await reaper.reap_once() == 0
    left = env.exchange.store.conn().execute(
        "SELECT key, state FROM idempotency_keys WHERE tenant = 999 ORDER BY key"
    )
    assert [tuple(r) for r in left] == [("stuck", "in_flight"), ("young", "in_flight")]


def test_a_key_past_the_retention_is_forgotten_and_starts_a_new_payment(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            await reused_after_retention(env)

    run(scenario)


def test_a_key_whose_request_is_in_flight_is_never_reaped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            await in_flight_is_never_reaped(env)

    run(scenario)


def test_reaping_runs_in_bounded_batches_on_the_blocking_pool(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            await bounded_batches_off_the_loop(env)

    run(scenario)


def test_the_service_starts_and_stops_its_reaper(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            svc = env.exchange.payments
            assert svc is not None and svc.reaper.retention_s == 24 * 3_600  # Stripe's published default
            assert svc.reaper._task is not None and not svc.reaper._task.done()

    run(scenario)
