"""WebSocket v2 private channels and trading methods: executions, balances, tokens, replies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.e2e.test_ws_books import Level3Client
from tests.e2e.test_ws_kit import Frame, Rest, WsClient, numbers_in
from tests.harness import Server

from abyssal.gateway.auth import Permission
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.ws_tokens import INVALID_SESSION, TOKEN_NOT_FOUND, TokenError, Tokens


def _is_trade(frame: Frame) -> bool:
    return bool(frame["data"]) and frame["data"][0]["exec_type"] == "trade"


class Feed:
    """Executions frames of one connection, with the contract checks every frame must pass."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self.sequence = 0
        self.entries: list[tuple[Frame, str]] = []

    async def next(self, exec_type: str) -> Frame:
        """The next executions entry of ``exec_type`` (frames read on the way are checked)."""
        while True:
            for i, (entry, _) in enumerate(self.entries):
                if entry["exec_type"] == exec_type:
                    del self.entries[i]
                    return entry
            frame, text = await self.ws.until_raw(lambda f: f.get("channel") == "executions")
            self.sequence += 1
            assert frame["sequence"] == self.sequence, "sequence counts every frame of the channel"
            kinds = {e["exec_type"] == "trade" for e in frame["data"]}
            assert len(kinds) <= 1, f"a frame mixed trades with order states: {frame}"
            self.entries.extend((entry, text) for entry in frame["data"])


