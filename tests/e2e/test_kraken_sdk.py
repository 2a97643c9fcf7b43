"""python-kraken-sdk (REST) against a live server: a two-account lifecycle, and its exception classes.

The SDK is pointed at the server the way doc §7.3 says: by patching ``SpotClient.URL`` (``Trade`` makes
an internal ``Market()`` with the class default). Expected money is computed here from prices, volumes
and the tier-0 rates (maker 0.25 %, taker 0.40 %, fee in quote), with the house's rounding.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from kraken.base_api import SpotClient
from kraken.exceptions import (
    KrakenCostMinimumNotMetError,
    KrakenDeadlineElapsedError,
    KrakenInsufficientFundsError,
    KrakenInvalidAPIKeyError,
    KrakenInvalidArgumentsError,
    KrakenInvalidNonceError,
    KrakenInvalidOrderError,
    KrakenInvalidPriceError,
    KrakenInvalidSignatureError,
    KrakenMarketInOnlyCancelModeError,
    KrakenMarketInOnlyPostModeError,
    KrakenOrderMinimumNotMetError,
    KrakenPermissionDeniedError,
    KrakenServiceUnavailableError,
    KrakenUnknownAssetError,
    KrakenUnknownMethodError,
    KrakenUnknownOrderError,
)
from kraken.spot import Market, Trade, User
from tests.harness import Server

from abyssal.core import ids
from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow

PAIR = "XBTUSD"
MAKER = Decimal("0.0025")
TAKER = Decimal("0.0040")
HOLD_FEE = Decimal("0.0040")
USD = Decimal("0.0001")


def ceil_usd(x: Decimal) -> Decimal:
    return x.quantize(USD, rounding=ROUND_CEILING)


def floor_usd(x: Decimal) -> Decimal:
    return x.quantize(USD, rounding=ROUND_FLOOR)


def usd(x: Decimal) -> str:
    return f"{x:.4f}"


def btc(x: Decimal) -> str:
    return f"{x:.10f}"


def close_sdk(client: SpotClient) -> None:
    """The SDK's clients never close their requests session (``__exit__`` is a no-op); an unclosed
    socket is a ResourceWarning, which this suite turns into an error. Close them by hand."""
    market = getattr(client, "_Trade__market", None)
    if market is not None:
        close_sdk(market)
    client._SpotClient__session.close()  # type: ignore[attr-defined]


@pytest.fixture
def sdk_url(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setattr(SpotClient, "URL", server.url)
    return server


@pytest.fixture
def clients(sdk_url: Server) -> Iterator[dict[str, Any]]:
    server = sdk_url
    a = server.account("alice", USD="2000")
    b = server.account("bob", XBT="1")
    made: dict[str, Any] = {
        "market": Market(),
        "user_a": User(key=a["api_key"], secret=a["api_secret"]),
        "trade_a": Trade(key=a["api_key"], secret=a["api_secret"]),
        "user_b": User(key=b["api_key"], secret=b["api_secret"]),
        "trade_b": Trade(key=b["api_key"], secret=b["api_secret"]),
    }
    try:
        yield made
    finally:
        for client in made.values():
            close_sdk(client)


def test_lifecycle_with_two_accounts(clients: dict[str, Any]) -> None:
    market: Market = clients["market"]
    ua: User = clients["user_a"]
    ta: Trade = clients["trade_a"]
    ub: User = clients["user_b"]
    tb: Trade = clients["trade_b"]
    assert market.get_system_status()["status"] == "online"
    assert market.get_asset_pairs(pair="BTC/USD")["BTC/USD"]["pair_decimals"] == 1
    assert ua.get_balances() == {"ZUSD": {"balance": "2000.0000", "hold_trade": "0.0000"}}
    assert ub.get_balance("XBT") == {"currency": "XXBT", "balance": 1.0, "available_balance": 1.0}

    # A: a post-only bid with a cl_ord_id, a truncated bid with a userref, and a validate-only order
    post = ta.create_order(
        ordertype="limit", side="buy", pair=PAIR, volume="0.01", price="25000", oflags=["post", "fciq"],
        cl_ord_id="sdk-post",
    )["txid"][0]  # fmt: skip
    placed = ta.create_order(
        ordertype="limit",
        side="buy",
        pair=PAIR,
        volume=0.0123456789,
        price=25000.06,
        truncate=True,
        userref=7,
    )
    assert placed["descr"] == {"order": "buy 0.01234567 XBTUSD @ limit 25000.0"}
    ref = placed["txid"][0]
    checked = ta.create_order(
        ordertype="limit", side="buy", pair=PAIR, volume="0.01", price="1000", validate=True
    )
    assert checked == {"descr": {"order": "buy 0.01000000 XBTUSD @ limit 1000.0"}}
    # AmendOrder keeps the txid; EditOrder replaces the order
    assert set(ta.amend_order(txid=post, limit_price="25100")) == {"amend_id"}
    edited = ta.edit_order(txid=ref, pair=PAIR, price="24000")
    assert (edited["status"], edited["originaltxid"], edited["price"], edited["volume"]) == (
        "ok", ref, "24000.0", "0.01234567"
    )  # fmt: skip
    new_ref = edited["txid"]
    info = ua.get_orders_info(txid=[post, ref, new_ref])
    assert info[post]["descr"]["price"] == "25100.0" and info[post]["limitprice"] == "25100.0"
    assert info[post]["cl_ord_id"] == "sdk-post" and "amended" in info[post]["misc"]
    assert (info[ref]["status"], info[ref]["reason"]) == ("canceled", "Order replaced")
    assert (info[new_ref]["status"], info[new_ref]["userref"], info[new_ref]["descr"]["price"]) == (
        "open",
        7,
        "24000.0",
    )

    # B sells at market into A's amended bid
    px1, vol1 = Decimal("25100.0"), Decimal("0.004")
    tb.create_order(ordertype="market", side="sell", pair=PAIR, volume=float(vol1))
    # B rests a stop-loss, a take-profit-limit and an iceberg; none of the triggers is reached
    stop = tb.create_order(ordertype="stop-loss", side="sell", pair=PAIR, volume="0.001", price="24500")[
        "txid"
    ][0]
    tpl = tb.create_order(
        ordertype="take-profit-limit", side="sell", pair=PAIR, volume="0.001", price="27000", price2="27100"
    )["txid"][0]
    ice = tb.create_order(
        ordertype="iceberg", side="sell", pair=PAIR, volume="0.003", price="26500", displayvol="0.001"
    )["txid"][0]
    book = market.get_order_book(pair=PAIR, count=10)["XXBTZUSD"]
    assert [row[:2] for row in book["asks"]] == [["26500.0", "0.00100000"]]
    # A takes with an IOC (two iceberg chunks), then buys for 20 USD (viqc)
    px2, vol2 = Decimal("26500.0"), Decimal("0.002")
    ioc = ta.create_order(
        ordertype="limit", side="buy", pair=PAIR, volume="0.002", price="26500", timeinforce="IOC"
    )
    spend = Decimal(20)
    viqc = ta.create_order(ordertype="market", side="buy", pair=PAIR, volume=str(spend), oflags="viqc")
    assert viqc["descr"] == {"order": "buy 20.00000000 XBTUSD @ market"}
    vol3 = (spend / px2).quantize(Decimal("0.00000001"), rounding=ROUND_FLOOR)
    info = ua.get_orders_info(txid=[post, ioc["txid"][0], viqc["txid"][0]], trades=True)
    assert (info[post]["status"], info[post]["vol_exec"], len(info[post]["trades"])) == (
        "open",
        "0.00400000",
        1,
    )
    assert (info[ioc["txid"][0]]["status"], len(info[ioc["txid"][0]]["trades"])) == ("closed", 2)
    assert (info[viqc["txid"][0]]["status"], info[viqc["txid"][0]]["vol_exec"]) == ("closed", f"{vol3:.8f}")

    # money, computed independently
    c1, c2, c3 = px1 * vol1, px2 * vol2, px2 * vol3
    a_fees = ceil_usd(c1 * MAKER) + ceil_usd(c2 * TAKER) + ceil_usd(c3 * TAKER)
    a_paid = ceil_usd(c1) + ceil_usd(c2) + ceil_usd(c3)
    chunk = px2 * Decimal("0.001")  # each iceberg chunk is its own fill, fee rounded per fill
    b_gets = (floor_usd(c1) - ceil_usd(c1 * TAKER)) + 2 * (floor_usd(chunk) - ceil_usd(chunk * MAKER))
    b_gets += floor_usd(c3) - ceil_usd(c3 * MAKER)
    # holds: each open buy reserved cost + the schedule's highest fee when placed (or amended); a fill
    # shrinks the hold by exactly what it paid (docs/architecture.md, step 8), so the maker fee saved
    # on the filled part stays held until the order closes
    post_hold = ceil_usd(px1 * Decimal("0.01")) + ceil_usd(px1 * Decimal("0.01") * HOLD_FEE)
    edited_cost = Decimal("24000.0") * Decimal("0.01234567")
    a_hold = (
        post_hold
        - ceil_usd(c1)
        - ceil_usd(c1 * MAKER)
        + ceil_usd(edited_cost)
        + ceil_usd(edited_cost * HOLD_FEE)
    )
    bought = vol1 + vol2 + vol3
    assert ua.get_balances() == {
        "ZUSD": {"balance": usd(2000 - a_paid - a_fees), "hold_trade": usd(a_hold)},
        "XXBT": {"balance": btc(bought), "hold_trade": btc(Decimal(0))},
    }
    assert ub.get_balances() == {
        "XXBT": {
            "balance": btc(1 - bought),
            "hold_trade": btc(Decimal("0.002") + Decimal("0.003") - vol2 - vol3),
        },
        "ZUSD": {"balance": usd(b_gets), "hold_trade": usd(Decimal(0))},
    }
    volume = ua.get_trade_volume(pair=PAIR)
    assert volume["volume"] == usd(a_paid)
    assert (volume["fees"][PAIR]["fee"], volume["fees_maker"][PAIR]["fee"]) == ("0.4000", "0.2500")

    # trades and ledgers, by history and by id
    history = ua.get_trades_history()
    assert history["count"] == 4 and len(history["trades"]) == 4
    assert sum(Decimal(t["fee"]) for t in history["trades"].values()) == a_fees
    assert sorted(t["maker"] for t in history["trades"].values()) == [False, False, False, True]
    by_id = ua.get_trades_info(txid=list(history["trades"]))
    assert by_id == history["trades"]
    ledger = ua.get_ledgers_info(asset="ZUSD")
    assert ledger["count"] == 5  # the deposit and one entry per fill
    assert (
        sum(Decimal(e["amount"]) - Decimal(e["fee"]) for e in ledger["ledger"].values())
        == 2000 - a_paid - a_fees
    )
    assert ua.get_ledgers(id_=list(ledger["ledger"])) == ledger["ledger"]

    # cancels: single (twice), batch, all, and the dead man's switch
    assert ta.cancel_order(txid=post) == {"count": 1}
    with pytest.raises(KrakenUnknownOrderError):
        ta.cancel_order(txid=post)
    assert ta.cancel_order_batch(orders=[new_ref]) == {"count": 1}
    assert set(ub.get_open_orders()["open"]) == {stop, tpl, ice}
    assert tb.cancel_all_orders() == {"count": 3}
    armed = tb.cancel_all_orders_after_x(60)
    assert set(armed) == {"currentTime", "triggerTime"} and armed["triggerTime"] > armed["currentTime"]
    assert tb.cancel_all_orders_after_x(0)["triggerTime"] == "0"
    closed = ub.get_closed_orders()
    assert closed["count"] == 4 and {stop, tpl, ice} <= set(closed["closed"])
    assert ua.get_open_orders() == {"open": {}}
    assert ua.get_balances()["ZUSD"]["hold_trade"] == "0.0000"
    assert ub.get_balances()["XXBT"] == {"balance": btc(1 - bought), "hold_trade": btc(Decimal(0))}


# --- exceptions: each Kraken error arrives as the SDK's own class ---------------------------------


@pytest.fixture(scope="module")
def shared_url(shared_server: Server) -> Iterator[Server]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SpotClient, "URL", shared_server.url)
        yield shared_server


@pytest.fixture(scope="module")
def trader(shared_url: Server) -> Iterator[Trade]:
    key = shared_url.account("sdk-errors", USD="1000")
    trade = Trade(key=key["api_key"], secret=key["api_secret"])
    try:
        yield trade
    finally:
        close_sdk(trade)


def _in_past(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


LIMIT = {"ordertype": "limit", "side": "buy", "pair": PAIR, "volume": "0.001", "price": "20000"}
ORDER_ERRORS = [
    ("insufficient funds", {"volume": "1"}, KrakenInsufficientFundsError),
    ("order minimum", {"volume": "0.00001"}, KrakenOrderMinimumNotMetError),
    ("cost minimum", {"volume": "0.00005", "price": "100"}, KrakenCostMinimumNotMetError),
    ("price decimals", {"price": "20000.05"}, KrakenInvalidPriceError),
    ("float volume with an exponent", {"volume": 0.00001}, KrakenInvalidArgumentsError),
    ("trigger=index", {"ordertype": "stop-loss", "trigger": "index"}, KrakenInvalidArgumentsError),
    ("unknown pair", {"pair": "XBTNOPE"}, KrakenUnknownAssetError),
    ("deadline elapsed", {"deadline": _in_past(10)}, KrakenDeadlineElapsedError),
]


@pytest.mark.parametrize(("change", "error"), [c[1:] for c in ORDER_ERRORS], ids=[c[0] for c in ORDER_ERRORS])
def test_order_errors_map_to_sdk_exceptions(
    trader: Trade, change: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        trader.create_order(**{**LIMIT, **change})


@pytest.mark.parametrize(
    ("mode", "change", "error"),
    [
        ("cancel_only", {}, KrakenMarketInOnlyCancelModeError),
        ("post_only", {"ordertype": "market", "price": None}, KrakenMarketInOnlyPostModeError),
        ("maintenance", {}, KrakenServiceUnavailableError),
    ],
)
def test_market_modes_map_to_sdk_exceptions(
    shared_url: Server, trader: Trade, mode: str, change: dict[str, Any], error: type[Exception]
) -> None:
    shared_url.admin("POST", "/admin/mode", {"pair": PAIR, "mode": mode})
    try:
        with pytest.raises(error):
            trader.create_order(**{**LIMIT, **change})
    finally:
        shared_url.admin("POST", "/admin/mode", {"pair": PAIR, "mode": "online"})


def test_order_id_errors_map_to_sdk_exceptions(trader: Trade) -> None:
    with pytest.raises(KrakenUnknownOrderError):
        trader.cancel_order(txid=ids.order_id(10**9))
    with pytest.raises(KrakenInvalidOrderError):
        trader.cancel_order(txid="not-an-order")
    with pytest.raises(KrakenUnknownMethodError):
        trader.request(method="POST", uri="/0/private/NoSuchMethod")


def test_authentication_errors_map_to_sdk_exceptions(shared_url: Server) -> None:
    key = shared_url.account("sdk-auth")
    other = shared_url.account("sdk-auth-other")
    limited = shared_url.admin(
        "POST", "/admin/accounts", {"name": "sdk-limited", "permissions": ["query_funds"]}
    )
    users = [
        User(key="K" * 56, secret=key["api_secret"]),
        User(key=key["api_key"], secret=other["api_secret"]),
        User(key=key["api_key"], secret=key["api_secret"]),
    ]
    trade = Trade(key=limited["api_key"], secret=limited["api_secret"])
    try:
        with pytest.raises(KrakenInvalidAPIKeyError):
            users[0].get_balances()
        with pytest.raises(KrakenInvalidSignatureError):
            users[1].get_balances()
        with pytest.raises(KrakenPermissionDeniedError):
            trade.create_order(**LIMIT)
        # a nonce above the SDK's (ms x 10^5) makes every later SDK nonce too low, as on Kraken
        _raise_nonce(shared_url, key, 2**63 - 1)  # the largest nonce the exchange takes
        with pytest.raises(KrakenInvalidNonceError):
            users[2].get_balances()
    finally:
        for client in [*users, trade]:
            close_sdk(client)


def _raise_nonce(server: Server, key: dict[str, Any], nonce: int) -> None:
    body = urllib.parse.urlencode({"nonce": str(nonce)}).encode()
    headers = {
        "API-Key": key["api_key"],
        "API-Sign": sign(key["api_secret"], "/0/private/Balance", str(nonce), body),
    }
    reply = httpx.post(server.url + "/0/private/Balance", content=body, headers=headers, timeout=10).json()
    assert reply["error"] == [], reply
    assert nonce > int(time.time() * 100_000_000)
