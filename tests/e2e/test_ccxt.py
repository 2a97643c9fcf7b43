"""ccxt ``kraken`` (REST) against a live server: doc §9 step by step, then every order type and cancel.

Expected balances and fees are computed here from prices, volumes and the default fee schedule
(tier 0: maker 0.25 %, taker 0.40 %; fee in quote), with the house's rounding: a buyer pays the
ceiling of its order's cumulative cost and fee, a seller receives the floor of each fill's proceeds
less the ceiling of that fill's fee (all at ZUSD's 4 decimals).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import ccxt
import pytest
from tests.harness import Server

pytestmark = pytest.mark.slow

SYMBOL = "BTC/USD"
MAKER = Decimal("0.0025")
TAKER = Decimal("0.0040")
HOLD_FEE = Decimal("0.0040")  # an open buy holds the highest fee rate of the schedule
USD = Decimal("0.0001")
ORDER_ID = re.compile(r"^O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
TRADE_ID = re.compile(r"^T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
DMS_WAIT_S_MAX = 10.0


def ceil_usd(x: Decimal) -> Decimal:
    return x.quantize(USD, rounding=ROUND_CEILING)


def floor_usd(x: Decimal) -> Decimal:
    return x.quantize(USD, rounding=ROUND_FLOOR)


def usd(x: Decimal) -> str:
    return f"{x:.4f}"


def btc(x: Decimal) -> str:
    return f"{x:.10f}"


def kraken(server: Server, key: dict[str, Any]) -> ccxt.kraken:
    """doc §7.1: both URL keys overridden, throttling off."""
    ex = ccxt.kraken({"apiKey": key["api_key"], "secret": key["api_secret"], "enableRateLimit": False})
    ex.urls["api"] = {"public": server.url, "private": server.url}
    return ex


@pytest.fixture
def clients(server: Server) -> Iterator[tuple[ccxt.kraken, ccxt.kraken]]:
    """A (maker, funded with USD) and B (taker, funded with BTC), each with its own key."""
    a = kraken(server, server.account("alice", USD="1000"))
    b = kraken(server, server.account("bob", XBT="1"))
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def balance_ex(ex: ccxt.kraken) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = ex.fetch_balance()["info"]["result"]
    return result


# --- doc §9, step by step -------------------------------------------------------------------------


def test_doc_section_9_scenario(server: Server, clients: tuple[ccxt.kraken, ccxt.kraken]) -> None:
    a, b = clients
    # 1. markets
    markets = a.load_markets()
    market = markets[SYMBOL]
    assert (market["id"], market["altname"], market["base"], market["quote"]) == (
        "XXBTZUSD",
        "XBTUSD",
        "BTC",
        "USD",
    )
    assert market["precision"] == {"amount": 1e-08, "price": 0.1}
    assert market["limits"]["amount"]["min"] == 0.00005 and market["limits"]["cost"]["min"] == 0.5
    assert (market["maker"], market["taker"], market["active"]) == (0.0025, 0.004, True)
    # 2. balance
    assert balance_ex(a) == {"ZUSD": {"balance": "1000.0000", "hold_trade": "0.0000"}}
    # 3. a resting limit buy
    order = a.create_order(SYMBOL, "limit", "buy", 0.01, 30000)
    assert ORDER_ID.match(order["id"])
    assert order["info"] == {
        "descr": {"order": "buy 0.01000000 XBTUSD @ limit 30000.0"},
        "txid": [order["id"]],
    }
    assert (order["side"], order["type"], order["amount"], order["price"]) == ("buy", "limit", 0.01, 30000.0)
    # 4. it is open, and holds cost plus the highest fee
    (open_order,) = a.fetch_open_orders(SYMBOL)
    info = open_order["info"]
    assert open_order["id"] == order["id"] and open_order["status"] == "open"
    assert (info["status"], info["vol"], info["vol_exec"], info["price"]) == (
        "open",
        "0.01000000",
        "0.00000000",
        "0.0",
    )
    assert info["descr"]["pair"] == "XBTUSD" and info["oflags"] == "fciq"
    cost = Decimal("30000.0") * Decimal("0.01")
    hold = cost + ceil_usd(cost * HOLD_FEE)
    assert balance_ex(a) == {"ZUSD": {"balance": "1000.0000", "hold_trade": usd(hold)}}
    # 5. B sells at market: one fill, A maker and B taker
    b.load_markets()
    sold = b.create_order(SYMBOL, "market", "sell", 0.004)
    assert sold["info"]["descr"] == {"order": "sell 0.00400000 XBTUSD @ market"}
    # 6. A's order is partly filled
    fill_cost = Decimal("30000.0") * Decimal("0.004")
    maker_fee = ceil_usd(fill_cost * MAKER)
    fetched = a.fetch_order(order["id"])
    info = fetched["info"]
    assert (fetched["status"], fetched["filled"], fetched["remaining"], fetched["average"]) == (
        "open",
        0.004,
        0.006,
        30000.0,
    )
    assert (info["vol_exec"], info["cost"], info["fee"], info["price"]) == (
        "0.00400000",
        usd(fill_cost),
        usd(maker_fee),
        "30000.0",
    )
    assert fetched["fee"] == {"cost": usd(maker_fee), "rate": None, "currency": "USD"}
    (trade_id,) = info["trades"]
    assert TRADE_ID.match(trade_id)
    # 7. the trade as A sees it
    (trade,) = a.fetch_my_trades(SYMBOL)
    assert trade["id"] == trade_id and trade["order"] == order["id"] and trade["takerOrMaker"] == "maker"
    t = trade["info"]
    assert (t["ordertxid"], t["pair"], t["type"], t["ordertype"], t["price"], t["vol"]) == (
        order["id"], "XXBTZUSD", "buy", "limit", "30000.0", "0.00400000"
    )  # fmt: skip
    assert (t["cost"], t["fee"], t["maker"], t["trade_id"]) == ("120.00000", usd(maker_fee), True, 1)
    # 8. cancel
    assert a.cancel_order(order["id"])["info"] == {"error": [], "result": {"count": 1}}
    # 9. the canceled order, the closed list, and a second cancel
    fetched = a.fetch_order(order["id"])
    info = fetched["info"]
    assert (fetched["status"], info["status"], info["reason"], info["vol_exec"]) == (
        "canceled", "canceled", "User requested", "0.00400000"
    )  # fmt: skip
    assert info["closetm"] >= info["opentm"]
    assert [o["id"] for o in a.fetch_closed_orders()] == [order["id"]]
    with pytest.raises(ccxt.OrderNotFound):
        a.cancel_order(order["id"])
    # 10. balances after, to the last decimal, on both sides
    assert balance_ex(a) == {
        "ZUSD": {"balance": usd(Decimal(1000) - fill_cost - maker_fee), "hold_trade": "0.0000"},
        "XXBT": {"balance": "0.0040000000", "hold_trade": "0.0000000000"},
    }
    taker_fee = ceil_usd(fill_cost * TAKER)
    assert balance_ex(b) == {
        "XXBT": {"balance": btc(Decimal(1) - Decimal("0.004")), "hold_trade": "0.0000000000"},
        "ZUSD": {"balance": usd(floor_usd(fill_cost) - taker_fee), "hold_trade": "0.0000"},
    }
    (b_order,) = b.fetch_closed_orders()
    assert (b_order["id"], b_order["status"], b_order["filled"], b_order["info"]["reason"]) == (
        sold["id"], "closed", 0.004, None
    )  # fmt: skip


def test_odd_amounts_round_in_favour_of_the_house(clients: tuple[ccxt.kraken, ccxt.kraken]) -> None:
    a, b = clients
    price, volume = Decimal("30000.1"), Decimal("0.00123457")
    order = a.create_order(SYMBOL, "limit", "buy", float(volume), float(price))
    b.create_order(SYMBOL, "market", "sell", float(volume))
    cost = price * volume  # 37.037223457
    buyer_pays, seller_gets = ceil_usd(cost), floor_usd(cost)
    maker_fee, taker_fee = ceil_usd(cost * MAKER), ceil_usd(cost * TAKER)
    assert (buyer_pays, seller_gets, maker_fee, taker_fee) == tuple(
        map(Decimal, ("37.0373", "37.0372", "0.0926", "0.1482"))
    )  # the independent arithmetic, spelled out
    fetched = a.fetch_order(order["id"])
    assert (fetched["status"], fetched["info"]["cost"], fetched["info"]["fee"]) == (
        "closed",
        usd(buyer_pays),
        usd(maker_fee),
    )
    assert balance_ex(a)["ZUSD"] == {"balance": usd(1000 - buyer_pays - maker_fee), "hold_trade": "0.0000"}
    assert balance_ex(b)["ZUSD"] == {"balance": usd(seller_gets - taker_fee), "hold_trade": "0.0000"}
    (trade,) = b.fetch_my_trades(SYMBOL)
    assert (trade["info"]["cost"], trade["info"]["fee"], trade["takerOrMaker"]) == (
        "37.03722",
        usd(taker_fee),
        "taker",
    )


# --- every order type, amend and every cancel -----------------------------------------------------


def _wait_status(ex: ccxt.kraken, order_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + DMS_WAIT_S_MAX
    while True:
        order: dict[str, Any] = ex.fetch_order(order_id)
        if order["status"] == status or time.monotonic() > deadline:
            return order
        time.sleep(0.1)


def test_order_types_amend_and_cancels(server: Server) -> None:
    a = kraken(server, server.account("alice", USD="10000"))
    b = kraken(server, server.account("bob", XBT="1"))
    try:
        _order_types_amend_and_cancels(a, b)
    finally:
        a.close()
        b.close()


def _order_types_amend_and_cancels(a: ccxt.kraken, b: ccxt.kraken) -> None:
    a.load_markets()
    b.load_markets()
    px = Decimal("30000.0")
    # iceberg through raw params (ccxt has no helper): only the display volume shows
    ice = b.create_order(
        SYMBOL, "limit", "sell", 0.003, 30000, {"ordertype": "iceberg", "displayvol": "0.001"}
    )
    assert ice["info"]["descr"] == {"order": "sell 0.00300000 XBTUSD @ limit 30000.0"}
    book = a.fetch_order_book(SYMBOL)
    assert [row[:2] for row in book["asks"]] == [[30000.0, 0.001]] and book["bids"] == []
    # market buy sized by cost (viqc): 15 USD buys 0.0005 BTC at 30000.0
    spend = Decimal(15)
    viqc = a.create_market_buy_order_with_cost(SYMBOL, float(spend))
    assert viqc["info"]["descr"] == {"order": "buy 15.00000000 XBTUSD @ market"}
    got = a.fetch_order(viqc["id"])
    assert (got["status"], got["filled"], got["info"]["cost"], got["info"]["oflags"]) == (
        "closed",
        0.0005,
        "15.0000",
        "fciq,viqc",
    )
    assert got["info"]["vol"] == "15.00000000" and got["info"]["reason"] is None
    viqc_fee = ceil_usd(spend * TAKER)
    assert got["info"]["fee"] == usd(viqc_fee)
    # IOC larger than what is left: takes the iceberg's 0.0025 and cancels the rest
    ioc = a.create_order(SYMBOL, "limit", "buy", 0.004, 30000, {"timeInForce": "IOC"})
    got = a.fetch_order(ioc["id"])
    assert (got["status"], got["filled"], got["info"]["reason"]) == (
        "canceled",
        0.0025,
        "Immediate or cancel",
    )
    ioc_cost = px * Decimal("0.0025")
    ioc_fee = ceil_usd(ioc_cost * TAKER)
    assert (got["info"]["cost"], got["info"]["fee"]) == (usd(ioc_cost), usd(ioc_fee))
    ice_done = b.fetch_order(ice["id"])
    assert (ice_done["status"], ice_done["type"], ice_done["filled"]) == ("closed", "iceberg", 0.003)
    # B was maker on every iceberg chunk: one fee per fill, each rounded up
    b_trades = b.fetch_my_trades(SYMBOL)
    assert {tr["takerOrMaker"] for tr in b_trades} == {"maker"}
    assert sum(Decimal(tr["info"]["vol"]) for tr in b_trades) == Decimal("0.003")
    b_fees = sum(ceil_usd(Decimal(tr["info"]["cost"]) * MAKER) for tr in b_trades)
    assert sum(Decimal(tr["info"]["fee"]) for tr in b_trades) == b_fees
    b_proceeds = sum(floor_usd(Decimal(tr["info"]["cost"])) for tr in b_trades)
    # triggered orders rest untriggered: stop-loss (market) and take-profit-limit
    stop = b.create_order(SYMBOL, "market", "sell", 0.001, None, {"stopLossPrice": 28000})
    assert stop["info"]["descr"] == {"order": "sell 0.00100000 XBTUSD @ stop loss 28000.0"}
    tpl = b.create_order(SYMBOL, "limit", "sell", 0.001, 31500, {"takeProfitPrice": 31000})
    assert tpl["info"]["descr"] == {"order": "sell 0.00100000 XBTUSD @ take profit 31000.0 -> limit 31500.0"}
    got = b.fetch_order(stop["id"])
    assert (got["status"], got["stopLossPrice"], got["info"]["descr"]["ordertype"]) == (
        "open",
        28000.0,
        "stop-loss",
    )
    got = b.fetch_order(tpl["id"])
    assert (got["status"], got["takeProfitPrice"], got["price"]) == ("open", 31000.0, 31500.0)
    # post-only with a client order id, and a userref
    post = a.create_order(
        SYMBOL, "limit", "buy", 0.002, 29000, {"postOnly": True, "clientOrderId": "ccxt-post-1"}
    )
    ref = a.create_order(SYMBOL, "limit", "buy", 0.001, 28500, {"userref": 42})
    got = a.fetch_order(post["id"])
    assert (got["postOnly"], got["clientOrderId"], got["info"]["oflags"]) == (
        True,
        "ccxt-post-1",
        "post,fciq",
    )
    assert a.fetch_order(ref["id"])["clientOrderId"] == "42"
    # amend in place (AmendOrder): same id, new quantity and price
    a.edit_order(post["id"], SYMBOL, "limit", "buy", 0.003, 29100)
    got = a.fetch_order(post["id"])
    assert (got["id"], got["amount"], got["price"], got["status"]) == (post["id"], 0.003, 29100.0, "open")
    assert "amended" in got["info"]["misc"].split(",")
    holds = [Decimal("29100.0") * Decimal("0.003"), Decimal("28500.0") * Decimal("0.001")]
    a_hold = sum(c + ceil_usd(c * HOLD_FEE) for c in holds)
    a_usd = Decimal(10000) - spend - viqc_fee - ioc_cost - ioc_fee
    assert balance_ex(a)["ZUSD"] == {"balance": usd(a_usd), "hold_trade": usd(a_hold)}
    assert balance_ex(b)["XXBT"] == {"balance": btc(Decimal("0.997")), "hold_trade": btc(Decimal("0.002"))}
    assert {o["id"] for o in a.fetch_open_orders(SYMBOL)} == {post["id"], ref["id"]}
    assert {o["id"] for o in b.fetch_open_orders(SYMBOL)} == {stop["id"], tpl["id"]}
    # AddOrderBatch, then cancel a batch, cancel all, and the dead man's switch
    batch = a.create_orders([
        {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 0.001, "price": 27000},
        {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 0.001, "price": 27100},
    ])  # fmt: skip
    assert all(ORDER_ID.match(o["id"]) for o in batch)
    canceled = a.cancel_orders([post["id"], ref["id"]])
    assert canceled[0]["info"] == {"error": [], "result": {"count": 2}}
    assert a.fetch_order(post["id"])["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        a.cancel_order(ref["id"])
    assert b.cancel_all_orders()[0]["info"]["result"] == {"count": 2}
    assert a.cancel_all_orders()[0]["info"]["result"] == {"count": 2}
    armed = a.cancel_all_orders_after(60_000)
    assert armed["result"]["triggerTime"] > armed["result"]["currentTime"]
    assert a.cancel_all_orders_after(0)["result"]["triggerTime"] == "0"
    doomed = a.create_order(SYMBOL, "limit", "buy", 0.001, 20000)
    a.cancel_all_orders_after(1000)
    got = _wait_status(a, doomed["id"], "canceled")
    assert got["status"] == "canceled"
    # everything settled: balances, trades, ledgers, fees
    assert balance_ex(a) == {
        "ZUSD": {"balance": usd(a_usd), "hold_trade": "0.0000"},
        "XXBT": {"balance": btc(Decimal("0.003")), "hold_trade": "0.0000000000"},
    }
    assert balance_ex(b) == {
        "XXBT": {"balance": btc(Decimal("0.997")), "hold_trade": "0.0000000000"},
        "ZUSD": {"balance": usd(b_proceeds - b_fees), "hold_trade": "0.0000"},
    }
    a_trades = a.fetch_my_trades(SYMBOL)
    assert {tr["takerOrMaker"] for tr in a_trades} == {"taker"}
    assert sum(Decimal(tr["info"]["fee"]) for tr in a_trades) == viqc_fee + ioc_fee
    ioc_trade_ids = a.fetch_order(ioc["id"])["info"]["trades"]
    by_query = a.fetch_order_trades(ioc["id"], SYMBOL, params={"trades": ioc_trade_ids})
    assert sorted(tr["id"] for tr in by_query) == sorted(ioc_trade_ids)
    assert sum(Decimal(tr["info"]["vol"]) for tr in by_query) == Decimal("0.0025")
    ledger = a.fetch_ledger("USD")
    assert [e["type"] for e in ledger].count("transaction") == 1  # the deposit
    # fills of one taker order share a timestamp, so ccxt's time sort cannot order them; A only spends
    # USD after its deposit, so the lowest balance is the last one
    assert min(Decimal(e["info"]["balance"]) for e in ledger) == a_usd
    assert sum(Decimal(e["info"]["amount"]) - Decimal(e["info"]["fee"]) for e in ledger) == a_usd
    by_ids = a.fetch_ledger_entries_by_ids([e["id"] for e in ledger])  # QueryLedgers
    assert sorted(e["id"] for e in by_ids) == sorted(e["id"] for e in ledger)
    assert a.fetch_ledger_entry(ledger[0]["id"])["info"] == ledger[0]["info"]
    assert {o["id"] for o in a.fetch_closed_orders(SYMBOL)} >= {
        viqc["id"],
        ioc["id"],
        post["id"],
        doomed["id"],
    }
    fee = a.fetch_trading_fee(SYMBOL)
    assert (fee["maker"], fee["taker"]) == (0.0025, 0.004)
