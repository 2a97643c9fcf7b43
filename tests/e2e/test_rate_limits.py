"""Kraken's rate counters, when configured: the REST call counter per key and the trading counter;
and the open-orders limit per account and pair."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.test_ws_kit import WsClient
from tests.harness import Server

from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow


def _server_with_limits(tmp_path: Path, limits: str) -> Iterator[Server]:
    """A server whose config is the packaged defaults with this ``[limits]`` table's lines."""
    config = tmp_path / "limits.toml"
    config.write_text(f"[limits]\n{limits}\n")
    server = Server(tmp_path / "data", config=config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    yield from _server_with_limits(tmp_path, 'rest_tier = "starter"\ntrading_tier = "starter"')


class Client:
    def __init__(self, url: str, key: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.key, self.secret = key["api_key"], key["api_secret"]
        self.nonce = time.time_ns() // 1000

    def call(self, method: str, **params: str) -> dict[str, Any]:
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        path = f"/0/private/{method}"
        headers = {"API-Key": self.key, "API-Sign": sign(self.secret, path, str(self.nonce), body)}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        reply: dict[str, Any] = self.http.post(path, content=body, headers=headers).json()
        return reply


def test_the_call_counter_refuses_the_sixteenth_quick_call_of_a_starter_key(limited: Server) -> None:
    client = Client(limited.url, limited.account("calls", USD="100"))
    errors = [client.call("Balance")["error"] for _ in range(16)]
    assert errors[:15] == [[]] * 15  # Starter: a counter of 15, each Balance call costs 1
    assert errors[15] == ["EAPI:Rate limit exceeded"]
    time.sleep(3.2)  # Starter decays 0.33 per second: one call's worth is back after ~3 s
    assert client.call("Balance")["error"] == []
    client.http.close()


def test_the_trading_counter_refuses_orders_past_the_pair_threshold(limited: Server) -> None:
    client = Client(limited.url, limited.account("trader", USD="100000"))
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "10000.0"}
    errors = [client.call("AddOrder", **order)["error"] for _ in range(61)]
    assert all(e == [] for e in errors[:60]), errors[:60]  # Starter: threshold 60, +1 per order
    assert errors[60] == ["EOrder:Rate limit exceeded"]
    other_pair = {**order, "pair": "ETHUSD", "price": "1000.00", "volume": "0.01"}
    assert client.call("AddOrder", **other_pair)["error"] == []  # the counter is per pair
    assert client.call("CancelAll")["error"] == []  # cancels are never refused
    client.http.close()


def test_rest_and_websocket_orders_share_one_trading_counter(limited: Server) -> None:
    key = limited.account("both", USD="100000")
    client = Client(limited.url, key)
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "10000.0"}
    assert all(client.call("AddOrder", **order)["error"] == [] for _ in range(40))
    token = client.call("GetWebSocketsToken")["result"]["token"]
    client.http.close()

    async def over_the_socket() -> list[Any]:
        ws = await WsClient.open(limited.url)
        errors = []
        for _ in range(45):
            params = {"order_type": "limit", "side": "buy", "order_qty": 0.0001, "symbol": "BTC/USD",
                      "limit_price": 10000, "token": token}  # fmt: skip
            req = await ws.request("add_order", params)
            reply = await ws.reply(req)
            errors.append(reply.get("error"))
        await ws.close()
        return errors

    errors = asyncio.run(over_the_socket())
    refused = [i for i, e in enumerate(errors) if e == "EOrder:Rate limit exceeded"]
    # 40 by REST + 20 here reach the Starter threshold of 60 (less the decay of 1 per second meanwhile);
    # a counter of the socket's own would refuse nothing before the 61st
    assert refused and 20 <= refused[0] <= 30, errors
    assert all(e is None for e in errors[: refused[0]])


YOUNG_ORDERS = 20  # +1 each when placed, +8 each when cancelled within 5 s: far past Starter's 60


