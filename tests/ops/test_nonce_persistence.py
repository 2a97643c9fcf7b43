"""Nonces of read-only calls survive a restart, even when a write of them failed once."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from tests.ops.inprocess import Client, running

from abyssal.gateway.auth import sign


async def _balance(client: Client, key: dict[str, Any], nonce: int) -> Any:
    body = urllib.parse.urlencode({"nonce": str(nonce)}).encode()
    headers = {
        "API-Key": key["api_key"],
        "API-Sign": sign(key["api_secret"], "/0/private/Balance", str(nonce), body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    r = await client.http.post("/0/private/Balance", content=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_failed_nonce_write_is_retried_so_a_replay_after_restart_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, exchange, client):
            key = await client.account("alice", ZUSD="100")
            nonce = client.nonce + 1_000
            assert (await _balance(client, key, nonce))["error"] == []
            real = exchange.store.bump_nonces

            def fail_once(changed: list[tuple[int, int]]) -> None:
                monkeypatch.setattr(exchange.store, "bump_nonces", real)
                raise OSError("disk full")

            monkeypatch.setattr(exchange.store, "bump_nonces", fail_once)
            with pytest.raises(OSError):
                await exchange._flush_nonces()
            await exchange._flush_nonces()  # the retry writes what the failed write did not
        async with running(tmp_path) as (_, _, client):
            client.nonce = nonce
            assert (await _balance(client, key, nonce))["error"] == ["EAPI:Invalid nonce"]
            assert (await _balance(client, key, nonce + 1))["error"] == []

    asyncio.run(scenario())
