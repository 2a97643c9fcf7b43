"""The idempotency key reaper on PostgreSQL: the SQLite scenarios (tests/payments/test_key_reaper.py)
unchanged, on an in-process exchange whose database is a fresh PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.payments.paykit import exchange_env, run
from tests.payments.test_key_reaper import (
    bounded_batches_off_the_loop,
    in_flight_is_never_reaped,
    reused_after_retention,
)

pytestmark = pytest.mark.slow


def test_a_key_past_the_retention_starts_a_new_payment_on_postgres(tmp_path: Path, pg_url: str) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path, pg_url) as env:
            await reused_after_retention(env)

    run(scenario)


def test_a_key_in_flight_is_never_reaped_on_postgres(tmp_path: Path, pg_url: str) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path, pg_url) as env:
            await in_flight_is_never_reaped(env)

    run(scenario)


def test_reaping_runs_in_bounded_batches_on_postgres(tmp_path: Path, pg_url: str) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path, pg_url) as env:
            await bounded_batches_off_the_loop(env)
            assert not (tmp_path / "data" / "abyssal.db").exists(), "the exchange fell back to SQLite"

    run(scenario)
