"""Relative prices on limit and iceberg orders and in AmendOrder, over REST and WebSocket v2.

One server for the module. XBTUSD trades once at 20000.1 (the last trade every relative price here
is an offset from); ETHUSD never trades, so its relative prices have no last trade to start from.
Each order is placed, read back with QueryOrders (``limitprice``, ``stopprice``) and canceled,
so the cases do not meet in the book. Refusals answer HTTP 200 with Kraken's exact error.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.e2e.test_ws_kit import WsClient
from tests.harness import Server

from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow

LAST = "20000.1"
BAD_PRICE = "EOrder:Invalid price:Invalid price argument"
NO_LAST_PRICE = "EOrder:Invalid price:No last trade price for a relative price"
PRICE_DECIMALS = "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals."


class Client:
    """One API key's signed form requests (strictly increasing nonces)."""

    def __init__(self, http: httpx.Client, key: dict[str, Any]) -> None:
        self.http = http
        self.key = key
        self.nonce = time.time_ns() // 1000

    def raw(self, method: str, **params: str) -> httpx.Response:
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        path = f"/0/private/{method}"
        headers = {
            "API-Key": self.key["api_key"],
            "API-Sign": sign(self.key["api_secret"], path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return self.http.post(path, content=body, headers=headers)

    def ok(self, method: str, **params: str) -> Any:
        reply = self.raw(method, **params)
        assert reply.status_code == 200 and reply.json()["error"] == [], (method, params, reply.text)
        return reply.json()["result"]

    def refused(self, method: str, **params: str) -> list[str]:
        """The error array of a refusal (always HTTP 200, as Kraken answers)."""
        reply = self.raw(method, **params)
        assert reply.status_code == 200, reply.text
        errors: list[str] = reply.json()["error"]
        assert errors, (method, params, reply.text)
        return errors

    def order(self, txid: str) -> Any:
        return self.ok("QueryOrders", txid=txid)[txid]


@dataclass
class Market:
    server: Server
    alice: Client  # places the orders under test
    bob: Client

    def depth(self) -> Any:
        """XBTUSD's public book: ``{"bids": [[price, volume, ts], ...], "asks": [...]}``."""
        params = {"pair": "XBTUSD", "count": "50"}
        reply = httpx.get(f"{self.server.url}/0/public/Depth", params=params, timeout=20)
        (book,) = reply.json()["result"].values()
        return book


@pytest.fixture(scope="module")
def market(shared_server: Server) -> Iterator[Market]:
    alice = shared_server.account("rel-alice", USD="1000000", XBT="10", ETH="100")
    bob = shared_server.account("rel-bob", USD="1000000", XBT="10")
    with httpx.Client(base_url=shared_server.url, timeout=20) as http:
        m = Market(shared_server, Client(http, alice), Client(http, bob))
        trade = {"pair": "XBTUSD", "ordertype": "limit", "volume": "0.001", "price": LAST}
        m.bob.ok("AddOrder", type="sell", **trade)
        m.alice.ok("AddOrder", type="buy", **trade)  # takes: the last trade is 20000.1
        assert m.alice.ok("OpenOrders")["open"] == {} and m.bob.ok("OpenOrders")["open"] == {}
        yield m


def _held(c: Client) -> dict[str, str]:
    return {asset: row["hold_trade"] for asset, row in c.ok("BalanceEx").items()}


@pytest.mark.parametrize(
    ("side", "ordertype", "price", "expected"),
    [
        ("buy", "limit", "-100", "19900.1"),
        ("sell", "limit", "+100", "20100.1"),
        ("buy", "limit", "#100", "19900.1"),  # '#' moves away from the market: below for a buy
        ("sell", "limit", "#100", "20100.1"),  # above for a sell
        ("buy", "limit", "-1%", "19800.0"),  # 19800.099, rounded down for a buy
        ("sell", "limit", "+1%", "20200.2"),  # 20200.101, rounded up for a sell
        ("sell", "limit", "-0.5%", "19900.1"),  # 19900.0995, up
        ("buy", "iceberg", "-50", "19950.1"),
        ("sell", "iceberg", "#2.5%", "20500.2"),  # 20500.1025, up
    ],
)
def test_a_relative_limit_rests_at_its_resolved_price(
    market: Market, side: str, ordertype: str, price: str, expected: str
) -> None:
    extra = {"displayvol": "0.001"} if ordertype == "iceberg" else {}
    volume = "0.015" if ordertype == "iceberg" else "0.001"
    placed = market.alice.ok(
        "AddOrder", pair="XBTUSD", type=side, ordertype=ordertype, volume=volume, price=price, **extra
    )
    (txid,) = placed["txid"]
    try:
        info = market.alice.order(txid)
        assert (info["status"], info["limitprice"]) == ("open", expected)
        book = market.depth()
        assert expected in [level[0] for level in book["bids" if side == "buy" else "asks"]]
    finally:
        assert market.alice.ok("CancelOrder", txid=txid) == {"count": 1}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"price": "-20000.1"}, BAD_PRICE),  # exactly zero
        ({"price": "-30000"}, BAD_PRICE),  # below zero
        ({"price": "-100%"}, BAD_PRICE),  # a percentage is below 100
        ({"type": "sell", "price": "+150%"}, BAD_PRICE),  # ... for either side
        ({"price": "#100%"}, BAD_PRICE),
        ({"price": "5%"}, BAD_PRICE),  # a percentage needs its sign
        ({"price": "-1.1234567%"}, BAD_PRICE),  # a percentage has at most 6 decimals
        ({"price": "-0.05"}, PRICE_DECIMALS),  # an offset has the price's decimals
        ({"ordertype": "iceberg", "displayvol": "0.001", "volume": "0.015", "price": "-20000.1"}, BAD_PRICE),
        ({"pair": "ETHUSD", "volume": "0.01", "price": "-5"}, NO_LAST_PRICE),  # ETHUSD never traded
        ({"pair": "ETHUSD", "volume": "0.01", "type": "sell", "price": "+1%"}, NO_LAST_PRICE),
        (
            {"pair": "ETHUSD", "ordertype": "iceberg", "displayvol": "0.1", "volume": "1", "price": "#1"},
            NO_LAST_PRICE,
        ),
    ],
)
def test_a_relative_limit_that_is_no_price_is_refused(
    market: Market, params: dict[str, str], error: str
) -> None:
    before = _held(market.alice)
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001", **params}
    assert market.alice.refused("AddOrder", **order) == [error]
    assert _held(market.alice) == before and market.alice.ok("OpenOrders")["open"] == {}


