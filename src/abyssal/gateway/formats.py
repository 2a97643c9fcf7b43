"""Kraken's REST shapes for orders, trades and ledger entries, from read-model rows."""

from __future__ import annotations

import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from abyssal.core import ids
from abyssal.core.instruments import Instruments, Pair, format_fixed
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_FCIQ,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    CloseReason,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from abyssal.gateway.errors import CLOSE_REASON_TEXT
from abyssal.marketdata.candles import vwap_ticks

POSTXID = "TKH2SE-M7IF5-CFI7LT"  # Kraken shows this constant for spot fills
STATUS_TEXT = {s: s.name for s in OrderStatus}
FLAG_TEXT = (
    (FLAG_POST, "post"),
    (FLAG_FCIB, "fcib"),
    (FLAG_FCIQ, "fciq"),
    (FLAG_NOMPP, "nompp"),
    (FLAG_VIQC, "viqc"),
)
STOP_TYPES = (OrderType.stop_loss, OrderType.take_profit, OrderType.trailing_stop)
STOP_LIMIT_TYPES = (OrderType.stop_loss_limit, OrderType.take_profit_limit, OrderType.trailing_stop_limit)


def seconds(ts_ns: int) -> float:
    """Kraken's float seconds for times (times are not money; 4 decimals as Kraken shows)."""
    return round(ts_ns / 1e9, 4)


def oflags_text(flags: int) -> str:
    return ",".join(name for bit, name in FLAG_TEXT if flags & bit)


def volume_text(pair: Pair, volume_lots: int, flags: int) -> str:
    """An order's ``vol`` and ``descr.order`` volume: base lots, or with ``viqc`` the quote amount.

    ``volume_lots`` of a viqc order holds quote minor units (see ``PlaceOrder``); Kraken writes that
    amount at lot precision too (``buy 10.00000000 LTCUSD @ market``), never coarser than the quote's.
    """
    if not flags & FLAG_VIQC:
        return pair.volume_text(volume_lots)
    decimals = max(pair.lot_decimals, pair.quote.decimals)
    return format_fixed(volume_lots * 10 ** (decimals - pair.quote.decimals), decimals)


def describe(pair: Pair, side: int, ordertype: int, volume: str, price: str, price2: str) -> str:
    """The ``descr.order`` sentence, exactly one space between tokens (ccxt splits on spaces)."""
    t = OrderType(ordertype)
    head = f"{'buy' if side == 0 else 'sell'} {volume} {pair.altname} @ "
    if t == OrderType.market:
        return head + "market"
    if t in (OrderType.limit, OrderType.iceberg):
        return head + f"limit {price}"
    words = t.kraken.replace("-limit", "").replace("-", " ")
    if t in STOP_LIMIT_TYPES:
        return head + f"{words} {price} -> limit {price2}"
    return head + f"{words} {price}"


def _shown_price(pair: Pair, text: str, price_ticks: int, amended: bool) -> str:
    """One of descr's prices: a relative one as the client wrote it (``+5``, ``#2%``) while the order
    is as placed; an absolute one, and any once the order is amended, from its current ticks.

    The row keeps the placement's text and the live ticks: an amend overwrites the ticks (resolving
    a relative amend price against the last trade) but never the text, which then describes an
    order that no longer exists (a trigger moved under a stop-limit's ``-5`` no longer has its
    limit 5 below it). Any amend counts, a size-only one too: the resolved price is still the
    order's, and the row has no record of which fields an amend changed.
    """
    relative = text[:1] in ("+", "-", "#") or text.endswith("%")
    return text if relative and not amended else pair.price_text(price_ticks)


def order_prices(pair: Pair, r: sqlite3.Row) -> tuple[str, str]:
    """(descr.price, descr.price2) as Kraken shows them: trigger first for stop types. An untriggered
    stop-limit's limit lives in ``price2_ticks`` (an amend writes it there), and stays there once
    triggered; trailing types are never amended, so their offsets always show as written."""
    t = OrderType(r["ordertype"])
    if t == OrderType.market:
        return "0", "0"
    amended = bool(r["amended"])
    if t in (OrderType.limit, OrderType.iceberg):
        return _shown_price(pair, r["price_text"], r["limit_ticks"], amended), "0"
    price = _shown_price(pair, r["price_text"], r["stop_ticks"], amended)
    if t in STOP_LIMIT_TYPES:
        return price, _shown_price(pair, r["price2_text"], r["price2_ticks"], amended)
    return price, "0"


def average_price(pair: Pair, cost_raw: int, filled_lots: int) -> str:
    """``price``, the average execution price: ``sum(price_ticks * volume_lots) / sum(volume_lots)``
    over the order's fills (``cost_raw`` and ``filled_lots`` from ``sqlite_reads.fill_costs``), in
    ticks rounded half-even when it does not come out whole, as Kraken's own figures look; zero
    before any fill.

    From the trade prices, never from ``cost``: that is rounded to the quote's minor unit, up for a
    buyer and down for a seller, so dividing it by the volume strayed from the trade price (0.00005
    XBT at 30000.1 read 30002.0 for the buyer, above its own limit, and 30000.0 for the seller).
    """
    assert cost_raw >= 0, "a raw cost is a sum of positive prices times positive volumes"
    assert filled_lots > 0 or cost_raw == 0, "a raw cost without the volume it was paid for"
    return pair.price_text(vwap_ticks(cost_raw, filled_lots))