@pytest.mark.slow
@pytest.mark.parametrize("compression", [None, "deflate"], ids=["direct", "asgi"])
def test_order_lifecycle_over_the_socket(server: Server, compression: str | None) -> None:
    async def scenario() -> None:
        alice = Rest(server.url, server.account("alice", USD="100000", XBT="10"))
        bob = Rest(server.url, server.account("bob", USD="100000", XBT="10"))
        token = await alice.token()
        ws = await WsClient.open(server.url, compression=compression)
        req = await ws.request("subscribe", {"channel": "executions", "token": token, "snap_trades": True})
        ack = await ws.reply(req)
        assert ack["result"] == {
            "channel": "executions",
            "snap_orders": True,
            "snap_trades": True,
            "order_status": True,
        }
        orders_snap = await ws.data("executions", "snapshot")
        trades_snap = await ws.data("executions", "snapshot")
        assert (orders_snap["sequence"], trades_snap["sequence"]) == (1, 2) and orders_snap["data"] == []
        feed = Feed(ws)
        feed.sequence = 2
        req = await ws.request("subscribe", {"channel": "balances", "token": token})
        await ws.reply(req)
        balances, text = await ws.until_raw(lambda f: f.get("channel") == "balances")
        assert balances["type"] == "snapshot" and balances["sequence"] == 1
        assert numbers_in(text)["balance"][:2] == ["10.0000000000", "10.0000000000"]  # BTC: 10 decimals
        assert {b["asset"] for b in balances["data"]} == {"BTC", "USD"}

        req = await ws.request(
            "add_order",
            {
                "order_type": "limit",
                "side": "sell",
                "order_qty": 0.5,
                "symbol": "BTC/USD",
                "limit_price": 30000.5,
                "post_only": True,
                "cl_ord_id": "ask-1",
                "time_in_force": "gtc",
                "token": token,
            },
        )
        added = await ws.reply(req)
        assert added["success"] and added["result"]["cl_ord_id"] == "ask-1"
        order_id = added["result"]["order_id"]
        pending = await feed.next("pending_new")
        assert (
            pending["order_id"] == order_id
            and pending["symbol"] == "BTC/USD"
            and pending["post_only"] is True
        )
        assert (pending["side"], pending["order_type"], pending["time_in_force"]) == ("sell", "limit", "GTC")
        assert str(pending["order_qty"]) == "0.50000000" and str(pending["limit_price"]) == "30000.5"
        assert (await feed.next("new"))["order_status"] == "new"

        req = await ws.request(
            "amend_order", {"order_id": order_id, "order_qty": 0.4, "limit_price": 30001, "token": token}
        )
        amended = await ws.reply(req)
        assert amended["result"]["order_id"] == order_id and amended["result"]["amend_id"].startswith("T")
        entry = await feed.next("amended")
        assert str(entry["order_qty"]) == "0.40000000" and str(entry["limit_price"]) == "30001.0"
        for change, error in (  # held to the minimums AddOrder applies; the order stays as it was
            ({"order_qty": 0.00001}, "EOrder:Order minimum not met"),
            ({"limit_price": 1}, "EOrder:Cost minimum not met"),  # 0.4 BTC at 1 USD: 0.4 USD
            ({"cl_ord_id": "ask-1", "order_qty": 0.00001}, "EOrder:Order minimum not met"),
        ):
            target = {} if "cl_ord_id" in change else {"order_id": order_id}
            req = await ws.request("amend_order", {**target, **change, "token": token})
            refused = await ws.reply(req)
            assert refused["success"] is False and refused["error"] == error, change

        await bob.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.1")
        fill = await feed.next("trade")
        assert (
            fill["order_id"] == order_id
            and fill["liquidity_ind"] == "m"
            and fill["order_status"] == "partially_filled"
        )
        assert str(fill["last_qty"]) == "0.10000000" and str(fill["last_price"]) == "30001.0"
        assert str(fill["cost"]) == "3000.10000" and fill["fees"][0]["asset"] == "USD"
        ledger = await ws.until(lambda f: f.get("channel") == "balances" and f["type"] == "update")
        assert ledger["sequence"] == 2 and ledger["data"][0]["ledger_id"].startswith("L")

        req = await ws.request(
            "edit_order", {"order_id": order_id, "symbol": "BTC/USD", "order_qty": 0.2, "token": token}
        )
        edited = await ws.reply(req)
        new_id = edited["result"]["order_id"]
        assert edited["result"]["original_order_id"] == order_id and new_id != order_id
        replaced = await feed.next("canceled")
        assert replaced["order_id"] == order_id and str(replaced["cum_qty"]) == "0.10000000"
        assert (await feed.next("pending_new"))["order_id"] == new_id

        req = await ws.request("cancel_order", {"order_id": [new_id, "OAAAAA-AAAAA-AAAAAA"], "token": token})
        first, second = await ws.reply(req), await ws.reply(req)
        assert first["result"] == {"order_id": new_id} and second["error"] == "EOrder:Unknown order"
        canceled = await feed.next("canceled")
        assert canceled["order_id"] == new_id and canceled["reason"] == "User requested"

        orders = [
            {"order_type": "limit", "side": "buy", "order_qty": 0.01, "limit_price": p}
            for p in (20000, 20001)
        ]
        req = await ws.request("batch_add", {"symbol": "BTC/USD", "orders": orders, "token": token})
        batch = await ws.reply(req)
        ids = [o["order_id"] for o in batch["result"]]
        assert len(ids) == 2 and all(i.startswith("O") for i in ids)
        req = await ws.request("batch_cancel", {"orders": ids, "token": token})
        cancelled = await ws.reply(req)
        assert cancelled["orders_cancelled"] == 2 and "result" not in cancelled
        await alice.limit("buy", "0.01", "20000")
        req = await ws.request("cancel_all", {"token": token})
        assert (await ws.reply(req))["result"] == {"count": 1}
        req = await ws.request("cancel_all_orders_after", {"timeout": 60, "token": token})
        dms = (await ws.reply(req))["result"]
        assert dms["currentTime"].endswith("Z") and dms["triggerTime"] > dms["currentTime"]
        req = await ws.request("cancel_all_orders_after", {"timeout": 0, "token": token})
        assert (await ws.reply(req))["result"]["triggerTime"] == "0"
        for _ in range(3):  # the batch's two and cancel_all's one close, never mixed with trades
            await feed.next("canceled")
        await ws.close()
        await alice.close()
        await bob.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_token_rules_and_permissions(server: Server) -> None:
    async def scenario() -> None:
        alice = Rest(server.url, server.account("alice", USD="1000"))
        bob = Rest(server.url, server.account("bob", USD="1000"))
        viewer_key = server.admin(
            "POST", "/admin/accounts", {"name": "viewer", "permissions": ["websocket", "query_open"]}
        )
        viewer = Rest(server.url, viewer_key)
        ws = await WsClient.open(server.url)
        for params, error in (
            ({"channel": "executions"}, TOKEN_NOT_FOUND),
            ({"channel": "executions", "token": "not-a-token"}, TOKEN_NOT_FOUND),
            ({"channel": "balances", "token": 42}, TOKEN_NOT_FOUND),
        ):
            req = await ws.request("subscribe", params)
            assert (await ws.reply(req))["error"] == error
        token = await alice.token()
        req = await ws.request("subscribe", {"channel": "balances", "token": token})
        assert (await ws.reply(req))["success"]
        foreign = await bob.token()
        order: dict[str, Any] = {
            "order_type": "limit",
            "side": "buy",
            "order_qty": 0.01,
            "symbol": "BTC/USD",
            "limit_price": 20000,
        }
        req = await ws.request("add_order", {**order, "token": foreign})
        assert (await ws.reply(req))["error"] == INVALID_SESSION  # this connection speaks for alice
        viewer_ws = await WsClient.open(server.url)
        req = await viewer_ws.request("add_order", {**order, "token": await viewer.token()})
        assert (await viewer_ws.reply(req))["error"] == "EGeneral:Permission denied"
        for client in (ws, viewer_ws):
            await client.close()
        for rest in (alice, bob, viewer):
            await rest.close()

    asyncio.run(scenario())


