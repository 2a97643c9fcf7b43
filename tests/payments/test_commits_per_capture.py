"""Commits per deposit capture (issue 4, item 5): a first request claims its key and opens its
payment in one transaction, the capture stores its answer and outbox row in another, and on
SQLite concurrent requests share those commits (payments_group_commit.py) without giving up
any idempotency guarantee: every answer is durable before it is sent, a failing write rolls
back alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.payments.paykit import Env, exchange_env, run

from abyssal.adapters.store import DbConnection
from abyssal.runtime import faults
from abyssal.runtime.payments_group_commit import GroupCommit


class _Counting:
    """A Store whose transactions are counted (one per COMMIT of the payments adapter)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.commits = 0

    def conn(self) -> DbConnection:
        conn: DbConnection = self.store.conn()
        return conn

    @contextmanager
    def transaction(self) -> Iterator[DbConnection]:
        with self.store.transaction() as c:
            yield c
        self.commits += 1


async def _captures(env: Env, count: int, concurrent: bool) -> tuple[int, list[Any]]:
    """``count`` first requests through a fresh service; returns (payments commits, answers)."""
    ex = env.exchange
    t = await env.tenant(f"t{count}{concurrent}")
    assert ex.relay is not None
    await ex.relay.stop()  # its marks are commits of their own, batched, off the request path
    counting = _Counting(ex.store)
    real = ex.payment_store.store
    ex.payment_store.store = counting  # type: ignore[assignment]
    try:
        svc = env.service(lambda: __import__("time").time_ns())
        assert svc.group is not None
        svc.group.store = counting  # type: ignore[assignment]
        usd = ex.instruments.asset("USD")
        assert usd is not None
        calls = [svc.capture_deposit(t.account, "api", f"k{i}", usd.index, 100) for i in range(count)]
        answers = list(await asyncio.gather(*calls)) if concurrent else [await call for call in calls]
    finally:
        ex.payment_store.store = real
        ex.relay.start()
    assert {a.status for a in answers} == {201}
    assert {msgspec.json.decode(a.body)["status"] for a in answers} == {"captured"}
    return counting.commits, answers


def test_a_capture_makes_two_payments_commits_and_concurrent_ones_share_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            alone, _ = await _captures(env, 10, concurrent=False)
            assert alone == 2 * 10  # claim + open, then capture + answer + outbox (was 3 per capture)
            shared, _ = await _captures(env, 50, concurrent=True)
            assert shared <= 10, f"50 concurrent captures took {shared} commits"
            ledger = env.exchange.store.conn().execute(
                "SELECT COUNT(DISTINCT refid) FROM ledger WHERE type = 'deposit' AND amount = 100"
            )
            assert ledger.fetchone()[0] == 60  # each applied once

    run(scenario)


def test_a_failing_write_in_a_group_rolls_back_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            ex = env.exchange
            group = GroupCommit(ex.store, ex.payment_io)

            def insert(name: str) -> Any:
                def write(c: DbConnection) -> int:
                    c.execute("INSERT INTO business_calendar VALUES ('g', ?, 1, '')", (name,))
                    if name == "2030-01-02":
                        faults.point("test.group")
                    return 1

                return write

            faults.arm("test.group", "raise")
            try:
                results = await asyncio.gather(
                    *[group.run(insert(f"2030-01-0{i}")) for i in range(1, 5)], return_exceptions=True
                )
            finally:
                faults.disarm("test.group")
            assert [isinstance(r, faults.FaultInjected) for r in results] == [False, True, False, False]
            days = ex.store.conn().execute(
                "SELECT day FROM business_calendar WHERE calendar = 'g' ORDER BY day"
            )
            assert [d for (d,) in days] == ["2030-01-01", "2030-01-03", "2030-01-04"]
            assert group.commits < group.writes == 4  # they shared commits

    run(scenario)


@pytest.mark.parametrize("point", ["payments.before_transition_commit"])
def test_a_fault_in_a_grouped_capture_leaves_the_others_captured(tmp_path: Path, point: str) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            t = await env.tenant("alice")
            svc = env.exchange.payments
            assert svc is not None
            usd = env.exchange.instruments.asset("USD")
            assert usd is not None
            first = await svc.capture_deposit(t.account, "api", "warm", usd.index, 1)
            assert first.status == 201
            faults.arm(point, "raise")
            try:
                got = await asyncio.gather(
                    svc.capture_deposit(t.account, "api", "a", usd.index, 1), return_exceptions=True
                )
            finally:
                faults.disarm(point)
            assert isinstance(got[0], faults.FaultInjected)
            retry = await svc.capture_deposit(t.account, "api", "a", usd.index, 1)  # resumes, once
            assert retry.status == 201 and not retry.replayed
            again = await svc.capture_deposit(t.account, "api", "a", usd.index, 1)
            assert again.replayed and again.body == retry.body

    run(scenario)
