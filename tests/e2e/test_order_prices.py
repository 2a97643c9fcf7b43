"""An order's prices on REST (doc §4.2): ``price``, the average of its trade prices, which ccxt reads
as ``average``, and ``descr.price`` / ``descr.price2`` after an amend.

Expected values are written out from the trades each test makes: the average is
``sum(price * volume) / sum(volume)`` rounded half-even to XBTUSD's 1 decimal; ``cost`` is what the
account paid or received at ZUSD's 4 decimals (a buyer the ceiling, a seller the floor), as its
ledger shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ccxt
import httpx
import pytest
from tests.e2e.test_bad_requests import Signer
from tests.e2e.test_ccxt import clients  # noqa: F401 - the two funded ccxt clients, a fixture
from tests.harness import Server

pytestmark = pytest.mark.slow

SYMBOL = "BTC/USD"
PAIR = "XBTUSD"


@pytest.fixture
def signers(server: Server) -> Iterator[tuple[Signer, Signer]]:
    """Alice (funded with USD) and Bob (funded with XBT), signing raw form requests."""
    a = server.account("alice", USD="10000")
    b = server.account("bob", XBT="1")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield Signer(http, a), Signer(http, b)


def _limit(s: Signer, side: str, volume: str, price: str, **extra: str) -> str:
    order = {"pair": PAIR, "type": side, "ordertype": "limit", "volume": volume, "price": price}
    txid: str = s.ok("AddOrder", {**order, **extra})["txid"][0]
    return txid


def _order(s: Signer, txid: str) -> Any:
    return s.ok("QueryOrders", {"txid": txid})[txid]


# --- the average price ----------------------------------------------------------------------------


def test_ccxt_average_is_the_trade_price_when_the_cost_was_rounded(
    clients: tuple[ccxt.kraken, ccxt.kraken],  # noqa: F811 - pytest's fixture, from test_ccxt
) -> None:
    a, b = clients
    a.load_markets()
    b.load_markets()
    # 0.00005 XBT at 30000.1 costs 1.500005 USD: the buyer pays 1.5001, the seller receives 1.5000
    sell = b.create_order(SYMBOL, "limit", "sell", 0.00005, 30000.1)
    buy = a.create_order(SYMBOL, "limit", "buy", 0.00005, 30000.1)
    bought, sold = a.fetch_order(buy["id"]), b.fetch_order(sell["id"])
    assert (bought["status"], sold["status"]) == ("closed", "closed")
    assert bought["average"] == sold["average"] == 30000.1  # was 30002.0 and 30000.0
    assert bought["info"]["price"] == sold["info"]["price"] == "30000.1"
    assert bought["average"] <= bought["price"]  # never above the buyer's own limit
    assert (bought["info"]["cost"], sold["info"]["cost"]) == ("1.5001", "1.5000")
    # ``cost`` is what each account's ledger shows for the trade
    (a_entry,) = [e for e in a.fetch_ledger("USD") if e["info"]["type"] == "trade"]
    (b_entry,) = [e for e in b.fetch_ledger("USD") if e["info"]["type"] == "trade"]
    assert (a_entry["info"]["amount"], b_entry["info"]["amount"]) == ("-1.5001", "1.5000")
    (a_closed,) = a.fetch_closed_orders(SYMBOL)
    assert a_closed["average"] == 30000.1


def test_the_average_of_several_fills_is_volume_weighted_and_rounded_half_even(
    signers: tuple[Signer, Signer],
) -> None:
    a, b = signers
    # 1. two fills, 0.0001 at 30000.0 and at 30000.1: 30000.05, a tie, to the even 30000.0; the
    #    rest of the buy stays open, so OpenOrders shows the average too
    asks = [_limit(b, "sell", "0.0001", "30000.0"), _limit(b, "sell", "0.0001", "30000.1")]
    partial = _limit(a, "buy", "0.0003", "30000.1")
    (shown,) = a.ok("OpenOrders")["open"].values()
    assert (shown["vol_exec"], shown["price"]) == ("0.00020000", "30000.0")
    assert a.ok("CancelOrder", {"txid": partial}) == {"count": 1}
    # 2. at 30000.1 and 30000.2: 30000.15, a tie, to the even 30000.2
    asks += [_limit(b, "sell", "0.0001", "30000.1"), _limit(b, "sell", "0.0001", "30000.2")]
    tie_up = _limit(a, "buy", "0.0002", "30000.2")
    # 3. 0.0001 at 30000.0 and 0.0002 at 30000.1: 30000.0666..., to 30000.1
    asks += [_limit(b, "sell", "0.0001", "30000.0"), _limit(b, "sell", "0.0002", "30000.1")]
    weighted = _limit(a, "buy", "0.0003", "30000.1")

    expected = {partial: "30000.0", tie_up: "30000.2", weighted: "30000.1"}
    assert {t: _order(a, t)["price"] for t in expected} == expected
    closed = a.ok("ClosedOrders")
    assert closed["count"] == 3
    assert {t: info["price"] for t, info in closed["closed"].items()} == expected
    with_trades = a.ok("QueryOrders", {"txid": ",".join(expected), "trades": "true"})
    assert {t: info["price"] for t, info in with_trades.items()} == expected
    assert [len(with_trades[t]["trades"]) for t in expected] == [2, 2, 2]
    # each ask filled at its own price
    for txid, info in b.ok("QueryOrders", {"txid": ",".join(asks)}).items():
        assert info["status"] == "closed" and info["price"] == info["descr"]["price"], txid


# --- descr after an amend -------------------------------------------------------------------------


def test_descr_shows_a_relative_price_as_written_until_an_amend_then_the_current_one(
    signers: tuple[Signer, Signer],
) -> None:
    a, b = signers
    _limit(b, "sell", "0.001", "20000.1")
    _limit(a, "buy", "0.001", "20000.1")  # the last trade, which relative prices start from

    bid = _limit(a, "buy", "0.001", "-100")
    descr = _order(a, bid)["descr"]
    assert (descr["price"], descr["order"]) == ("-100", "buy 0.00100000 XBTUSD @ limit -100")
    assert _order(a, bid)["limitprice"] == "19900.1"
    for amend, price in (("19000.5", "19000.5"), ("-1%", "19800.0")):  # 19800.099, down for a buy
        a.ok("AmendOrder", {"txid": bid, "limit_price": amend})
        info = _order(a, bid)
        assert (info["descr"]["price"], info["limitprice"]) == (price, price)
        assert info["descr"]["order"] == f"buy 0.00100000 XBTUSD @ limit {price}"
        assert a.ok("OpenOrders")["open"][bid]["descr"] == info["descr"]

    # any amend shows the order as it now is: its size changed, its price resolved long ago
    sized = _limit(a, "buy", "0.002", "-200")
    a.ok("AmendOrder", {"txid": sized, "order_qty": "0.001"})
    assert _order(a, sized)["descr"]["order"] == "buy 0.00100000 XBTUSD @ limit 19800.1"

    # a stop-limit's trigger and limit, both relative: the limit stays where "-5" put it (19895.1)
    # when the trigger moves, so "-5" would now describe a limit 195 below the trigger
    stop = _limit(b, "sell", "0.001", "-100", ordertype="stop-loss-limit", price2="-5")
    assert (_order(b, stop)["descr"]["price"], _order(b, stop)["descr"]["price2"]) == ("-100", "-5")
    b.ok("AmendOrder", {"txid": stop, "trigger_price": "19700.0"})
    descr = _order(b, stop)["descr"]
    assert (descr["price"], descr["price2"]) == ("19700.0", "19895.1")
    assert descr["order"] == "sell 0.00100000 XBTUSD @ stop loss 19700.0 -> limit 19895.1"
    b.ok("AmendOrder", {"txid": stop, "limit_price": "19690.0"})
    assert _order(b, stop)["descr"]["order"] == "sell 0.00100000 XBTUSD @ stop loss 19700.0 -> limit 19690.0"

    # an absolute stop-limit amended: the trigger and the limit it has now
    plain = _limit(b, "sell", "0.001", "25000.0", ordertype="take-profit-limit", price2="25010.0")
    b.ok("AmendOrder", {"txid": plain, "trigger_price": "30000.0", "limit_price": "30010.0"})
    descr = _order(b, plain)["descr"]
    assert (descr["price"], descr["price2"]) == ("30000.0", "30010.0")
    assert a.ok("CancelAll") == {"count": 2} and b.ok("CancelAll") == {"count": 2}
