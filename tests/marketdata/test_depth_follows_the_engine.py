"""Public Depth shows orders that enter the book without a pair in their event: a stop-limit order
triggered by a later trade, and an order whose start time arrives."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.ops.inprocess import Client, running

START_WAIT_S = 10.0


async def _depth(client: Client, pair: str = "XETHZEUR") -> dict[str, Any]:
    r = await client.http.get("/0/public/Depth", params={"pair": pair})
    answer: dict[str, Any] = r.json()
    assert answer["error"] == [], answer
    return next(iter(answer["result"].values()))


async def _place(client: Client, key: dict[str, Any], **order: str) -> str:
    answer = await client.private(key, "AddOrder", **order)
    assert answer["error"] == [], answer
    return str(answer["result"]["txid"][0])


def test_a_stop_limit_triggered_by_a_later_trade_appears_in_depth(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, _, client):
            seller = await client.account("seller", XETH="10")
            buyer = await client.account("buyer", ZEUR="100000")
            pair = {"pair": "ETHEUR"}
            await _place(client, seller, **pair, type="sell", ordertype="stop-loss-limit", volume="0.3",
                         price="1950", price2="1990")  # fmt: skip
            assert (await _depth(client))["asks"] == []  # not triggered: not in the book
            await _place(client, seller, **pair, type="sell", ordertype="limit", volume="0.1", price="1950")
            await _place(client, buyer, **pair, type="buy", ordertype="limit", volume="0.1", price="1950")
            book = await _depth(client)  # the trade at 1950 triggered the stop: it rests at 1990
            assert [a[:2] for a in book["asks"]] == [["1990.00", "0.30000000"]]
            ticker = (await client.http.get("/0/public/Ticker", params=pair)).json()["result"]
            assert next(iter(ticker.values()))["a"][0] == "1990.00"

    asyncio.run(scenario())


def test_an_order_whose_start_time_arrives_appears_in_depth(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as (_, _, client):
            seller = await client.account("seller", XETH="10")
            await _place(client, seller, pair="ETHEUR", type="sell", ordertype="limit", volume="0.2",
                         price="2100", starttm="+1")  # fmt: skip
            assert (await _depth(client))["asks"] == []  # not started yet
            deadline = time.monotonic() + START_WAIT_S
            asks: list[Any] = []
            while not asks and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                asks = (await _depth(client))["asks"]
            assert [a[:2] for a in asks] == [["2100.00", "0.20000000"]]

    asyncio.run(scenario())
