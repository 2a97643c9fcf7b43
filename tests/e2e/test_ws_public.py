"""WebSocket v2 public channels against a live server: envelope, acks, snapshots, updates, formats."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import pytest
from tests.e2e.test_ws_kit import Rest, WsClient, decimals, numbers_in
from tests.harness import Server
from websockets.exceptions import InvalidStatus

from abyssal.marketdata.checksum import book_checksum

pytestmark = pytest.mark.slow

TIME_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TIME_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def ticks(value: Any, places: int) -> int:
    return int(Decimal(value).scaleb(places))


async def _traders(server: Server) -> tuple[Rest, Rest]:
    maker = Rest(server.url, server.account("maker", USD="100000", XBT="10"))
    taker = Rest(server.url, server.account("taker", USD="100000", XBT="10"))
    return maker, taker


def test_status_ping_and_paths(server: Server) -> None:
    async def scenario() -> None:
        for path in ("/v2", "/v2/auth"):
            ws = await WsClient.open(server.url, path)
            status, _ = await ws.recv()
            assert status["channel"] == "status" and status["type"] == "update"
            (info,) = status["data"]
            assert info["api_version"] == "v2" and info["system"] == "online"
            assert isinstance(info["connection_id"], int) and isinstance(info["version"], str)
            req = await ws.request("ping")
            pong = await ws.reply(req)
            assert pong["method"] == "pong" and pong["req_id"] == req
            assert TIME_US.match(pong["time_in"]) and TIME_US.match(pong["time_out"])
            await ws.send({"method": "ping"})
            bare = await ws.until(lambda f: f.get("method") == "pong")
            assert "req_id" not in bare
            await ws.close()
        with pytest.raises(InvalidStatus) as refused:
            await WsClient.open(server.url, "/v1")
        assert refused.value.response.status_code == 404

    asyncio.run(scenario())


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["direct", "asgi"])
def test_book_trade_ticker_ohlc_updates_with_exact_numbers(server: Server, compression: str | None) -> None:
    async def scenario() -> None:
        maker, taker = await _traders(server)
        ws = await WsClient.open(server.url, compression=compression)
        req = await ws.request(
            "subscribe", {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 10}
        )
        acks = [await ws.reply(req), await ws.reply(req)]
        assert [a["result"]["symbol"] for a in acks] == ["BTC/USD", "ETH/USD"]  # one ack per symbol
        assert all(
            a["success"] and a["result"] == {**a["result"], "channel": "book", "depth": 10, "snapshot": True}
            for a in acks
        )
        snapshot = await ws.data("book", "snapshot")
        assert snapshot["data"][0]["bids"] == [] and snapshot["data"][0]["checksum"] == 0
        ws.drop_seen("book")
        for channel, extra in (("trade", {"snapshot": True}), ("ticker", {}), ("ohlc", {"interval": 1})):
            req = await ws.request("subscribe", {"channel": channel, "symbol": ["BTC/USD"], **extra})
            assert (await ws.reply(req))["success"]
        await maker.limit("sell", "0.5", "30000.5")
        await maker.limit("sell", "0.25", "30001")
        await maker.limit("buy", "1", "29999.0")
        book = {"asks": {}, "bids": {}}  # type: dict[str, dict[int, int]]
        snap = await ws.until(lambda f: f.get("channel") == "book" and f["data"][0]["symbol"] == "BTC/USD")
        # three batches may arrive as one conflated update or several: apply until all three show
        while True:
            for side in ("asks", "bids"):
                for row in snap["data"][0][side]:
                    price, qty = ticks(row["price"], 1), ticks(row["qty"], 8)
                    book[side].pop(price, None) if qty == 0 else book[side].__setitem__(price, qty)
            asks, bids = sorted(book["asks"].items()), sorted(book["bids"].items(), reverse=True)
            assert book_checksum(asks, bids, 1, 8) == snap["data"][0]["checksum"]
            if len(asks) == 2 and len(bids) == 1:
                break
            snap = await ws.until(lambda f: f.get("channel") == "book" and f["type"] == "update")
        assert asks == [(300005, 50_000_000), (300010, 25_000_000)] and bids == [(299990, 100_000_000)]
        await taker.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.1")
        trade, trade_text = await ws.until_raw(
            lambda f: f.get("channel") == "trade" and f["type"] == "update"
        )
        (t,) = trade["data"]
        assert t["symbol"] == "BTC/USD" and t["side"] == "buy" and t["ord_type"] == "market"
        assert isinstance(t["trade_id"], int) and TIME_US.match(t["timestamp"])
        assert numbers_in(trade_text)["price"] == ["30000.5"] and numbers_in(trade_text)["qty"] == [
            "0.10000000"
        ]
        update, update_text = await ws.until_raw(
            lambda f: f.get("channel") == "book" and f["type"] == "update"
        )
        assert numbers_in(update_text)["qty"] == ["0.40000000"] and TIME_US.match(
            update["data"][0]["timestamp"]
        )
        _, ticker_text = await ws.until_raw(lambda f: f.get("channel") == "ticker" and f["type"] == "update")
        found = numbers_in(ticker_text)
        assert (
            found["last"] == ["30000.5"]
            and found["volume"] == ["0.10000000"]
            and found["ask_qty"] == ["0.40000000"]
        )
        assert found["bid"] == ["29999.0"] and decimals(found["change_pct"][0]) == 2
        ohlc, ohlc_text = await ws.until_raw(lambda f: f.get("channel") == "ohlc" and f["type"] == "update")
        candle = ohlc["data"][-1]
        assert candle["interval"] == 1 and candle["trades"] == 1 and TIME_NS.match(candle["interval_begin"])
        assert (
            numbers_in(ohlc_text)["open"][-1] == "30000.5"
            and numbers_in(ohlc_text)["volume"][-1] == "0.10000000"
        )
        late = await WsClient.open(server.url, compression=compression)
        req = await late.request("subscribe", {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True})
        await late.reply(req)
        snap_trades = await late.data("trade", "snapshot")
        assert [x["trade_id"] for x in snap_trades["data"]] == [t["trade_id"]]
        for client in (ws, late):
            await client.close()
        await maker.close()
        await taker.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["direct", "asgi"])
def test_unsubscribe_heartbeat_instrument_and_bbo(server: Server, compression: str | None) -> None:
    async def scenario() -> None:
        maker, _ = await _traders(server)
        ws = await WsClient.open(server.url, compression=compression)
        req = await ws.request(
            "subscribe", {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"}
        )
        ack = await ws.reply(req)
        assert ack["result"]["event_trigger"] == "bbo"
        await ws.data("ticker", "snapshot")
        await maker.limit("buy", "0.01", "25000")
        _, text = await ws.until_raw(lambda f: f.get("channel") == "ticker" and f["type"] == "update")
        assert numbers_in(text)["bid"] == ["25000.0"] and numbers_in(text)["bid_qty"] == ["0.01000000"]
        req = await ws.request(
            "unsubscribe", {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"}
        )
        assert (await ws.reply(req))["result"] == {
            "channel": "ticker",
            "event_trigger": "bbo",
            "symbol": "BTC/USD",
        }
        req = await ws.request("unsubscribe", {"channel": "ticker", "symbol": ["BTC/USD"]})
        gone = await ws.reply(req)
        assert (
            gone["success"] is False
            and gone["error"] == "Subscription Not Found"
            and gone["symbol"] == "BTC/USD"
        )
        req = await ws.request("subscribe", {"channel": "instrument"})
        assert (await ws.reply(req))["result"] == {"channel": "instrument", "snapshot": True}
        inst, inst_text = await ws.until_raw(lambda f: f.get("channel") == "instrument")
        pairs = {p["symbol"]: p for p in inst["data"]["pairs"]}
        btc = pairs["BTC/USD"]
        assert btc["base"] == "BTC" and btc["quote"] == "USD" and btc["price_precision"] == 1
        assert btc["qty_precision"] == 8 and btc["status"] == "online"
        assert '"qty_increment":0.00000001' in inst_text and '"tick_size":0.1' in inst_text
        assert {a["id"] for a in inst["data"]["assets"]} >= {"BTC", "USD"}
        await maker.limit("buy", "0.01", "25000.5")
        heartbeat = await ws.until(lambda f: f.get("channel") == "heartbeat", timeout=4)
        assert heartbeat == {"channel": "heartbeat"}
        assert not any(f.get("channel") == "ticker" for f, _ in ws.seen), "no ticker after unsubscribe"
        await ws.close()
        await maker.close()

    asyncio.run(scenario())


def test_mode_changes_reach_status_and_instrument(server: Server) -> None:
    async def scenario() -> None:
        ws = await WsClient.open(server.url)
        await ws.data("status")
        req = await ws.request("subscribe", {"channel": "instrument", "snapshot": False})
        assert (await ws.reply(req))["result"] == {"channel": "instrument", "snapshot": False}
        await asyncio.to_thread(server.admin, "POST", "/admin/mode", {"pair": "ETHUSD", "mode": "post_only"})
        update = await ws.data("instrument", "update")
        statuses = {p["symbol"]: p["status"] for p in update["data"]["pairs"]}
        assert statuses["ETH/USD"] == "post_only" and statuses["BTC/USD"] == "online"
        await asyncio.to_thread(
            server.admin, "POST", "/admin/mode", {"pair": "system", "mode": "cancel_only"}
        )
        status = await ws.data("status")
        assert status["data"][0]["system"] == "cancel_only"
        await ws.data("instrument", "update")
        await asyncio.to_thread(server.admin, "POST", "/admin/mode", {"pair": "system", "mode": "online"})
        assert (await ws.data("status"))["data"][0]["system"] == "online"
        assert not any(f.get("channel") == "status" for f, _ in ws.seen), "one status frame per change"
        await ws.close()

    asyncio.run(scenario())