class _Keys:
    def __init__(self, key: ApiKey) -> None:
        self.by_key = {key.api_key: key}


class _Exchange:
    def __init__(self, key: ApiKey) -> None:
        self.keys = _Keys(key)
        self.ws_tokens: dict[str, tuple[int, int]] = {}


def test_token_expiry_is_suspended_while_a_private_subscription_lives() -> None:
    key = ApiKey(7, "k", 3, b"s", Permission.ALL, 0, None)
    exchange = _Exchange(key)
    tokens = Tokens(exchange)  # type: ignore[arg-type]
    exchange.ws_tokens["t"] = (7, 1_000)
    assert tokens.key_for("t", 999) is key
    with pytest.raises(TokenError, match="ESession:Invalid session"):
        tokens.key_for("t", 1_000)  # 15 minutes passed, nothing holds it
    tokens.pin("t")
    assert tokens.key_for("t", 5_000) is key  # a live private subscription keeps it valid
    assert tokens.prune(5_000) == 0
    tokens.unpin("t")
    with pytest.raises(TokenError, match="ESession:Invalid session"):
        tokens.key_for("t", 5_000)
    assert tokens.prune(5_000) == 1 and exchange.ws_tokens == {}
    with pytest.raises(TokenError, match=r"Token\(s\) not found"):
        tokens.key_for("t", 5_000)
    with pytest.raises(TokenError, match="Permission denied"):
        exchange.ws_tokens["u"] = (7, 10_000)
        tokens._by_key_no = {7: ApiKey(7, "k", 3, b"s", Permission.QUERY_FUNDS, 0, None)}
        tokens.key_for("u", 0, Permission.CREATE_ORDERS)


@pytest.mark.slow
def test_level3_queues_with_a_token(server: Server) -> None:
    async def scenario() -> None:
        maker = Rest(server.url, server.account("maker", USD="100000", XBT="10"))
        taker = Rest(server.url, server.account("taker", USD="100000", XBT="10"))
        first = await maker.limit("buy", "0.01", "29000")
        second = await maker.limit("buy", "0.02", "29000")
        ws = await WsClient.open(server.url)
        req = await ws.request("subscribe", {"channel": "level3", "symbol": ["BTC/USD"]})
        assert (await ws.reply(req))["error"] == TOKEN_NOT_FOUND
        token = await maker.token()
        req = await ws.request("subscribe", {"channel": "level3", "symbol": ["BTC/USD"], "token": token})
        ack = await ws.reply(req)
        assert ack["result"] == {"channel": "level3", "depth": 10, "snapshot": True, "symbol": "BTC/USD"}
        client = Level3Client(10)
        snapshot, text = await ws.until_raw(lambda f: f.get("channel") == "level3")
        client.apply(snapshot)  # checks the checksum
        assert [row["order_id"] for row in snapshot["data"][0]["bids"]] == [first, second]  # queue order
        assert numbers_in(text)["order_qty"] == ["0.01000000", "0.02000000"]
        third = await maker.limit("buy", "0.03", "29000")
        update = await ws.until(lambda f: f.get("channel") == "level3")
        client.apply(update)
        assert [(r["event"], r["order_id"]) for r in update["data"][0]["bids"]] == [("add", third)]
        await taker.private("AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.015")
        update = await ws.until(lambda f: f.get("channel") == "level3")
        client.apply(update)
        events = [(r["event"], r["order_id"]) for r in update["data"][0]["bids"]]
        assert events == [("delete", first), ("modify", second)]
        assert client.top("bids") == [(290000, [(second, 1_500_000), (third, 3_000_000)])]
        await ws.close()
        await maker.close()
        await taker.close()

    asyncio.run(scenario())
