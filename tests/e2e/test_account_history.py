"""OrderAmends, TradesHistory with ``ledgers=true`` and TradeVolume with ``fee_schedule=true``,
driven through python-kraken-sdk against a live server (doc §4.2, §4.3, §8.3), and their bad input
sent raw: Kraken's exact error, HTTP 200, nothing moved.

Expected values are written out here from the order's own figures and from the fee table of
``default_config.toml`` (maker/taker percent by 30-day USD volume), not from the server's code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from kraken.base_api import SpotClient
from kraken.exceptions import KrakenInvalidArgumentsError, KrakenInvalidOrderError
from kraken.spot import Market, Trade, User
from tests.e2e.test_bad_requests import Signer
from tests.e2e.test_kraken_sdk import close_sdk
from tests.harness import Server

from abyssal.core import ids

pytestmark = pytest.mark.slow

PAIR = "XBTUSD"
ID_SHAPE = re.compile(r"T[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}")
# default_config.toml [fees]: (maker %, taker %, 30-day volume from which the tier applies)
FEE_TIERS = [
    ("0.2500", "0.4000", None),
    ("0.2000", "0.3500", "10000.0000"),
    ("0.1400", "0.2400", "50000.0000"),
    ("0.1200", "0.2200", "100000.0000"),
    ("0.1000", "0.2000", "250000.0000"),
    ("0.0800", "0.1800", "500000.0000"),
    ("0.0600", "0.1600", "1000000.0000"),
    ("0.0400", "0.1400", "2500000.0000"),
    ("0.0200", "0.1200", "5000000.0000"),
    ("0.0000", "0.1000", "10000000.0000"),
]


@pytest.fixture
def clients(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Alice with dollars, Bob with bitcoin, each with a User and a Trade client."""
    monkeypatch.setattr(SpotClient, "URL", server.url)
    a = server.account("alice", USD="20000")
    b = server.account("bob", XBT="1")
    made: dict[str, Any] = {
        "market": Market(),
        "ua": User(key=a["api_key"], secret=a["api_secret"]),
        "ta": Trade(key=a["api_key"], secret=a["api_secret"]),
        "ub": User(key=b["api_key"], secret=b["api_secret"]),
        "tb": Trade(key=b["api_key"], secret=b["api_secret"]),
    }
    try:
        yield made
    finally:
        for client in made.values():
            close_sdk(client)


def _place(trade: Trade, **order: Any) -> str:
    txid: str = trade.create_order(pair=PAIR, **order)["txid"][0]
    return txid


# --- OrderAmends ----------------------------------------------------------------------------------


def test_order_amends_lists_the_order_as_entered_then_each_amend(clients: dict[str, Any]) -> None:
    ua: User = clients["ua"]
    ta: Trade = clients["ta"]
    tb: Trade = clients["tb"]
    bid = _place(ta, ordertype="limit", side="buy", volume="0.01", price="25000")
    opened = ua.get_orders_info(txid=bid)[bid]["opentm"]

    before = ua.get_order_amends(order_id=bid)
    assert before["count"] == 1 and len(before["amends"]) == 1
    original = before["amends"][0]
    assert {k: v for k, v in original.items() if k not in ("amend_id", "timestamp")} == {
        "amend_type": "original", "order_qty": "0.01000000", "remaining_qty": "0.01000000",
        "limit_price": "25000.0",
    }  # fmt: skip
    assert ID_SHAPE.fullmatch(original["amend_id"])
    assert isinstance(original["timestamp"], int) and abs(original["timestamp"] / 1e9 - opened) < 1e-3

    first = ta.amend_order(txid=bid, limit_price="25100")["amend_id"]
    tb.create_order(ordertype="market", side="sell", pair=PAIR, volume="0.004")  # fills 0.004 of the bid
    second = ta.amend_order(txid=bid, order_qty="0.008")["amend_id"]

    after = ua.get_order_amends(order_id=bid)
    assert after["count"] == 3
    assert [a["amend_id"] for a in after["amends"]] == [original["amend_id"], first, second]
    assert len({first, second, original["amend_id"]}) == 3 and all(
        ID_SHAPE.fullmatch(i) for i in (first, second)
    )
    shown = [(a["amend_type"], a["order_qty"], a["remaining_qty"], a["limit_price"]) for a in after["amends"]]
    assert shown == [
        ("original", "0.01000000", "0.01000000", "25000.0"),  # as entered: amends leave it as it was
        ("user", "0.01000000", "0.01000000", "25100.0"),
        ("user", "0.00800000", "0.00400000", "25100.0"),  # 0.004 of the 0.008 already traded
    ]
    times = [a["timestamp"] for a in after["amends"]]
    assert all(isinstance(t, int) for t in times) and times == sorted(set(times))
    assert after["amends"][0] == original
    info = ua.get_orders_info(txid=bid)[bid]
    assert (info["vol"], info["vol_exec"], info["descr"]["price"]) == ("0.00800000", "0.00400000", "25100.0")

    assert ta.cancel_order(txid=bid) == {"count": 1}
    assert ua.get_order_amends(order_id=bid) == after  # a closed order keeps its history


