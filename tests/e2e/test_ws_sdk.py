"""python-kraken-sdk 3.5.1 on WebSocket v2: checksum-validated books while trades happen, private feeds.

URLs are set as doc §7.3 says: ``SpotClient.URL`` for REST (the order book client fetches
``AssetPairs?pair=BTC/USD`` with an internal ``Market()``), ``WS_URL``/``AUTH_WS_URL`` without
``/v2`` (the SDK appends it). The SDK offers permessage-deflate, so these connections take the
server's ASGI send path (ccxt's take the direct one).
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from kraken.base_api import SpotClient
from kraken.spot import SpotOrderBookClient, SpotWSClient
from tests.e2e.test_ws_kit import Rest
from tests.harness import Server

pytestmark = pytest.mark.slow

MID = 30000
ORDERS = 400


def close_sessions(client: SpotWSClient) -> None:
    """The SDK never closes its requests sessions; an open socket is a ResourceWarning (an error here)."""
    market = getattr(client, "_SpotOrderBookClient__market", None)
    if market is not None:
        market._SpotClient__session.close()
    client._SpotClient__session.close()  # type: ignore[attr-defined]


class Book(SpotOrderBookClient):
    def __init__(self, depth: int) -> None:
        super().__init__(depth=depth)
        self.updates = 0
        self.errors: list[Any] = []

    async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
        if "error" in message:
            self.errors.append(message)
        elif message.get("type") == "update":
            self.updates += 1


async def _trade(maker: Rest, taker: Rest, seed: int) -> None:
    """Many small limit orders around the mid, cancels, and crossing market orders."""
    rng = random.Random(seed)
    open_ids: list[str] = []
    for i in range(ORDERS):
        roll = rng.random()
        if roll < 0.15 and open_ids:
            await maker.private_raw(
                "CancelOrder", txid=open_ids.pop(rng.randrange(len(open_ids)))
            )  # may be filled
        elif roll < 0.3:
            await taker.private(
                "AddOrder",
                pair="XBTUSD",
                type=rng.choice(["buy", "sell"]),
                ordertype="market",
                volume=str(Decimal(rng.randint(1, 30)) / 1000),
            )
        else:
            side = rng.choice(["buy", "sell"])
            offset = rng.randint(1, 40) * (-1 if side == "buy" else 1)
            price = f"{MID + offset / 2:.1f}"
            volume = str(Decimal(rng.randint(1, 50)) / 1000)
            open_ids.append(await maker.limit(side, volume, price))
        if i % 50 == 0:
            await asyncio.sleep(0.05)


async def _rest_depth(url: str, count: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    async with httpx.AsyncClient(base_url=url) as http:
        book = (await http.get("/0/public/Depth", params={"pair": "XBTUSD", "count": count})).json()
    (levels,) = book["result"].values()
    return [(a[0], a[1]) for a in levels["asks"]], [(b[0], b[1]) for b in levels["bids"]]


def test_order_books_stay_in_checksum_while_trading(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    base = server.url.replace("http://", "ws://")
    monkeypatch.setattr(SpotClient, "URL", server.url)
    monkeypatch.setattr(SpotWSClient, "WS_URL", base)
    monkeypatch.setattr(SpotWSClient, "AUTH_WS_URL", base)

    async def scenario() -> None:
        maker = Rest(server.url, server.account("maker", USD="1000000", XBT="100"))
        taker = Rest(server.url, server.account("taker", USD="1000000", XBT="100"))
        for side, price in (("buy", "29990.0"), ("sell", "30010.0")):  # a book to subscribe to
            for i in range(12):
                await maker.limit(side, "0.01", str(Decimal(price) + (-i if side == "buy" else i)))
        books = [Book(10), Book(25)]
        for book in books:
            await book.start()
            await book.add_book(pairs=["BTC/USD"])
        await asyncio.sleep(1.0)
        await _trade(maker, taker, seed=7)
        await asyncio.sleep(1.5)  # let the last rounds arrive
        for book in books:
            assert book.errors == [], f"depth {book.depth}: {book.errors[:3]}"
            assert book.updates > 50, f"depth {book.depth}: only {book.updates} updates"
            asks, bids = await _rest_depth(server.url, book.depth)
            mine = book.get("BTC/USD")
            assert mine is not None
            assert [(p, v) for p, (v, _) in mine["ask"].items()] == asks
            assert [(p, v) for p, (v, _) in mine["bid"].items()] == bids
            await book.close()
            close_sessions(book)
        await maker.close()
        await taker.close()

    asyncio.run(scenario())


def test_private_feeds_and_an_order_through_the_sdk(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    base = server.url.replace("http://", "ws://")
    monkeypatch.setattr(SpotClient, "URL", server.url)

    async def scenario() -> None:
        key = server.account("sdk", USD="10000", XBT="1")
        messages: list[dict[str, Any]] = []

        async def on_message(message: dict[str, Any]) -> None:
            messages.append(message)

        async def first(match: Any, timeout: float = 10.0) -> dict[str, Any]:
            for _ in range(int(timeout / 0.05)):
                for m in messages:
                    if match(m):
                        return m
                await asyncio.sleep(0.05)
            raise AssertionError(f"no matching message in {messages[-5:]}")

        client = SpotWSClient(
            key["api_key"], key["api_secret"], callback=on_message, ws_url=base, auth_ws_url=base
        )
        await client.start()
        await client.subscribe(params={"channel": "executions", "snap_orders": True})
        await client.subscribe(params={"channel": "balances"})
        await client.subscribe(params={"channel": "ticker", "symbol": ["BTC/USD"]})
        await first(lambda m: m.get("channel") == "balances" and m.get("type") == "snapshot")
        await client.send_message(
            {
                "method": "add_order",
                "req_id": 5,
                "params": {
                    "order_type": "limit",
                    "side": "buy",
                    "order_qty": 0.01,
                    "symbol": "BTC/USD",
                    "limit_price": 25000.5,
                    "order_userref": 12,
                },
            }
        )
        reply = await first(lambda m: m.get("method") == "add_order")
        assert reply["success"] and reply["result"]["order_userref"] == 12
        order_id = reply["result"]["order_id"]
        new = await first(
            lambda m: (
                m.get("channel") == "executions" and m["data"] and m["data"][0]["exec_type"] == "pending_new"
            )
        )
        assert new["data"][0]["order_id"] == order_id and new["data"][0]["limit_price"] == 25000.5
        await client.send_message({"method": "cancel_order", "params": {"order_id": [order_id]}})
        done = await first(
            lambda m: (
                m.get("channel") == "executions" and any(e["exec_type"] == "canceled" for e in m["data"])
            )
        )
        assert done["data"][0]["order_id"] == order_id
        assert client.active_private_subscriptions and client.active_public_subscriptions
        assert not client.exception_occur
        await client.close()
        close_sessions(client)

    asyncio.run(scenario())
