"""Account queries' filters and permissions: QueryOrders by the order's status, TradesHistory's
position types and totals, Ledgers' type and asset class."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.ops.inprocess import Client, running

INVALID_ORDER = ["EOrder:Invalid order"]


async def _ok(client: Client, key: dict[str, Any], method: str, **params: str) -> Any:
    answer = await client.private(key, method, **params)
    assert answer["error"] == [], (method, params, answer)
    return answer["result"]


async def _two_accounts_that_traded(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    seller = await client.account("seller", XXBT="1")
    buyer = await client.account("buyer", ZUSD="100000")
    order = {"pair": "XBTUSD", "ordertype": "limit", "price": "30000.0"}
    for _ in range(3):
        await _ok(client, seller, "AddOrder", type="sell", volume="0.01", **order)
        await _ok(client, buyer, "AddOrder", type="buy", volume="0.01", **order)
    return seller, buyer


def test_query_orders_shows_only_the_statuses_the_key_may_query(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, _, client):
            order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"}
            for query, sees_live in (("query_open", True), ("query_closed", False)):
                permissions = ["create_orders", "cancel_orders", query]
                key = await client.admin(
                    "POST", "/admin/accounts", {"name": query, "permissions": permissions}
                )
                deposit = {"account": query, "asset": "ZUSD", "amount": "100"}
                await client.admin("POST", "/admin/deposits", deposit)
                (live,) = (await _ok(client, key, "AddOrder", price="1000.0", **order))["txid"]
                (gone,) = (await _ok(client, key, "AddOrder", price="1001.0", **order))["txid"]
                await _ok(client, key, "CancelOrder", txid=gone)
                seen, hidden = (live, gone) if sees_live else (gone, live)
                assert set(await _ok(client, key, "QueryOrders", txid=f"{live},{gone}")) == {seen}
                assert (await client.private(key, "QueryOrders", txid=hidden))["error"] == INVALID_ORDER
                assert (await client.private(key, "OrderAmends", order_id=hidden))["error"] == INVALID_ORDER
                assert (await _ok(client, key, "OrderAmends", order_id=seen))["count"] == 1

    asyncio.run(scenario())


def test_trades_history_position_types_and_its_total_past_the_last_page(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, _, client):
            seller, _ = await _two_accounts_that_traded(client)
            for kind in ("all", "no position"):
                result = await _ok(client, seller, "TradesHistory", type=kind)
                assert (len(result["trades"]), result["count"]) == (3, 3)
            for kind in ("any position", "closed position", "closing position"):  # spot: no positions
                assert await _ok(client, seller, "TradesHistory", type=kind) == {"trades": {}, "count": 0}
            assert await _ok(client, seller, "TradesHistory", ofs="1000") == {"trades": {}, "count": 3}

    asyncio.run(scenario())


def test_ledgers_refuse_an_unknown_type_and_class_and_select_by_class(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, _, client):
            seller, _ = await _two_accounts_that_traded(client)
            every = await _ok(client, seller, "Ledgers")
            assert every["count"] == len(every["ledger"]) > 0
            assert await _ok(client, seller, "Ledgers", aclass="currency") == every
            assert await _ok(client, seller, "Ledgers", aclass="tokenized_asset") == {
                "ledger": {},
                "count": 0,
            }
            assert (await _ok(client, seller, "Ledgers", type="deposit"))["count"] == 1
            for name, value in (("type", "bogus"), ("aclass", "bogus")):
                answer = await client.private(seller, "Ledgers", **{name: value})
                assert answer["error"] == [f"EGeneral:Invalid arguments:{name}"]

    asyncio.run(scenario())
