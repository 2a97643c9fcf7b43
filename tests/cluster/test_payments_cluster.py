"""Payments scaled out: the database is the idempotency gate whichever gateway a retry reaches."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from tests.cluster.harness import Cluster
from tests.e2e.test_ws_kit import Rest

pytestmark = pytest.mark.slow


def test_one_key_through_both_gateways_makes_one_effect(cluster: Cluster) -> None:
    cluster.start(engines=1)
    g0, g1 = cluster.gateways
    key = g0.account("alice")
    token = g0.admin("POST", "/admin/payments/tokens", {"account": "alice"})["token"]  # made on gateway 0

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await asyncio.gather(*[
                http.post(f"{(g0, g1)[i % 2].url}/v1/deposits", json={"asset": "USD", "amount": "12.5"},
                          headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "twice-1"})
                for i in range(40)
            ])  # fmt: skip

    answers = asyncio.run(burst())
    # the first wins; a retry that meets it in flight gets 409, every later one the stored answer
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    done = [r for r in answers if r.status_code == 201]
    assert done and len({r.content for r in done}) == 1
    refid = done[0].json()["id"]

    async def ledger() -> Any:
        rest = Rest(g1.url, key)
        try:
            return await rest.private("Ledgers", type="deposit")
        finally:
            await rest.close()

    entries = asyncio.run(ledger())["ledger"]
    assert [e["refid"] for e in entries.values()] == [refid]
    assert g0.status()["audit"] == [] and g1.status()["audit"] == []
