"""Stateless gateways: a WebSocket token, a nonce and a call counter mean the same on every gateway."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster
from tests.e2e.test_ws_kit import Rest, WsClient
from tests.harness import Server

pytestmark = pytest.mark.slow


def test_private_feeds_nonces_and_counters_are_shared(cluster: Cluster, tmp_path: Path) -> None:
    cluster.config = tmp_path / "limits.toml"
    cluster.config.write_text('[limits]\nrest_tier = "starter"\ntrading_tier = "starter"\n')
    cluster.start(engines=1)
    g0, g1 = cluster.gateways

    async def scenario() -> None:
        alice_key = g0.account("alice", USD="100000")
        bob0_key = g1.account("bob", XBT="10")
        bob0 = Rest(g0.url, bob0_key)
        alice0 = Rest(g0.url, alice_key)
        # a token from gateway 0 opens a private feed on gateway 1
        token = await alice0.token()
        ws = await WsClient.open(g1.url)
        req = await ws.request("subscribe", {"channel": "executions", "token": token})
        assert (await ws.reply(req))["success"]
        await ws.data("executions", "snapshot")
        order = {"order_type": "limit", "side": "buy", "order_qty": 0.5, "symbol": "BTC/USD",
                 "limit_price": 30000, "token": token}  # fmt: skip
        req = await ws.request("add_order", order)
        added = await ws.reply(req)
        assert added["success"], added
        order_id = added["result"]["order_id"]
        # bob trades through gateway 0: alice's feed on gateway 1 reports the fill
        await bob0.private("AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.2")
        fill = await ws.until(lambda f: f.get("channel") == "executions"
                              and any(e["exec_type"] == "trade" for e in f["data"]))  # fmt: skip
        assert fill["data"][0]["order_id"] == order_id and str(fill["data"][0]["last_qty"]) == "0.20000000"
        await ws.close()

        # a nonce accepted by gateway 0 is refused by gateway 1
        alice1 = Rest(g1.url, alice_key)
        assert (await alice0.private_raw("Balance"))["error"] == []
        alice1.nonce = alice0.nonce - 1  # its next request reuses alice0's last nonce
        assert (await alice1.private_raw("Balance"))["error"] == ["EAPI:Invalid nonce"]
        alice1.nonce = alice0.nonce + 10

        # one REST call counter for the key (starter: 15, decaying 0.33/s), whichever gateway
        clients = [Rest(g0.url, alice_key), Rest(g1.url, alice_key)]
        nonce = alice1.nonce
        answers = []
        for i in range(24):
            c = clients[i % 2]
            nonce += 1
            c.nonce = nonce - 1
            answers.append((await c.private_raw("Balance"))["error"])
        refused = [i for i, e in enumerate(answers) if e == ["EAPI:Rate limit exceeded"]]
        assert refused and refused[0] <= 16, answers  # per-gateway counters would allow about 30
        assert all(e in ([], ["EAPI:Rate limit exceeded"]) for e in answers)

        # one trading counter per (account, pair) (starter: 60, decaying 1/s), whichever gateway
        bob1 = Rest(g1.url, bob0_key)
        nonce = bob0.nonce
        outcomes = []
        for i in range(90):
            c = bob0 if i % 2 == 0 else bob1
            nonce += 1
            c.nonce = nonce - 1  # one increasing nonce sequence for the key, across both gateways
            answer = await c.private_raw("AddOrder", pair="XBTUSD", type="sell", ordertype="limit",
                                         volume="0.0001", price="90000")  # fmt: skip
            outcomes.append(answer["error"])
        first = next((i for i, e in enumerate(outcomes) if e == ["EOrder:Rate limit exceeded"]), -1)
        assert 55 <= first <= 70, outcomes  # per-gateway counters would allow about 120
        for c in (*clients, alice0, alice1, bob0, bob1):
            await c.close()

    asyncio.run(scenario())

    # marketdata: the same replica and market data, public endpoints only
    md = Server(
        cluster.data_dir, database=cluster.database, command="marketdata", extra=["--bus", cluster.bus]
    )
    md.start()
    try:
        with urllib.request.urlopen(md.url + "/0/public/Trades?pair=XBTUSD", timeout=10) as r:
            trades = json.loads(r.read())
        assert trades["error"] == [] and len(trades["result"]["XXBTZUSD"]) == 1  # bob's fill
        req = urllib.request.Request(md.url + "/0/private/Balance", data=b"nonce=1", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 404
        refused.value.close()
    finally:
        md.stop()