def test_amend_takes_relative_prices(market: Market) -> None:
    a = market.alice
    buy = a.ok("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.001", price="19000.0")
    stop = a.ok(
        "AddOrder", pair="XBTUSD", type="sell", ordertype="stop-loss", volume="0.001", price="19000.0"
    )
    eth = a.ok("AddOrder", pair="ETHUSD", type="buy", ordertype="limit", volume="0.01", price="1000.00")
    buy_id, stop_id, eth_id = buy["txid"][0], stop["txid"][0], eth["txid"][0]
    try:
        assert a.ok("AmendOrder", txid=buy_id, limit_price="-1%")["amend_id"]
        assert a.order(buy_id)["limitprice"] == "19800.0"  # 19800.099, rounded down for a buy
        a.ok("AmendOrder", txid=buy_id, limit_price="-0.5")
        assert a.order(buy_id)["limitprice"] == "19999.6"
        a.ok("AmendOrder", txid=stop_id, trigger_price="-100")
        assert a.order(stop_id)["stopprice"] == "19900.1"
        a.ok("AmendOrder", txid=stop_id, trigger_price="-1%")  # an offset of 200.001, rounded down
        assert a.order(stop_id)["stopprice"] == "19800.1"
        assert a.refused("AmendOrder", txid=buy_id, limit_price="#5") == [
            "EGeneral:Invalid arguments:limit_price"
        ]
        assert a.refused("AmendOrder", txid=buy_id, limit_price="-20000.1") == [BAD_PRICE]
        assert a.refused("AmendOrder", txid=buy_id, limit_price="-100%") == [BAD_PRICE]
        assert a.refused("AmendOrder", txid=buy_id, limit_price="5%") == [BAD_PRICE]
        assert a.refused("AmendOrder", txid=eth_id, limit_price="-1") == [NO_LAST_PRICE]
        assert a.order(buy_id)["limitprice"] == "19999.6" and a.order(eth_id)["limitprice"] == "1000.00"
    finally:
        a.ok("CancelAll")


