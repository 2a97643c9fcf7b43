"""krakenex (``query_public`` / ``query_private``) against a live server, two accounts, one lifecycle.

krakenex signs with ``nonce = int(1000 * time.time())``: two private calls within one millisecond
reuse a nonce and the second is refused (``EAPI:Invalid nonce``), on Kraken as here. A local server
answers in well under a millisecond, so ``Kx.private`` waits for the next millisecond first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from typing import Any

import krakenex
import pytest
from tests.harness import Server

pytestmark = pytest.mark.slow

PAIR = "XBTUSD"
USD = Decimal("0.0001")


def ceil_usd(x: Decimal) -> Decimal:
    return x.quantize(USD, rounding=ROUND_CEILING)


class Kx:
    """A krakenex API pointed at the server (doc §7.4: ``k.uri = server.url``)."""

    def __init__(self, server: Server, key: dict[str, Any]) -> None:
        self.api = krakenex.API(key=key["api_key"], secret=key["api_secret"])
        self.api.uri = server.url
        self.last_ms = 0

    def raw(self, method: str, data: dict[str, str] | None = None) -> dict[str, Any]:
        while int(time.time() * 1000) <= self.last_ms:
            time.sleep(0.0002)
        reply: dict[str, Any] = self.api.query_private(method, dict(data or {}))
        self.last_ms = int(time.time() * 1000)
        return reply

    def private(self, method: str, data: dict[str, str] | None = None) -> Any:
        reply = self.raw(method, data)
        assert reply["error"] == [], (method, data, reply)
        return reply["result"]

    def public(self, method: str, data: dict[str, str] | None = None) -> Any:
        reply = self.api.query_public(method, data)
        assert reply["error"] == [], (method, data, reply)
        return reply["result"]


@pytest.fixture
def pair_of_clients(server: Server) -> Iterator[tuple[Kx, Kx]]:
    a = Kx(server, server.account("alice", USD="1000"))
    b = Kx(server, server.account("bob", XBT="1"))
    try:
        yield a, b
    finally:
        a.api.close()
        b.api.close()


def test_lifecycle_with_two_accounts(pair_of_clients: tuple[Kx, Kx]) -> None:
    a, b = pair_of_clients
    assert isinstance(a.public("Time")["unixtime"], int)
    assert set(a.public("Assets", {"asset": "XBT,USD"})) == {"XXBT", "ZUSD"}
    assert a.public("AssetPairs", {"pair": PAIR})["XXBTZUSD"]["altname"] == PAIR
    # A bids with a userref, and rests a second bid by cl_ord_id
    order = {
        "pair": PAIR,
        "type": "buy",
        "ordertype": "limit",
        "volume": "0.01",
        "price": "30000",
        "oflags": "post",
    }
    bid = a.private("AddOrder", {**order, "userref": "99"})["txid"][0]
    other = a.private("AddOrder", {**order, "price": "29000.0", "cl_ord_id": "kx-1"})["txid"][0]
    # B: a scheduled sell (starttm +1 h: pending), a GTD sell, then a market sell into A's bid
    sell = {**order, "type": "sell", "price": "35000", "volume": "0.001", "oflags": ""}
    later = b.private("AddOrder", {**sell, "starttm": "+3600"})["txid"][0]
    gtd = b.private("AddOrder", {**sell, "timeinforce": "GTD", "expiretm": "+3600"})["txid"][0]
    start_and_expiry = b.private("QueryOrders", {"txid": f"{later},{gtd}"})
    assert start_and_expiry[later]["status"] == "pending" and start_and_expiry[later]["starttm"] > time.time()
    assert start_and_expiry[gtd]["status"] == "open" and start_and_expiry[gtd]["expiretm"] > time.time()
    assert b.public("Depth", {"pair": PAIR, "count": "10"})["XXBTZUSD"]["asks"][0][:2] == [
        "35000.0",
        "0.00100000",
    ]
    assert b.private("AddOrder", {"pair": PAIR, "type": "sell", "ordertype": "market", "volume": "0.004"})
    # the fill, as A sees it
    cost = Decimal("30000.0") * Decimal("0.004")
    maker_fee = ceil_usd(cost * Decimal("0.0025"))
    got = a.private("QueryOrders", {"txid": bid, "trades": "true"})[bid]
    assert (got["status"], got["vol_exec"], got["userref"], got["cost"], got["fee"]) == (
        "open", "0.00400000", 99, f"{cost:.4f}", f"{maker_fee:.4f}"
    )  # fmt: skip
    (trade_id,) = got["trades"]
    history = a.private("TradesHistory")
    assert list(history["trades"]) == [trade_id] and history["count"] == 1
    assert a.private("QueryTrades", {"txid": trade_id}) == history["trades"]
    ledger = a.private("Ledgers", {"asset": "ZUSD,XXBT"})
    assert ledger["count"] == 3  # the deposit, and both legs of the fill
    assert {e["refid"] for e in ledger["ledger"].values() if e["type"] == "trade"} == {trade_id}
    assert a.private("QueryLedgers", {"id": ",".join(ledger["ledger"])}) == ledger["ledger"]
    # amend by cl_ord_id, cancel by cl_ord_id and by userref
    a.private("AmendOrder", {"cl_ord_id": "kx-1", "order_qty": "0.02"})
    assert a.private("QueryOrders", {"txid": other})[other]["vol"] == "0.02000000"
    assert a.private("CancelOrder", {"cl_ord_id": "kx-1"}) == {"count": 1}
    assert a.private("CancelOrder", {"txid": "99"}) == {"count": 1}
    assert a.raw("CancelOrder", {"txid": bid}) == {"error": ["EOrder:Unknown order"]}
    assert b.private("CancelAll") == {"count": 2}
    # errors come back as data, HTTP 200
    assert a.raw("AddOrder", {**order, "volume": "1"}) == {"error": ["EOrder:Insufficient funds"]}
    # balances and trade balance, to the last decimal
    a_usd = Decimal(1000) - cost - maker_fee
    assert a.private("Balance") == {"ZUSD": f"{a_usd:.4f}", "XXBT": "0.0040000000"}
    assert a.private("TradeBalance")["eb"] == f"{a_usd + Decimal('0.004') * Decimal('30000.0'):.4f}"
    b_usd = cost - ceil_usd(cost * Decimal("0.0040"))
    assert b.private("BalanceEx") == {
        "XXBT": {"balance": "0.9960000000", "hold_trade": "0.0000000000"},
        "ZUSD": {"balance": f"{b_usd:.4f}", "hold_trade": "0.0000"},
    }
