"""Public REST shapes (doc §3) on a live server after a few trades: every field, type and order.

One server for the module: a maker rests two asks and two bids on XBTUSD, a taker buys at market
(0.05 at 30010.0) and sells with a crossing limit (0.02 at 29990.0). Every expected value below is
derived from those six orders.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
from tests.harness import Server

from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow

PAIR_ID = "XXBTZUSD"
TRADES = [  # (price, volume, taker side, taker order type), oldest first
    (Decimal("30010.0"), Decimal("0.05"), "b", "m"),
    (Decimal("29990.0"), Decimal("0.02"), "s", "l"),
]
MAKER_ORDERS = [  # (side, price, volume)
    ("sell", "30010.0", "0.1"),
    ("sell", "30020.0", "0.2"),
    ("buy", "29990.0", "0.1"),
    ("buy", "29980.0", "0.3"),
]
ASKS_AFTER = [["30010.0", "0.05000000"], ["30020.0", "0.20000000"]]
BIDS_AFTER = [["29990.0", "0.08000000"], ["29980.0", "0.30000000"]]


@dataclass
class Market:
    http: httpx.Client
    server: Server
    day_before: str  # UTC date when the trades were made ("today" fields depend on it)

    def get(self, method: str, **params: str) -> Any:
        response = self.http.get(f"/0/public/{method}", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        reply = json.loads(response.text, parse_float=Decimal)  # times and numbers exactly as sent
        assert set(reply) == {"error", "result"} and reply["error"] == [], reply
        return reply["result"]

    def same_day(self) -> bool:
        return _utc_day() == self.day_before


def _utc_day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _private(http: httpx.Client, key: dict[str, Any], method: str, **params: str) -> Any:
    nonce = str(time.time_ns())
    body = urllib.parse.urlencode({"nonce": nonce, **params}).encode()
    path = f"/0/private/{method}"
    headers = {"API-Key": key["api_key"], "API-Sign": sign(key["api_secret"], path, nonce, body)}
    reply = http.post(path, content=body, headers=headers).json()
    assert reply["error"] == [], reply
    return reply["result"]


@pytest.fixture(scope="module")
def market(shared_server: Server) -> Iterator[Market]:
    maker = shared_server.account("maker", USD="100000", XBT="10")
    taker = shared_server.account("taker", USD="100000", XBT="10")
    day = _utc_day()
    with httpx.Client(base_url=shared_server.url, timeout=10) as http:
        for side, price, volume in MAKER_ORDERS:
            _private(
                http,
                maker,
                "AddOrder",
                pair="XBTUSD",
                type=side,
                ordertype="limit",
                price=price,
                volume=volume,
            )
        _private(http, taker, "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.05")
        _private(
            http,
            taker,
            "AddOrder",
            pair="XBTUSD",
            type="sell",
            ordertype="limit",
            price="29990.0",
            volume="0.02",
        )
        yield Market(http, shared_server, day)


def _vwap(trades: list[tuple[Decimal, Decimal, str, str]]) -> str:
    cost = sum(p * v for p, v, _, _ in trades)
    volume = sum(v for _, v, _, _ in trades)
    return str((cost / volume).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


def test_time(market: Market) -> None:
    before = int(time.time())
    result = market.get("Time")
    assert set(result) == {"unixtime", "rfc1123"}
    assert isinstance(result["unixtime"], int) and before <= result["unixtime"] <= time.time() + 1
    assert re.fullmatch(
        r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \+0000", result["rfc1123"]
    )
    moment = datetime.strptime(result["rfc1123"], "%a, %d %b %y %H:%M:%S +0000").replace(tzinfo=UTC)
    assert int(moment.timestamp()) == result["unixtime"]


def test_system_status_follows_the_system_mode(market: Market) -> None:
    result = market.get("SystemStatus")
    assert set(result) == {"status", "timestamp"} and result["status"] == "online"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", result["timestamp"])
    market.server.admin("POST", "/admin/mode", {"pair": "system", "mode": "cancel_only"})
    try:
        assert market.get("SystemStatus")["status"] == "cancel_only"
        assert market.get("AssetPairs", pair="XBTUSD")[PAIR_ID]["status"] == "cancel_only"
    finally:
        market.server.admin("POST", "/admin/mode", {"pair": "system", "mode": "online"})
    assert market.get("SystemStatus")["status"] == "online"


XXBT = {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5, "collateral_value": 1,
        "status": "enabled"}  # fmt: skip
ZUSD = {"aclass": "currency", "altname": "USD", "decimals": 4, "display_decimals": 2, "collateral_value": 1,
        "status": "enabled"}  # fmt: skip


def test_assets_all_and_filtered_by_id_and_altname(market: Market) -> None:
    everything = market.get("Assets")
    assert {"XXBT", "XETH", "ZUSD", "ZEUR", "SOL", "USDT"} <= set(everything)
    assert everything["XXBT"] == XXBT and everything["ZUSD"] == ZUSD
    assert market.get("Assets", asset="XXBT") == {"XXBT": XXBT}
    assert market.get("Assets", asset="XBT,USD") == {"XXBT": XXBT, "ZUSD": ZUSD}  # altnames in, ids out
    every_pair = market.get("AssetPairs")
    listed = {p[k] for p in every_pair.values() for k in ("base", "quote")}
    assert listed <= set(everything)  # ccxt maps every pair's assets through this list (doc §3.3)


def test_asset_pairs_fields_and_key_echo(market: Market) -> None:
    pair = market.get("AssetPairs", pair="XBTUSD")
    assert list(pair) == [PAIR_ID]
    info = pair[PAIR_ID]
    fees = [[0, Decimal("0.40")], [10000, Decimal("0.35")], [50000, Decimal("0.24")]]
    assert info["fees"][:3] == fees and info["fees_maker"][0] == [0, Decimal("0.25")]
    assert {k: v for k, v in info.items() if k not in ("fees", "fees_maker")} == {
        "altname": "XBTUSD", "wsname": "XBT/USD", "aclass_base": "currency", "base": "XXBT",
        "aclass_quote": "currency", "quote": "ZUSD", "lot": "unit", "cost_decimals": 5, "pair_decimals": 1,
        "lot_decimals": 8, "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
        "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.00005",
        "costmin": "0.5", "tick_size": "0.1", "status": "online", "long_position_limit": 0,
        "short_position_limit": 0,
    }  # fmt: skip
    # slash names are echoed as keys (python-kraken-sdk reads sym_info["BTC/USD"]); others give the id
    assert market.get("AssetPairs", pair="BTC/USD") == {"BTC/USD": info}
    assert market.get("AssetPairs", pair="XBT/USD") == {"XBT/USD": info}
    assert market.get("AssetPairs", pair="XXBTZUSD,ETHUSD").keys() == {PAIR_ID, "XETHZUSD"}
    assert market.get("AssetPairs", pair="BTC/USD", info="fees") == {
        "BTC/USD": {"fees": info["fees"], "fees_maker": info["fees_maker"], "fee_volume_currency": "ZUSD"}
    }


def test_ticker_every_field(market: Market) -> None:
    result = market.get("Ticker", pair="XBTUSD")
    assert list(result) == [PAIR_ID]
    ticker = result[PAIR_ID]
    assert set(ticker) == {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
    assert ticker["a"] == ["30010.0", "0", "0.05000000"]  # [price, whole lot volume, lot volume]
    assert ticker["b"] == ["29990.0", "0", "0.08000000"]
    assert ticker["c"] == ["29990.0", "0.02000000"]
    rolling = {
        "v": f"{sum(v for _, v, _, _ in TRADES):.8f}",
        "p": _vwap(TRADES),
        "t": len(TRADES),
        "l": "29990.0",
        "h": "30010.0",
    }
    for field, value in rolling.items():
        assert ticker[field][1] == value, field
        if market.same_day():
            assert ticker[field][0] == value, field  # "today" holds every trade unless 00:00 UTC passed
    if market.same_day():
        assert ticker["o"] == "30010.0"
    assert market.get("Ticker", pair="BTC/USD") == {"BTC/USD": ticker}
    assert PAIR_ID in market.get("Ticker") and "XETHZUSD" in market.get("Ticker")


def _expected_candles(trade_rows: list[list[Any]], now_s: int) -> list[list[Any]]:
    """One-minute candles from the first trade's minute to ``now_s``'s, quiet minutes flat at the close."""
    by_minute: dict[int, list[tuple[Decimal, Decimal, str, str]]] = {}
    for price, volume, at, *_ in trade_rows:
        by_minute.setdefault(int(at) // 60 * 60, []).append((Decimal(price), Decimal(volume), "", ""))
    first = min(by_minute)
    close = ""
    rows = []
    for start in range(first, now_s // 60 * 60 + 60, 60):
        group = by_minute.get(start)
        if group is None:
            rows.append([start, close, close, close, close, "0.0", "0.00000000", 0])
            continue
        prices = [p for p, _, _, _ in group]
        close = str(prices[-1])
        volume = sum(v for _, v, _, _ in group)
        rows.append([start, str(prices[0]), str(max(prices)), str(min(prices)), close, _vwap(group),
                     f"{volume:.8f}", len(group)])  # fmt: skip
    return rows


def test_ohlc_rows_and_last(market: Market) -> None:
    trades = market.get("Trades", pair="XBTUSD")[PAIR_ID]
    for _ in range(3):  # the answer depends on the current minute: ask again if one just ended
        minute = int(time.time()) // 60
        result = market.get("OHLC", pair="XBTUSD", interval="1")
        if int(time.time()) // 60 == minute:
            break
    assert set(result) == {PAIR_ID, "last"}
    rows = result[PAIR_ID]
    assert rows == _expected_candles(trades, minute * 60)
    assert all(isinstance(r[0], int) and r[0] % 60 == 0 for r in rows)
    # ``last`` is the newest committed candle (the current one is always the final row)
    assert isinstance(result["last"], int)
    assert result["last"] == (rows[-2][0] if len(rows) > 1 else rows[-1][0])
    later = market.get("OHLC", pair="XBTUSD", interval="1", since=str(rows[-1][0] + 3600))
    assert later[PAIR_ID] == [rows[-1]] or later[PAIR_ID][-1][0] > rows[-1][0]  # only the current candle
    day = market.get("OHLC", pair="XBTUSD", interval="1440")[PAIR_ID]
    assert sum(Decimal(r[6]) for r in day) == sum(v for _, v, _, _ in TRADES)


def test_depth_sorted_rows(market: Market) -> None:
    book = market.get("Depth", pair="XBTUSD")
    assert list(book) == [PAIR_ID] and set(book[PAIR_ID]) == {"asks", "bids"}
    asks, bids = book[PAIR_ID]["asks"], book[PAIR_ID]["bids"]
    assert [row[:2] for row in asks] == ASKS_AFTER  # ascending
    assert [row[:2] for row in bids] == BIDS_AFTER  # descending
    now = time.time()
    for row in asks + bids:
        assert len(row) == 3 and isinstance(row[2], int) and now - 600 < row[2] <= now + 1
    top = market.get("Depth", pair="BTC/USD", count="1")
    assert top == {"BTC/USD": {"asks": asks[:1], "bids": bids[:1]}}


def test_trades_rows_and_string_cursor(market: Market) -> None:
    result = market.get("Trades", pair="XBTUSD")
    assert set(result) == {PAIR_ID, "last"}
    rows = result[PAIR_ID]
    assert [[r[0], r[1], r[3], r[4], r[5]] for r in rows] == [
        [str(p), f"{v:.8f}", side, kind, ""] for p, v, side, kind in TRADES
    ]
    assert [r[6] for r in rows] == [1, 2]  # trade_id: int, per pair, in order
    assert all(isinstance(r[2], Decimal) and r[2] > 0 for r in rows) and rows[0][2] <= rows[1][2]
    last = result["last"]
    assert isinstance(last, str) and last.isdigit()
    assert Decimal(last) == rows[-1][2] * 10**9  # the newest trade's time, in ns
    assert market.get("Trades", pair="XBTUSD", since=last) == {PAIR_ID: [], "last": last}
    assert market.get("Trades", pair="XBTUSD", count="1")[PAIR_ID] == rows[-1:]


def test_spread_rows_and_last(market: Market) -> None:
    result = market.get("Spread", pair="XBTUSD")
    assert set(result) == {PAIR_ID, "last"}
    rows = result[PAIR_ID]
    # the touch changed once: when the first bid met the asks; the trades left both best prices in place
    assert [r[1:] for r in rows] == [["29990.0", "30010.0"]]
    assert isinstance(rows[0][0], int) and result["last"] == rows[-1][0]