def test_order_amends_shows_the_fields_each_order_type_has(clients: dict[str, Any]) -> None:
    ub: User = clients["ub"]
    tb: Trade = clients["tb"]
    ice = _place(tb, ordertype="iceberg", side="sell", volume="0.003", price="26500", displayvol="0.001")
    tb.amend_order(txid=ice, display_qty="0.002")
    stop = _place(tb, ordertype="stop-loss-limit", side="sell", volume="0.001", price="24500", price2="24400")
    tb.amend_order(txid=stop, trigger_price="24600", limit_price="24450")
    plain_stop = _place(tb, ordertype="stop-loss", side="sell", volume="0.001", price="24000")

    def entries(txid: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = ub.get_order_amends(order_id=txid)["amends"]
        return [{k: v for k, v in a.items() if k not in ("amend_id", "timestamp")} for a in got]

    assert entries(ice) == [
        {"amend_type": "original", "order_qty": "0.00300000", "display_qty": "0.00100000",
         "remaining_qty": "0.00300000", "limit_price": "26500.0"},
        {"amend_type": "user", "order_qty": "0.00300000", "display_qty": "0.00200000",
         "remaining_qty": "0.00300000", "limit_price": "26500.0"},
    ]  # fmt: skip
    assert entries(stop) == [
        {"amend_type": "original", "order_qty": "0.00100000", "remaining_qty": "0.00100000",
         "trigger_price": "24500.0", "limit_price": "24400.0"},
        {"amend_type": "user", "order_qty": "0.00100000", "remaining_qty": "0.00100000",
         "trigger_price": "24600.0", "limit_price": "24450.0"},
    ]  # fmt: skip
    assert entries(plain_stop) == [
        {"amend_type": "original", "order_qty": "0.00100000", "remaining_qty": "0.00100000",
         "trigger_price": "24000.0"},
    ]  # fmt: skip


# --- TradesHistory with ledgers -------------------------------------------------------------------


def test_trades_history_lists_the_ledger_entries_each_trade_made(clients: dict[str, Any]) -> None:
    ua: User = clients["ua"]
    ub: User = clients["ub"]
    ta: Trade = clients["ta"]
    tb: Trade = clients["tb"]
    _place(tb, ordertype="limit", side="sell", volume="0.002", price="25000")
    _place(tb, ordertype="limit", side="sell", volume="0.003", price="25100")
    _place(ta, ordertype="limit", side="buy", volume="0.005", price="25100")  # takes both asks

    plain = ua.get_trades_history()
    assert plain["count"] == 2 and all("ledgers" not in t for t in plain["trades"].values())
    assert ua.get_trades_history(ledgers=False) == plain
    history = ua.get_trades_history(ledgers=True)
    assert {
        t: {k: v for k, v in info.items() if k != "ledgers"} for t, info in history["trades"].items()
    } == (plain["trades"])
    all_ids = [i for info in history["trades"].values() for i in info["ledgers"]]
    assert len(all_ids) == len(set(all_ids)) == 4  # the dollars out and the bitcoin in, per trade
    entries = ua.get_ledgers(id_=all_ids)
    assert set(entries) == set(all_ids)
    for txid, info in history["trades"].items():
        mine = {entries[i]["asset"]: entries[i] for i in info["ledgers"]}
        assert set(mine) == {"ZUSD", "XXBT"}
        assert all(e["refid"] == txid and e["type"] == "trade" for e in mine.values())
        assert mine["XXBT"]["amount"] == f"{Decimal(info['vol']):.10f}"
        assert Decimal(mine["ZUSD"]["amount"]) == -Decimal(info["cost"])
        assert mine["ZUSD"]["fee"] == info["fee"]

    # the seller's entries for the same trades are its own
    theirs = ub.get_trades_history(ledgers=True)["trades"]
    assert set(theirs) == set(history["trades"])
    their_ids = {i for info in theirs.values() for i in info["ledgers"]}
    assert len(their_ids) == 4 and not their_ids & set(all_ids)


# --- TradeVolume with the fee schedule ------------------------------------------------------------


def _tiers(active: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, (maker, taker, volume) in enumerate(FEE_TIERS):
        tier: dict[str, Any] = {"maker_fee": maker, "taker_fee": taker}
        if volume is not None:
            tier["min_spot_volume"] = volume
        if i == active:
            tier["active"] = True
        out.append(tier)
    return out


def test_trade_volume_gives_each_pairs_fee_schedule_with_the_active_tier(clients: dict[str, Any]) -> None:
    market: Market = clients["market"]
    ua: User = clients["ua"]
    ta: Trade = clients["ta"]
    tb: Trade = clients["tb"]
    assert ua.get_trade_volume(pair=PAIR, fee_schedule=True)["schedules"] == [
        {"pair": PAIR, "class": "forex", "tiers": _tiers(0)}
    ]
    # 0.5 XBT at 25,000: 12,500 USD of 30-day volume, past the 10,000 threshold of the second tier
    _place(tb, ordertype="limit", side="sell", volume="0.5", price="25000")
    _place(ta, ordertype="limit", side="buy", volume="0.5", price="25000")
    volume = ua.get_trade_volume(pair=[PAIR, "BTC/USD"], fee_schedule=True)
    assert volume["volume"] == "12500.0000"
    assert volume["fees"][PAIR]["fee"] == "0.3500" and volume["fees_maker"][PAIR]["fee"] == "0.2000"
    assert volume["schedules"] == [
        {"pair": PAIR, "class": "forex", "tiers": _tiers(1)},
        {"pair": "BTC/USD", "class": "forex", "tiers": _tiers(1)},  # keyed as asked, as fees are
    ]
    assert "schedules" not in ua.get_trade_volume(pair=PAIR, fee_schedule=False)
    assert "schedules" not in ua.get_trade_volume(pair=PAIR)

    every = ua.get_trade_volume(fee_schedule=True)  # no pair: every pair's schedule, by altname
    altnames = [info["altname"] for info in market.get_asset_pairs().values()]
    assert [s["pair"] for s in every["schedules"]] == altnames
    assert set(every) == {"currency", "volume", "schedules"}


# --- bad input: the exact error, HTTP 200, nothing moved ------------------------------------------


@pytest.fixture(scope="module")
def signers(shared_server: Server) -> Iterator[tuple[Signer, Signer, str, str]]:
    """Two accounts' signers, the first account's resting order and the second's."""
    server = shared_server
    a = server.account("history-a", USD="1000")
    b = server.account("history-b", XBT="1")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        sa, sb = Signer(http, a), Signer(http, b)
        buy = {"pair": PAIR, "type": "buy", "ordertype": "limit", "volume": "0.001", "price": "20000.0"}
        mine = sa.ok("AddOrder", buy)["txid"][0]
        theirs = sb.ok("AddOrder", {**buy, "type": "sell", "price": "40000.0"})["txid"][0]
        yield sa, sb, mine, theirs


Send = Callable[[Signer, str, str], httpx.Response]
INVALID = "EGeneral:Invalid arguments"
BAD_INPUT: list[tuple[str, str, Send]] = [
    ("an unknown order", "EOrder:Invalid order",
     lambda s, mine, theirs: s.form("OrderAmends", {"order_id": ids.order_id(10**9)})),
    ("another account's order", "EOrder:Invalid order",
     lambda s, mine, theirs: s.form("OrderAmends", {"order_id": theirs})),
    ("a Kraken-shaped id never issued", "EOrder:Invalid order",
     lambda s, mine, theirs: s.form("OrderAmends", {"order_id": "OQCLML-BW3P3-BUCMWZ"})),
    ("a malformed order id", "EOrder:Invalid order",
     lambda s, mine, theirs: s.form("OrderAmends", {"order_id": "O123"})),
    ("a trade id for an order id", "EOrder:Invalid order",
     lambda s, mine, theirs: s.form("OrderAmends", {"order_id": ids.trade_id(0, 1)})),
    ("no order id", f"{INVALID}:order_id", lambda s, mine, theirs: s.form("OrderAmends")),
    ("an empty order id", f"{INVALID}:order_id",
     lambda s, mine, theirs: s.form("OrderAmends", {"order_id": ""})),
    ("an order id as a JSON number", f"{INVALID}:order_id",
     lambda s, mine, theirs: s.json("OrderAmends", {"order_id": 12345})),
    ("order ids as a JSON array", f"{INVALID}:order_id",
     lambda s, mine, theirs: s.json("OrderAmends", {"order_id": [mine]})),
    ("ledgers not a boolean", f"{INVALID}:ledgers",
     lambda s, mine, theirs: s.form("TradesHistory", {"ledgers": "maybe"})),
    ("ledgers as a JSON object", f"{INVALID}:ledgers",
     lambda s, mine, theirs: s.json("TradesHistory", {"ledgers": {"x": 1}})),
    ("fee_schedule as str(True)", INVALID,
     lambda s, mine, theirs: s.form("TradeVolume", {"pair": PAIR, "fee_schedule": "True"})),
    ("fee_schedule as 1", INVALID,
     lambda s, mine, theirs: s.form("TradeVolume", {"pair": PAIR, "fee_schedule": "1"})),
    ("fee_schedule as a JSON number", INVALID,
     lambda s, mine, theirs: s.json("TradeVolume", {"pair": PAIR, "fee_schedule": 1})),
    ("fee_schedule with an unknown pair", "EQuery:Unknown asset pair",
     lambda s, mine, theirs: s.form("TradeVolume", {"pair": "XBTNOPE", "fee_schedule": "true"})),
]  # fmt: skip


@pytest.mark.parametrize(("error", "send"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_gets_the_exact_error_with_http_200(
    shared_server: Server, signers: tuple[Signer, Signer, str, str], error: str, send: Send
) -> None:
    sa, sb, mine, theirs = signers
    before = sa.ok("BalanceEx"), sb.ok("BalanceEx"), shared_server.status()["balances"]
    response = send(sa, mine, theirs)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": [error]}
    assert (sa.ok("BalanceEx"), sb.ok("BalanceEx"), shared_server.status()["balances"]) == before
    assert sa.ok("OrderAmends", {"order_id": mine})["count"] == 1  # the account's own order still answers


def test_bad_input_arrives_as_the_sdk_exceptions(
    shared_server: Server, signers: tuple[Signer, Signer, str, str]
) -> None:
    _, _, _, theirs = signers
    key = shared_server.account("history-sdk")  # its own key: the SDK's nonces dwarf the signers'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SpotClient, "URL", shared_server.url)
        user = User(key=key["api_key"], secret=key["api_secret"])
        try:
            with pytest.raises(KrakenInvalidOrderError):
                user.get_order_amends(order_id=theirs)
            with pytest.raises(KrakenInvalidArgumentsError):
                user.request(method="POST", uri="/0/private/TradeVolume", params={"fee_schedule": "True"})
        finally:
            close_sdk(user)
