"""ccxt pro 4.5.90 (``kraken``, WebSocket v2) through a full order lifecycle placed over the socket.

Public watchers (book, trades, ticker, OHLCV) and private ones (orders, my trades, balance) run
while an order is created, amended and cancelled with ``create_order_ws``/``edit_order_ws``/
``cancel_order_ws``, and another account trades against it. URLs as doc §7.2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import ccxt.pro as ccxtpro
import pytest
from ccxt.base.errors import ExchangeError, OrderNotFound
from tests.e2e.test_ws_kit import Rest
from tests.harness import Server

pytestmark = pytest.mark.slow

T = TypeVar("T")
WAIT_S = 15.0


def pro(server: Server, key: dict[str, Any]) -> Any:
    ex = ccxtpro.kraken({"apiKey": key["api_key"], "secret": key["api_secret"], "enableRateLimit": False})
    base = server.url.replace("http://", "ws://")
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = server.url
    ex.urls["api"]["ws"] = {
        "public": base,
        "private": base,
        "publicV2": base + "/v2",
        "privateV2": base + "/v2",
    }
    return ex


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT_S)


async def state(get: Any, match: Any) -> Any:
    """Poll ccxt's cached state (kept current by the socket) until it satisfies ``match``."""

    async def loop() -> Any:
        while not match(get()):
            await asyncio.sleep(0.02)
        return get()

    return await within(loop())


async def watch_until(watch: Any, match: Any) -> Any:
    """Call a ``watch_*`` until its result satisfies ``match`` (each call waits for an update)."""

    async def loop() -> Any:
        while True:
            result = await watch()
            if match(result):
                return result

    return await within(loop())


def test_full_order_lifecycle_over_ccxt_pro(server: Server) -> None:
    async def scenario() -> None:
        ex = pro(server, server.account("alice", USD="100000", XBT="2"))
        bob = Rest(server.url, server.account("bob", USD="100000", XBT="2"))
        try:
            await within(ex.load_markets())
            balance = await within(ex.watch_balance())
            assert balance["USD"]["total"] == 100000 and balance["BTC"]["total"] == 2
            # an empty executions snapshot resolves nothing in ccxt: watch from before the order exists
            orders_task = asyncio.create_task(within(ex.watch_orders()))
            await asyncio.sleep(0.3)
            book_task = asyncio.create_task(within(ex.watch_order_book("BTC/USD", 10)))
            first_book = await book_task
            assert first_book["asks"] == [] and first_book["bids"] == []

            order = await within(
                ex.create_order_ws("BTC/USD", "limit", "sell", 0.5, 30000.5, {"clientOrderId": "c1"})
            )
            order_id = order["id"]
            assert order_id.startswith("O")
            orders = await orders_task  # pending_new and new arrive in one frame: merged into one order
            mine = next(o for o in orders if o["id"] == order_id)
            assert mine["status"] == "open" and mine["clientOrderId"] == "0"  # ccxt reads order_userref
            assert (mine["symbol"], mine["side"], mine["type"], mine["price"], mine["amount"]) == (
                "BTC/USD",
                "sell",
                "limit",
                30000.5,
                0.5,
            )
            book = lambda: ex.orderbooks["BTC/USD"].limit()  # noqa: E731 - the live book ccxt maintains
            await state(book, lambda b: b["asks"] == [[30000.5, 0.5]])
            cached = lambda: {o["id"]: o for o in ex.orders}.get(order_id)  # noqa: E731

            edited = await within(ex.edit_order_ws(order_id, "BTC/USD", "limit", "sell", 0.4, 30001))
            assert edited["id"] == order_id
            await state(cached, lambda o: o["amount"] == 0.4 and o["price"] == 30001)
            await state(book, lambda b: b["asks"] == [[30001.0, 0.4]])

            trades_task = asyncio.create_task(within(ex.watch_trades("BTC/USD")))
            ticker_task = asyncio.create_task(
                watch_until(lambda: ex.watch_ticker("BTC/USD"), lambda t: t["last"] == 30001)
            )
            ohlcv_task = asyncio.create_task(
                watch_until(lambda: ex.watch_ohlcv("BTC/USD", "1m"), lambda c: c and c[-1][4] == 30001)
            )
            my_trades_task = asyncio.create_task(within(ex.watch_my_trades()))
            await asyncio.sleep(0.5)  # the subscriptions are in place
            await bob.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.1")
            trades = await trades_task
            assert (
                trades[-1]["price"] == 30001 and trades[-1]["amount"] == 0.1 and trades[-1]["side"] == "buy"
            )
            ticker = await ticker_task
            assert ticker["ask"] == 30001 and ticker["baseVolume"] == 0.1 and ticker["last"] == 30001
            candles = await ohlcv_task
            assert candles[-1][1:] == [30001, 30001, 30001, 30001, 0.1]
            my_trades = await my_trades_task
            fill = my_trades[-1]
            assert (fill["order"], fill["side"], fill["takerOrMaker"], fill["price"], fill["amount"]) == (
                order_id,
                "sell",
                "maker",
                30001,
                0.1,
            )
            assert fill["fee"]["currency"] == "USD" and fill["fee"]["cost"] > 0
            await state(book, lambda b: b["asks"] == [[30001.0, 0.3]])
            await state(lambda: ex.balance["spot"], lambda b: b["BTC"]["total"] == 1.9)

            await within(ex.cancel_order_ws(order_id))
            await state(cached, lambda o: o["status"] == "canceled")
            await state(book, lambda b: b["asks"] == [])
            with pytest.raises(OrderNotFound):
                await within(ex.cancel_order_ws(order_id))
            with pytest.raises(ExchangeError, match="EOrder:Insufficient funds"):  # doc 6.2: mapped broadly
                await within(ex.create_order_ws("BTC/USD", "limit", "buy", 100, 30000))
            assert await within(ex.cancel_all_orders_ws()) is not None
        finally:
            await ex.close()
            await bob.close()

    asyncio.run(scenario())
