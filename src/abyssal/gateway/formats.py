"""Kraken's REST shapes for orders, trades and ledger entries, from read-model rows."""

from __future__ import annotations

import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
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


def _shown_price(pair: Pair, text: str, price_ticks: int) -> str:
    """A relative price as the client wrote it (``+5``, ``#2%``); an absolute one from its ticks,
    which AmendOrder changes (the text is only what was placed)."""
    relative = text[:1] in ("+", "-", "#") or text.endswith("%")
    return text if relative else pair.price_text(price_ticks)


def order_prices(pair: Pair, r: sqlite3.Row) -> tuple[str, str]:
    """(descr.price, descr.price2) as Kraken shows them: trigger first for stop types."""
    t = OrderType(r["ordertype"])
    if t == OrderType.market:
        return "0", "0"
    if t in (OrderType.limit, OrderType.iceberg):
        return _shown_price(pair, r["price_text"], r["limit_ticks"]), "0"
    price = _shown_price(pair, r["price_text"], r["stop_ticks"])
    if t in STOP_LIMIT_TYPES:
        return price, _shown_price(pair, r["price2_text"], r["price2_ticks"])
    return price, "0"


def average_price(pair: Pair, cost_minor: int, filled_lots: int) -> str:
    if not filled_lots:
        return format_fixed(0, pair.pair_decimals)
    with localcontext() as ctx:
        ctx.prec = 60
        avg = pair.quote.from_minor(cost_minor) / (Decimal(filled_lots).scaleb(-pair.lot_decimals))
        return str(avg.quantize(Decimal(1).scaleb(-pair.pair_decimals), rounding=ROUND_HALF_EVEN))


def order_info(ins: Instruments, r: sqlite3.Row, trades: list[tuple[int, int]] | None) -> dict[str, Any]:
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
        "cost": pair.quote.fmt(r["cost_minor"]),
        "fee": fee_asset.fmt(r["fee_minor"]),
        "price": average_price(pair, r["cost_minor"], r["filled_lots"]),
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
