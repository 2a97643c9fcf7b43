"""The metrics API other stages call, and the HTTP observer's bounded labels."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from abyssal import observability as obs
from abyssal.gateway.metrics import HttpObserver, endpoint_error


def _value(name: str, **labels: str) -> float:
    value = obs.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_the_websocket_api_moves_its_series() -> None:
    before = {
        n: _value(n, feed="private")
        for n in (
            "abyssal_ws_connections",
            "abyssal_ws_messages_sent_total",
            "abyssal_ws_send_buffer_drops_total",
            "abyssal_ws_slow_consumer_closes_total",
        )
    }
    obs.ws_connected("private")
    obs.ws_connected("private")
    obs.ws_disconnected("private")
    obs.ws_message_sent("private", 5)
    obs.ws_send_dropped("private", 3)
    obs.ws_slow_consumer_closed("private")
    assert _value("abyssal_ws_connections", feed="private") - before["abyssal_ws_connections"] == 1
    assert (
        _value("abyssal_ws_messages_sent_total", feed="private") - before["abyssal_ws_messages_sent_total"]
        == 5
    )
    drops = _value("abyssal_ws_send_buffer_drops_total", feed="private")
    assert drops - before["abyssal_ws_send_buffer_drops_total"] == 3
    closes = _value("abyssal_ws_slow_consumer_closes_total", feed="private")
    assert closes - before["abyssal_ws_slow_consumer_closes_total"] == 1
    obs.ws_disconnected("private")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"error":[],"result":{}}', None),
        (b'{"error":["EOrder:Insufficient funds"]}', "EOrder:Insufficient funds"),
        (
            b'{"error":["EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals."]}',
            "EOrder:Invalid price",
        ),
        (b'{"error":["EGeneral:Invalid arguments:volume"]}', "EGeneral:Invalid arguments"),
        (b'{"error":[""]}', None),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_the_first_kraken_error_is_cut_to_category_and_message(body: bytes, error: str | None) -> None:
    assert endpoint_error(body) == error


def test_unknown_paths_share_one_label_so_clients_cannot_grow_the_series() -> None:
    observer = HttpObserver(["/0/public/Time"])

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b'{"error":["EGeneral:Unknown method"]}'})

    async def send(message: Any) -> None:
        pass

    async def scenario() -> None:
        for i in range(50):
            scope = {"type": "http", "path": f"/0/public/Nope{i}", "method": "PATCH", "headers": []}
            await observer(handler, scope, send, send)

    before = _value("abyssal_http_requests_total", endpoint="other", method="other", status="404")
    asyncio.run(scenario())
    assert (
        _value("abyssal_http_requests_total", endpoint="other", method="other", status="404") - before == 50
    )
    assert observer.endpoint("/0/public/Time") == "/0/public/Time"
    assert observer.endpoint("/admin/accounts") == "/admin"
    errors = _value("abyssal_api_errors_total", endpoint="other", error="EGeneral:Unknown method")
    assert errors >= 50
