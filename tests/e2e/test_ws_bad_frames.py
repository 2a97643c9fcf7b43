"""Bad frames, floods and slow readers get Kraken-style refusals or a clear close, and never hurt others."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_ws_kit import Rest, WsClient
from tests.harness import Server
from websockets.exceptions import ConnectionClosed

from abyssal.gateway.ws_session import FLOOD_REASON, FRAME_BYTES_MAX
from abyssal.gateway.ws_wire import DIRECT_ENV, SLOW_CONSUMER_REASON

pytestmark = pytest.mark.slow

ORDER = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "symbol": "BTC/USD", "limit_price": 20000}


def _sub(req_id: int, **params: Any) -> str:
    return json.dumps({"method": "subscribe", "params": params, "req_id": req_id})


# (frame to send, expected error, expected echo of method/req_id/symbol)
TABLE: list[tuple[str, str, dict[str, Any]]] = [
    ("not json", "Malformed request", {}),
    ("[1, 2]", "Malformed request", {}),
    ("[" * 20_000, "Malformed request", {}),
    ('{"method": "frobnicate", "req_id": 1}', "Unsupported event", {"method": "frobnicate", "req_id": 1}),
    ('{"method": 5, "req_id": 2}', "Unsupported event", {"req_id": 2}),
    (
        '{"method": "subscribe", "params": [], "req_id": 3}',
        "EGeneral:Invalid arguments:params",
        {"req_id": 3},
    ),
    ('{"method": "subscribe", "req_id": "x"}', "EGeneral:Invalid arguments:req_id", {"method": "subscribe"}),
    (
        '{"method": "ping", "params": {}, "req_id": 4}',
        "Unsupported field: 'params' for the given msg type: ping",
        {"method": "ping", "req_id": 4},
    ),
    (_sub(5, channel="nope"), "Subscription name invalid", {"method": "subscribe", "req_id": 5}),
    (
        _sub(6, channel="book", symbol=["BTC/XYZ"]),
        "Currency pair not supported BTC/XYZ",
        {"req_id": 6, "symbol": "BTC/XYZ"},
    ),
    (
        _sub(7, channel="book", symbol=["XBT/USD"]),
        "Currency pair not supported XBT/USD",
        {"req_id": 7, "symbol": "XBT/USD"},
    ),
    (_sub(8, channel="book", symbol=["BTC/USD"], depth=7), "EGeneral:Invalid arguments:depth", {"req_id": 8}),
    (
        _sub(9, channel="ohlc", symbol=["BTC/USD"], interval=2),
        "EGeneral:Invalid arguments:interval",
        {"req_id": 9},
    ),
    (
        _sub(10, channel="book", symbol=["BTC/USD"], foo=1),
        "Unsupported field: 'foo' for the given msg type: subscribe",
        {"req_id": 10},
    ),
    (_sub(11, channel="book", symbol=[]), "EGeneral:Invalid arguments:symbol", {"req_id": 11}),
    (_sub(12, channel="executions", token="expired-or-foreign"), "Token(s) not found", {"req_id": 12}),
    (
        json.dumps(
            {"method": "unsubscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}, "req_id": 13}
        ),
        "Subscription Not Found",
        {"req_id": 13, "symbol": "BTC/USD"},
    ),
    (
        '{"method": "add_order", "params": {"order_type": "limit"}, "req_id": 14}',
        "Token(s) not found",
        {"method": "add_order", "req_id": 14},
    ),
]


def _order(token: str, **changes: Any) -> str:
    return json.dumps({"method": "add_order", "params": {**ORDER, **changes, "token": token}, "req_id": 99})


def _raw_number(token: str, field: str, number: str) -> str:
    """An add_order whose ``field`` is the JSON number ``number`` as written (no float between)."""
    return _order(token, **{field: 7}).replace(f'"{field}": 7', f'"{field}": {number}')


def test_bad_frame_table_and_isolation(server: Server) -> None:
    async def scenario() -> None:
        trader = Rest(server.url, server.account("t", USD="100000", XBT="1"))
        token = await trader.token()
        bystander = await WsClient.open(server.url)
        req = await bystander.request("subscribe", {"channel": "book", "symbol": ["BTC/USD"]})
        await bystander.reply(req)
        await bystander.data("book", "snapshot")
        ws = await WsClient.open(server.url)
        await ws.data("status")
        table = [
            *TABLE,
            (_order(token, limit_price="30000"), "Limit_price field must be a number_float", {"req_id": 99}),
            (_order(token, userref=5), "Unsupported field: 'userref' for the given msg type: add order", {}),
            (_order(token, stp_type="cancel-newest"), "EGeneral:Invalid arguments:stp_type", {}),
            # values that cannot be looked up in a table of names (a list or an object is not hashable)
            (_order(token, order_type=["limit"]), "EGeneral:Invalid arguments:order_type", {}),
            (_order(token, stp_type={"a": 1}), "EGeneral:Invalid arguments:stp_type", {}),
            (_order(token, fee_preference=["base"]), "EGeneral:Invalid arguments:fee_preference", {}),
            (_order(token, limit_price_type=[]), "EGeneral:Invalid arguments:limit_price_type", {}),
            (  # digits that str.isdigit admits and int() refuses
                json.dumps({"method": "batch_cancel", "params": {"orders": ["²", "³"], "token": token}}),
                "EOrder:Invalid order",
                {"method": "batch_cancel"},
            ),
            # JSON numbers whose plain text would be a gigabyte (formatting one would stall the loop)
            (_raw_number(token, "order_qty", "1e999999999"), "EGeneral:Invalid arguments:order_qty", {}),
            (_raw_number(token, "limit_price", "1E+999999999"), "EGeneral:Invalid arguments:limit_price", {}),
            (_raw_number(token, "order_qty", "1e-999999999"), "EGeneral:Invalid arguments:order_qty", {}),
            (
                _order(token, leverage=2),
                "Unsupported field: 'leverage' for the given msg type: add order",
                {},
            ),
            (_order(token, order_qty=100), "EOrder:Insufficient funds", {}),
            # cl_ord_id: the REST parser's one rule (a UUID, or up to 18 characters of free text)
            (_order(token, cl_ord_id="a" * 19), "EGeneral:Invalid arguments:cl_ord_id", {}),
            (_order(token, cl_ord_id="<script>"), "EGeneral:Invalid arguments:cl_ord_id", {}),
            (_order(token, cl_ord_id="a b"), "EGeneral:Invalid arguments:cl_ord_id", {}),
            (_order(token, cl_ord_id=7), "EGeneral:Invalid arguments:cl_ord_id", {}),
            (
                _order(token, limit_price=20000.05),
                "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals.",
                {},
            ),
            (
                "x" * (FRAME_BYTES_MAX + 1),
                f"EGeneral:Invalid arguments:frame over {FRAME_BYTES_MAX} bytes",
                {},
            ),
        ]
        for frame, error, echo in table:
            await ws.send(frame)
            reply = await ws.until(lambda f: "success" in f)
            assert reply["success"] is False and reply["error"] == error, frame[:80]
            assert {k: reply.get(k) for k in echo} == echo, frame[:80]
            assert isinstance(reply["error"], str)
        await ws.ws.send(b'{"method": "ping", "req_id": 100}')  # a binary frame with JSON is read too
        assert (await ws.reply(100))["method"] == "pong"
        await trader.limit("buy", "0.01", "20000")  # the bystander saw all of it and still gets updates
        update = await bystander.data("book", "update")
        assert update["data"][0]["bids"][0]["price"] == 20000
        req = await bystander.request("ping")
        assert (await bystander.reply(req))["method"] == "pong"
        for client in (ws, bystander):
            await client.close()
        await trader.close()

    asyncio.run(scenario())


def test_request_flood_is_refused_then_closed(server: Server) -> None:
    async def scenario() -> None:
        bystander = await WsClient.open(server.url)
        flooder = await WsClient.open(server.url)
        for i in range(600):
            await flooder.send({"method": "ping", "req_id": i})
        refused = pongs = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame, _ = await flooder.recv()
                if frame.get("error") == "EGeneral:Too many requests":
                    refused += 1
                elif frame.get("method") == "pong":
                    pongs += 1
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == FLOOD_REASON
        assert 100 <= pongs < 600 and refused >= 200
        req = await bystander.request("ping")
        assert (await bystander.reply(req))["method"] == "pong"
        await bystander.close()

    asyncio.run(scenario())


@pytest.fixture(params=["direct", "asgi"])
def either_path(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    """A server writing frames straight to uvicorn's transport, or through ASGI ``send`` only."""
    if request.param == "asgi":
        monkeypatch.setenv(DIRECT_ENV, "0")
    config = tmp_path / "deep-book.toml"  # one maker keeps 1,200 orders open: past Kraken's 225
    config.write_text("[limits]\nopen_orders_per_pair_max = 2000\n")
    s = Server(tmp_path / "data", config=config)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_a_client_that_stops_reading_is_closed_with_a_reason(either_path: Server) -> None:
    server = either_path

    async def scenario() -> None:
        maker = Rest(server.url, server.account("m", USD="10000000", XBT="100"))
        for side, base in (
            ("buy", 20000),
            ("sell", 40000),
        ):  # 600 levels a side: a depth-1000 snapshot ~50 KB
            for start in range(0, 600, 15):
                form = {}
                for n, i in enumerate(range(start, start + 15)):
                    form.update(
                        {
                            f"orders[{n}][ordertype]": "limit",
                            f"orders[{n}][type]": side,
                            f"orders[{n}][volume]": "0.01",
                            f"orders[{n}][price]": str(base + i),
                        }
                    )
                await maker.private("AddOrderBatch", pair="XBTUSD", **form)
        bystander = await WsClient.open(server.url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # no kernel buffer to hide the backlog in
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        # max_queue=1: the library stops reading at once; no compression: the backlog is real bytes
        slow = await WsClient.open(server.url, max_queue=1, sock=sock, compression=None)
        subscribe = json.dumps(
            {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 1000}}
        )
        for _ in range(300):  # each (re)subscription sends a fresh snapshot it will not read
            await slow.ws.send(subscribe)
            await asyncio.sleep(0.01)
        await asyncio.sleep(3.0)  # stays above the limit longer than the grace period
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await slow.recv(timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == SLOW_CONSUMER_REASON
        req = await bystander.request("ping")
        assert (await bystander.reply(req))["method"] == "pong"
        await bystander.close()
        await maker.close()

    asyncio.run(scenario())
