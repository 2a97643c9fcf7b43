"""Scaled out, the order history endpoints answer on every gateway: an order amended and filled
through one gateway shows its amend log, its trades' ledger entries and the fee schedule on the other
(the engine's writer puts the log in PostgreSQL; each gateway reads it there)."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest
from tests.cluster.harness import Cluster
from tests.cluster.test_cluster import kraken

pytestmark = pytest.mark.slow


def test_amends_ledgers_and_fee_schedule_through_both_gateways(cluster: Cluster) -> None:
    cluster.start()
    g0, g1 = cluster.gateways
    alice_key = g0.account("alice", USD="1000")
    bob_key = g1.account("bob", XBT="1")
    alice0, alice1 = kraken(g0, alice_key), kraken(g1, alice_key)
    bob1 = kraken(g1, bob_key)
    bid = alice0.create_order("BTC/USD", "limit", "buy", 0.01, 50000)["id"]
    amended = alice0.private_post_amendorder({"txid": bid, "limit_price": "50100"})["result"]["amend_id"]
    bob1.create_order("BTC/USD", "market", "sell", 0.004)

    log = alice1.private_post_orderamends({"order_id": bid})["result"]
    assert log["count"] == 2
    assert [(a["amend_type"], a["limit_price"], a["remaining_qty"]) for a in log["amends"]] == [
        ("original", "50000.0", "0.01000000"),
        ("user", "50100.0", "0.01000000"),
    ]
    assert log["amends"][1]["amend_id"] == amended
    with pytest.raises(ccxt.InvalidOrder, match="EOrder:Invalid order"):  # another account's order
        bob1.private_post_orderamends({"order_id": bid})

    trades = alice1.private_post_tradeshistory({"ledgers": "true"})["result"]["trades"]
    assert len(trades) == 1
    ((txid, trade),) = trades.items()
    entries = alice0.private_post_queryledgers({"id": ",".join(trade["ledgers"])})["result"]
    assert {e["asset"] for e in entries.values()} == {"ZUSD", "XXBT"}
    assert all(e["refid"] == txid for e in entries.values())
    assert Decimal(entries[trade["ledgers"][0]]["amount"]) != 0

    volume = alice1.private_post_tradevolume({"pair": "XBTUSD", "fee_schedule": "true"})["result"]
    (schedule,) = volume["schedules"]
    assert schedule["pair"] == "XBTUSD" and schedule["tiers"][0]["active"] is True
    for g in (g0, g1):
        assert g.status()["audit"] == []
