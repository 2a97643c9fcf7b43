"""The executions ack's ``maxratecount`` is the threshold of the trading counter's configured tier."""

from __future__ import annotations

import asyncio

from tests.e2e.test_ws_kit import Rest, WsClient
from tests.harness import Server

from abyssal.gateway.ratelimit import TRADING_TIER_STARTER


def test_executions_ack_reports_the_configured_rate_tier(server: Server) -> None:
    """The default config names no tier: the counter's tier is the starter one (60), not 180."""

    async def scenario() -> None:
        alice = Rest(server.url, server.account("rate-alice", USD="1000"))
        token = await alice.token()
        ws = await WsClient.open(server.url)
        try:
            params = {"channel": "executions", "token": token, "ratecounter": True, "snap_orders": False}
            ack = await ws.reply(await ws.request("subscribe", params))
            assert ack["result"]["maxratecount"] == TRADING_TIER_STARTER.threshold
        finally:
            await ws.close()
            await alice.close()

    asyncio.run(scenario())