def test_websocket_add_and_amend_take_relative_prices(market: Market) -> None:
    a = market.alice

    async def scenario() -> None:
        token = str(a.ok("GetWebSocketsToken")["token"])
        ws = await WsClient.open(market.server.url)
        try:
            order = {"order_type": "limit", "side": "buy", "order_qty": 0.001, "symbol": "BTC/USD"}
            req = await ws.request(
                "add_order", {**order, "limit_price": -1, "limit_price_type": "pct", "token": token}
            )
            added = await ws.reply(req)
            assert added["success"], added
            order_id = added["result"]["order_id"]
            assert a.order(order_id)["limitprice"] == "19800.0"
            for amend, expected in (
                ({"limit_price": -100, "limit_price_type": "quote"}, "19900.1"),
                ({"limit_price": -0.5, "limit_price_type": "pct"}, "19900.0"),  # 19900.0995, down
                ({"limit_price": 19000.5}, "19000.5"),
            ):
                req = await ws.request("amend_order", {"order_id": order_id, **amend, "token": token})
                assert (await ws.reply(req))["success"], amend
                assert a.order(order_id)["limitprice"] == expected
            bad = {"order_id": order_id, "limit_price": -100, "limit_price_type": "pct", "token": token}
            assert (await ws.reply(await ws.request("amend_order", bad)))["error"] == BAD_PRICE
            req = await ws.request("amend_order", {**bad, "limit_price_type": "percent"})
            assert (await ws.reply(req))["error"] == "EGeneral:Invalid arguments:limit_price_type"
            eth = {
                **order,
                "symbol": "ETH/USD",
                "order_qty": 0.01,
                "limit_price": -1,
                "limit_price_type": "quote",
            }
            req = await ws.request("add_order", {**eth, "token": token})
            assert (await ws.reply(req))["error"] == NO_LAST_PRICE
        finally:
            await ws.close()

    try:
        asyncio.run(scenario())
    finally:
        a.ok("CancelAll")


def test_edit_order_refuses_a_relative_price_instead_of_reading_it_as_absolute(market: Market) -> None:
    a = market.alice
    placed = a.ok("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.001", price="19000.0")
    (txid,) = placed["txid"]
    try:
        before = _held(a)
        for price in ("-5", "+5", "#5", "-1%"):  # "-5" was once placed as an order at 5.0
            assert a.refused("EditOrder", txid=txid, pair="XBTUSD", price=price) == [BAD_PRICE]
            assert a.refused("EditOrder", txid=txid, pair="XBTUSD", price2=price) == [
                "EOrder:Invalid price:Invalid secondary price argument"
            ]
        assert _held(a) == before
        assert list(a.ok("OpenOrders")["open"]) == [txid]
        edited = a.ok("EditOrder", txid=txid, pair="XBTUSD", price="18999.0")
        assert edited["price"] == "18999.0"
        txid = edited["txid"]
    finally:
        assert a.ok("CancelOrder", txid=txid) == {"count": 1}


def test_an_amend_that_cancels_the_rest_answers_an_id_of_its_own(market: Market) -> None:
    a, b = market.alice, market.bob
    ids = set()
    for _ in range(2):
        other = a.ok(
            "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.002", price="18000.0"
        )
        ids.add(a.ok("AmendOrder", txid=other["txid"][0], order_qty="0.001")["amend_id"])
        assert a.ok("CancelOrder", txid=other["txid"][0]) == {"count": 1}
        sell = b.ok(
            "AddOrder", pair="XBTUSD", type="sell", ordertype="limit", volume="0.004", price="18500.0"
        )
        a.ok("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.002", price="18500.0")
        answer = b.ok("AmendOrder", txid=sell["txid"][0], order_qty="0.001")  # below the 0.002 executed
        info = b.order(sell["txid"][0])
        assert (info["status"], info["vol_exec"]) == ("canceled", "0.00200000")
        ids.add(answer["amend_id"])
    assert len(ids) == 4  # no answer repeats another amend's id


def test_a_websocket_amend_that_cancels_the_rest_answers_an_id_of_its_own(market: Market) -> None:
    a, b = market.alice, market.bob

    async def scenario() -> None:
        token = str(b.ok("GetWebSocketsToken")["token"])
        ws = await WsClient.open(market.server.url)
        answers = set()
        try:
            for _ in range(2):
                sell = b.ok(
                    "AddOrder", pair="XBTUSD", type="sell", ordertype="limit", volume="0.004", price="18500.0"
                )
                a.ok(
                    "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.002", price="18500.0"
                )
                order_id = sell["txid"][0]
                req = await ws.request(
                    "amend_order", {"order_id": order_id, "order_qty": 0.001, "token": token}
                )
                answer = await ws.reply(req)
                assert answer["success"], answer
                assert b.order(order_id)["status"] == "canceled"
                answers.add(answer["result"]["amend_id"])
        finally:
            await ws.close()
        assert len(answers) == 2  # once the same id for every such amend

    asyncio.run(scenario())