def _cancel_young_orders(limited: Server, name: str, how: str) -> Client:
    """Place YOUNG_ORDERS orders, cancel them at once, naming them ``how``; the client for the next."""
    client = Client(limited.url, limited.account(name, USD="100000"))
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "10000.0"}
    for i in range(YOUNG_ORDERS):
        named = {"cl_ord_id": f"c{i}"} if "cl_ord_id" in how else {"userref": str(1000 + i)}
        assert client.call("AddOrder", **order, **named)["error"] == []
    if how == "cl_ord_id":
        replies = [client.call("CancelOrder", cl_ord_id=f"c{i}") for i in range(YOUNG_ORDERS)]
    elif how == "userref":
        replies = [client.call("CancelOrder", txid=str(1000 + i)) for i in range(YOUNG_ORDERS)]
    elif how == "batch cl_ord_ids":
        batch = {"cl_ord_ids": [f"c{i}" for i in range(YOUNG_ORDERS)]}
        path, body = "/0/private/CancelOrderBatch", {"nonce": str(client.nonce + 1), **batch}
        client.nonce += 1
        raw = json.dumps(body).encode()
        headers = {"API-Key": client.key, "API-Sign": sign(client.secret, path, body["nonce"], raw)}
        replies = [
            client.http.post(
                path, content=raw, headers={**headers, "Content-Type": "application/json"}
            ).json()
        ]
    else:  # "ws cl_ord_id": the WebSocket cancel_order, by client order ids
        token = client.call("GetWebSocketsToken")["result"]["token"]
        replies = [asyncio.run(_ws_cancel(limited.url, token, [f"c{i}" for i in range(YOUNG_ORDERS)]))]
    assert all(r.get("error") in ([], None) for r in replies), replies
    return client


async def _ws_cancel(url: str, token: str, cl_ord_ids: list[str]) -> dict[str, Any]:
    ws = await WsClient.open(url)
    reply = await ws.reply(await ws.request("cancel_order", {"cl_ord_id": cl_ord_ids, "token": token}))
    await ws.close()
    return reply


@pytest.mark.parametrize("how", ["cl_ord_id", "userref", "batch cl_ord_ids", "ws cl_ord_id"])
def test_a_cancel_costs_by_age_however_it_names_the_order(limited: Server, how: str) -> None:
    client = _cancel_young_orders(limited, how.replace(" ", "_"), how)
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "10000.0"}
    assert client.call("OpenOrders")["result"]["open"] == {}, "the cancels closed nothing"
    assert client.call("AddOrder", **order)["error"] == ["EOrder:Rate limit exceeded"]
    client.http.close()


@pytest.fixture
def few_open(tmp_path: Path) -> Iterator[Server]:
    yield from _server_with_limits(tmp_path, "open_orders_per_pair_max = 3")


def test_the_open_orders_limit_refuses_one_order_too_many_per_pair(few_open: Server) -> None:
    client = Client(few_open.url, few_open.account("full", USD="100000", ETH="10"))
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "10000.0"}
    assert [client.call("AddOrder", **order)["error"] for _ in range(3)] == [[]] * 3
    assert client.call("AddOrder", **order)["error"] == ["EOrder:Orders limit exceeded"]
    stop = {**order, "type": "sell", "ordertype": "stop-loss", "price": "5000.0"}
    assert client.call("AddOrder", **stop)["error"] == ["EOrder:Orders limit exceeded"]
    assert len(client.call("OpenOrders")["result"]["open"]) == 3, "the refused orders changed nothing"
    eth = {"pair": "ETHUSD", "type": "sell", "ordertype": "limit", "volume": "0.01", "price": "100000.00"}
    assert client.call("AddOrder", **eth)["error"] == []  # the limit is per pair
    txid = next(
        t for t, o in client.call("OpenOrders")["result"]["open"].items() if o["descr"]["pair"] == "XBTUSD"
    )
    assert client.call("CancelOrder", txid=txid)["error"] == []
    assert client.call("AddOrder", **order)["error"] == []  # a closed order frees its place
    client.http.close()