def order_info(
    ins: Instruments, r: sqlite3.Row, trades: list[tuple[int, int]] | None, fills_raw_lots: tuple[int, int]
) -> dict[str, Any]:
    """One order info object (doc 4.2). ``fills_raw_lots``: (raw cost, lots) summed over the order's
    fills, (0, 0) before any; ``trades``: its trade ids, when asked for."""
    pair = ins.pairs[r["pair"]]
    volume = volume_text(pair, r["volume_lots"], r["flags"])
    price, price2 = order_prices(pair, r)
    status = OrderStatus(r["status"])
    fee_asset = ins.assets[r["fee_asset"]] if r["fee_asset"] >= 0 else pair.quote
    info: dict[str, Any] = {
        "refid": None,
        "userref": r["userref"],
        "cl_ord_id": r["cl_ord_id"] or None,
        "status": STATUS_TEXT[status],
        "opentm": seconds(r["opened_ns"]),
        "starttm": r["start_ns"] // 10**9 if r["start_ns"] else 0,
        "expiretm": r["expire_ns"] // 10**9 if r["expire_ns"] else 0,
        "descr": {
            "pair": pair.altname,
            "type": "buy" if r["side"] == 0 else "sell",
            "ordertype": OrderType(r["ordertype"]).kraken,
            "price": price,
            "price2": price2,
            "leverage": "none",
            "order": describe(pair, r["side"], r["ordertype"], volume, price, price2),
            "close": "",
        },
        "vol": volume,
        "vol_exec": pair.volume_text(r["filled_lots"]),
        # ``cost`` is what the account paid (a buyer) or received (a seller), in the quote's minor
        # units, as its ledger entries show: each side's cost rounded the house's way (ceiling of the
        # cumulative cost for a buyer, floor of each fill for a seller), so cost plus fee reconciles
        # with the balance. It may differ from the trades' own costs (TradesHistory: the exact cost,
        # half-even at cost_decimals) by that rounding; the average price comes from the trades.
        "cost": pair.quote.fmt(r["cost_minor"]),
        "fee": fee_asset.fmt(r["fee_minor"]),
        "price": average_price(pair, *fills_raw_lots),
        "stopprice": pair.price_text(r["stop_ticks"]),
        "limitprice": pair.price_text(r["limit_ticks"]),
        "misc": _misc(r),
        "oflags": oflags_text(r["flags"]),
        "timeinforce": TimeInForce(r["tif"]).name.upper(),
    }
    if OrderType(r["ordertype"]) in STOP_TYPES + STOP_LIMIT_TYPES:
        info["trigger"] = "last"
    if trades:
        info["trades"] = [ids.trade_id(p, n) for p, n in trades]
    if status in (OrderStatus.closed, OrderStatus.canceled, OrderStatus.expired):
        info["closetm"] = seconds(r["closed_ns"])
        reason = r["reason"]
        info["reason"] = CLOSE_REASON_TEXT.get(CloseReason(reason)) if reason is not None else None
    return info


def _misc(r: sqlite3.Row) -> str:
    parts = []
    if r["triggered_ticks"]:
        parts.append("stopped")
    if r["amended"]:
        parts.append("amended")
    if r["filled_lots"] and r["status"] in (1, 3) and r["filled_lots"] < r["volume_lots"]:
        parts.append("partial")
    return ",".join(parts)


def trade_info(ins: Instruments, r: sqlite3.Row) -> dict[str, Any]:
    pair = ins.pairs[r["pair"]]
    raw = r["price_ticks"] * r["volume_lots"]
    cost = pair.raw_cost_decimal(raw).quantize(
        Decimal(1).scaleb(-pair.cost_decimals), rounding=ROUND_HALF_EVEN
    )
    return {
        "ordertxid": ids.order_id(r["order_no"]),
        "postxid": POSTXID,
        "pair": pair.id,
        "time": seconds(r["ts_ns"]),
        "type": "buy" if r["side"] == 0 else "sell",
        "ordertype": OrderType(r["ordertype"]).kraken,
        "price": pair.price_text(r["price_ticks"]),
        "cost": str(cost),
        "fee": ins.assets[r["fee_asset"]].fmt(r["fee_minor"]),
        "vol": pair.volume_text(r["volume_lots"]),
        "margin": format_fixed(0, pair.cost_decimals),
        "leverage": "0",
        "misc": "",
        "trade_id": r["trade_no"],
        "maker": bool(r["maker"]),
    }


def ledger_info(ins: Instruments, r: sqlite3.Row) -> dict[str, Any]:
    asset = ins.assets[r["asset"]]
    return {
        "refid": r["refid"],
        "time": seconds(r["ts_ns"]),
        "type": r["type"],
        "subtype": r["subtype"],
        "aclass": "currency",
        "asset": asset.id,
        "amount": asset.fmt(r["amount"]),
        "fee": asset.fmt(r["fee"]),
        "balance": asset.fmt(r["balance"]),
    }
