"""Kraken's account endpoints: balances, orders, trades, ledgers, trade volume, WebSocket token."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from abyssal.adapters import sqlite_reads as reads
from abyssal.core import ids
from abyssal.core.instruments import PPM, Asset, FeeSchedule, FeeTier, Pair
from abyssal.core.messages import OrderStatus, OrderType
from abyssal.gateway.auth import Permission
from abyssal.gateway.context import Ctx
from abyssal.gateway.formats import ledger_info, order_info, order_prices, trade_info, volume_text
from abyssal.gateway.order_params import find_pair
from abyssal.gateway.params import (
    INVALID_ARGUMENTS,
    ParamError,
    Params,
    invalid,
    opt_bool,
    opt_int,
    opt_str,
    req_str,
    str_list,
)

INVALID_ORDER = "EOrder:Invalid order"
# TradesHistory's ``type`` values that select margin positions: a spot exchange has none
POSITION_TRADE_TYPES = ("any position", "closed position", "closing position")
# Kraken's ledger entry types (``Ledgers type``); this exchange writes trade, deposit and withdrawal
LEDGER_TYPES = (
    "all", "trade", "deposit", "withdrawal", "transfer", "margin", "adjustment", "rollover", "credit",
    "settled", "staking", "dividend", "sale", "nft_rebate",
)  # fmt: skip
QUERY_ORDERS_MAX = 50
QUERY_TRADES_MAX = 20
QUERY_LEDGERS_MAX = 20
WS_TOKEN_TTL_S = 900


def _balances(ctx: Ctx, rows: list[Any]) -> dict[int, tuple[int, int]]:
    return {int(r["asset"]): (int(r["total"]), int(r["held"])) for r in rows}


async def balance(ctx: Ctx, p: Params) -> Any:
    rows = await ctx.exchange.read(reads.balances, ctx.exchange.store, ctx.account)
    ins = ctx.exchange.instruments
    return {ins.assets[a].id: ins.assets[a].fmt(total) for a, (total, _) in _balances(ctx, rows).items()}


async def balance_ex(ctx: Ctx, p: Params) -> Any:
    rows = await ctx.exchange.read(reads.balances, ctx.exchange.store, ctx.account)
    ins = ctx.exchange.instruments
    return {
        ins.assets[a].id: {"balance": ins.assets[a].fmt(total), "hold_trade": ins.assets[a].fmt(held)}
        for a, (total, held) in _balances(ctx, rows).items()
    }


async def trade_balance(ctx: Ctx, p: Params) -> Any:
    ins = ctx.exchange.instruments
    asset = ins.asset(opt_str(p, "asset") or "ZUSD")
    if asset is None:
        raise ParamError("EQuery:Unknown asset")
    rows = await ctx.exchange.read(reads.balances, ctx.exchange.store, ctx.account)
    value = Decimal(0)
    for a, (total, _) in _balances(ctx, rows).items():
        value += ctx.exchange.market.value_in(ins.assets[a], ins.assets[a].from_minor(total), asset)
    text = asset.fmt(int(value.scaleb(asset.decimals).to_integral_value()))
    zero = asset.fmt(0)
    return {"eb": text, "tb": text, "m": zero, "uv": zero, "n": zero, "c": zero, "v": zero, "e": text,
            "mf": text, "ml": zero}  # fmt: skip


def _time_ns(ctx: Ctx, p: Params, name: str) -> int:
    value = p.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.startswith("O"):
        number = ids.decode("O", value)
        if number is None:
            raise invalid(name)
        opened = reads.order_opened_ns(ctx.exchange.store, ctx.account, number)
        if opened is None:
            raise invalid(name)
        return opened
    seconds = opt_int(p, name, value_min=0, value_max=2**33)  # present and not a count: refused
    return (seconds or 0) * 10**9


def _window(ctx: Ctx, p: Params) -> reads.Window:
    offset = opt_int(p, "ofs", value_min=0, value_max=10**9) or 0
    return reads.Window(_time_ns(ctx, p, "start"), _time_ns(ctx, p, "end"), offset)


async def _with_trades(ctx: Ctx, rows: list[Any], want: bool) -> dict[str, Any]:
    """Order info objects by txid; the fills of the orders that have any give their average prices
    (an order's row says whether it has: its fills are written with it, and only ever added)."""
    numbers = [int(r["order_no"]) for r in rows]
    filled = [int(r["order_no"]) for r in rows if r["filled_lots"]]
    store = ctx.exchange.store
    costs = await ctx.exchange.read(reads.fill_costs, store, filled) if filled else {}
    trades = await ctx.exchange.read(reads.trades_of_orders, store, numbers) if want else {}
    ins = ctx.exchange.instruments
    return {
        ids.order_id(n): order_info(ins, r, trades.get(n), costs.get(n, (0, 0)))
        for n, r in zip(numbers, rows, strict=True)
    }


async def open_orders(ctx: Ctx, p: Params) -> Any:
    userref = opt_int(p, "userref", value_min=-(2**31), value_max=2**31 - 1)
    cl_ord_id = opt_str(p, "cl_ord_id")
    rows = await ctx.exchange.read(reads.open_orders, ctx.exchange.store, ctx.account, userref, cl_ord_id)
    return {"open": await _with_trades(ctx, rows, opt_bool(p, "trades", False))}


async def closed_orders(ctx: Ctx, p: Params) -> Any:
    closetime = opt_str(p, "closetime") or "both"
    if closetime not in ("open", "close", "both"):
        raise invalid("closetime")
    userref = opt_int(p, "userref", value_min=-(2**31), value_max=2**31 - 1)
    cl_ord_id = opt_str(p, "cl_ord_id")
    w = await ctx.exchange.read(_window, ctx, p)
    rows, count = await ctx.exchange.read(
        reads.closed_orders, ctx.exchange.store, ctx.account, w, closetime, userref, cl_ord_id
    )
    return {"closed": await _with_trades(ctx, rows, opt_bool(p, "trades", False)), "count": count}


def _may_see(ctx: Ctx, order: Any) -> bool:
    """Whether the key may read this order: QueryOrders and OrderAmends need "query open" or "query
    closed" by the order's status (Kraken: "depending on the status of the order"; auth.py lets
    either through to here). An order the key may not see is answered as an unknown one."""
    live = int(order["status"]) in (OrderStatus.pending, OrderStatus.open)
    return bool(ctx.key.permissions & (Permission.QUERY_OPEN if live else Permission.QUERY_CLOSED))


async def query_orders(ctx: Ctx, p: Params) -> Any:
    txids = str_list(p, "txid", items_max=QUERY_ORDERS_MAX)
    if not txids:
        raise invalid("txid")
    numbers = _decode_all("O", txids, ParamError(INVALID_ORDER))
    rows = await ctx.exchange.read(reads.orders_by_number, ctx.exchange.store, ctx.account, numbers)
    rows = [r for r in rows if _may_see(ctx, r)]
    if not rows:
        raise ParamError(INVALID_ORDER)
    found = await _with_trades(ctx, rows, opt_bool(p, "trades", False))
    return {t: found[t] for t in txids if t in found}


# OrderAmends: the order as entered is entry 0 of its log (its amend number ids.ORIGINAL_AMEND_BIT | order_no)
_LIMIT_TYPES = (OrderType.limit, OrderType.iceberg)
_TRIGGER_TYPES = (OrderType.stop_loss, OrderType.take_profit, OrderType.trailing_stop)


def _amend_entry(
    order: Any, amend_no: int, qty: str, remaining: str, display: str, prices: tuple[str, str], ts_ns: int
) -> dict[str, Any]:
    """One OrderAmends entry; ``prices`` in descr.price / descr.price2 order (trigger first for the
    stop types), each shown only where the order type has it."""
    t = OrderType(order["ordertype"])
    entry: dict[str, Any] = {
        "amend_id": ids.amend_id(amend_no),
        "amend_type": "original" if amend_no & ids.ORIGINAL_AMEND_BIT else "user",
        "order_qty": qty,
        "remaining_qty": remaining,
    }
    if t == OrderType.iceberg:
        entry["display_qty"] = display
    if t in _LIMIT_TYPES:
        entry["limit_price"] = prices[0]
    elif t in _TRIGGER_TYPES:
        entry["trigger_price"] = prices[0]
    elif t != OrderType.market:  # the stop-limit types
        entry["trigger_price"], entry["limit_price"] = prices
    entry["timestamp"] = ts_ns
    return entry


def _prices(pair: Pair, ordertype: OrderType, limit_ticks: int, stop_ticks: int) -> tuple[str, str]:
    """(descr.price, descr.price2) places from absolute ticks: the limit, or trigger then limit."""
    limit = pair.price_text(limit_ticks)
    return (limit, "0") if ordertype in _LIMIT_TYPES else (pair.price_text(stop_ticks), limit)


def _logged_amend(pair: Pair, order: Any, r: Any) -> dict[str, Any]:
    """One row of the amend log. Only limit, iceberg and untriggered stop orders are amendable, so
    its prices are absolute ticks (a relative one was resolved when placed or amended)."""
    amend_no = int(r["amend_no"]) or ids.ORIGINAL_AMEND_BIT | int(order["order_no"])
    prices = _prices(pair, OrderType(order["ordertype"]), r["limit_ticks"], r["stop_ticks"])
    qty, remaining, display = (
        pair.volume_text(r[c]) for c in ("volume_lots", "remaining_lots", "display_lots")
    )
    return _amend_entry(order, amend_no, qty, remaining, display, prices, int(r["ts_ns"]))


def _never_amended(pair: Pair, order: Any) -> dict[str, Any]:
    """The only entry of an order never amended: its row is the order as entered, read as the log's
    first row is (an untriggered stop's limit lives in price2); a trailing stop's prices are offsets,
    shown as QueryOrders shows them."""
    t = OrderType(order["ordertype"])
    if t in (OrderType.trailing_stop, OrderType.trailing_stop_limit):
        prices = order_prices(pair, order)
    else:
        stop = int(order["stop_ticks"])
        prices = _prices(pair, t, order["price2_ticks"] if stop > 0 else order["limit_ticks"], stop)
    qty = volume_text(pair, order["volume_lots"], order["flags"])
    display = pair.volume_text(order["display_lots"])
    amend_no = ids.ORIGINAL_AMEND_BIT | int(order["order_no"])
    return _amend_entry(order, amend_no, qty, qty, display, prices, int(order["opened_ns"]))


async def order_amends(ctx: Ctx, p: Params) -> Any:
    """The order as entered, then each amend (Kraken: ascending time, count includes the original);
    an unknown order, or another account's, is refused as QueryOrders refuses it."""
    number = ids.decode("O", req_str(p, "order_id"))
    if number is None:
        raise ParamError(INVALID_ORDER)
    rows = await ctx.exchange.read(reads.orders_by_number, ctx.exchange.store, ctx.account, [number])
    if not rows or not _may_see(ctx, rows[0]):
        raise ParamError(INVALID_ORDER)
    order = rows[0]
    pair = ctx.exchange.instruments.pairs[order["pair"]]
    log = await ctx.exchange.read(reads.order_amends, ctx.exchange.store, number)
    amends = [_logged_amend(pair, order, r) for r in log] if log else [_never_amended(pair, order)]
    return {"amends": amends, "count": len(amends)}


async def trades_history(ctx: Ctx, p: Params) -> Any:
    kind = opt_str(p, "type") or "all"
    if kind not in ("all", "no position", *POSITION_TRADE_TYPES):
        raise invalid("type")
    with_ledgers = opt_bool(p, "ledgers", False)
    w = await ctx.exchange.read(_window, ctx, p)
    rows, count = await ctx.exchange.read(reads.fills, ctx.exchange.store, ctx.account, w)
    ins = ctx.exchange.instruments
    if kind in POSITION_TRADE_TYPES:  # spot trades open or close no position: none is of these kinds
        rows, count = [], 0
    trades = {ids.trade_id(int(r["pair"]), int(r["trade_no"])): trade_info(ins, r) for r in rows}
    if with_ledgers and trades:
        times = [int(r["ts_ns"]) for r in rows]
        entries = await ctx.exchange.read(
            reads.trade_ledger_ids, ctx.exchange.store, ctx.account, list(trades), min(times), max(times)
        )
        for txid, info in trades.items():
            info["ledgers"] = [ids.ledger_id(n) for n in entries.get(txid, [])]
    return {"trades": trades, "count": count}  # the total across pages, an offset past the end too


async def query_trades(ctx: Ctx, p: Params) -> Any:
    txids = str_list(p, "txid", items_max=QUERY_TRADES_MAX)
    if not txids:
        raise invalid("txid")
    keys = [(n & 0xFF, n >> 8) for n in _decode_all("T", txids, invalid("txid"))]  # (pair, trade_no)
    rows = await ctx.exchange.read(reads.fills_by_trade, ctx.exchange.store, ctx.account, keys)
    ins = ctx.exchange.instruments
    return {ids.trade_id(int(r["pair"]), int(r["trade_no"])): trade_info(ins, r) for r in rows}


def _assets(ctx: Ctx, p: Params) -> list[int] | None:
    names = str_list(p, "asset", items_max=50)
    if not names or names == ["all"]:
        return None
    out = []
    for name in names:
        a = ctx.exchange.instruments.asset(name)
        if a is None:
            raise ParamError("EQuery:Unknown asset")
        out.append(a.index)
    return out


async def ledgers(ctx: Ctx, p: Params) -> Any:
    assets = _assets(ctx, p)
    kind = opt_str(p, "type") or "all"
    if kind not in LEDGER_TYPES:
        raise invalid("type")
    aclass = opt_str(p, "aclass") or "currency"
    if aclass not in ("currency", "tokenized_asset"):
        raise invalid("aclass")
    w = await ctx.exchange.read(_window, ctx, p)
    rows, count = await ctx.exchange.read(
        reads.ledger, ctx.exchange.store, ctx.account, assets, None if kind == "all" else kind, w
    )
    if aclass != "currency":  # every asset here is a currency: no entry is of another class
        rows, count = [], 0
    ins = ctx.exchange.instruments
    result: dict[str, Any] = {
        "ledger": {ids.ledger_id(int(r["entry_no"])): ledger_info(ins, r) for r in rows}
    }
    if not opt_bool(p, "without_count", False):
        result["count"] = count
    return result


async def query_ledgers(ctx: Ctx, p: Params) -> Any:
    names = str_list(p, "id", items_max=QUERY_LEDGERS_MAX)
    if not names:
        raise invalid("id")
    numbers = _decode_all("L", names, invalid("id"))
    rows = await ctx.exchange.read(reads.ledger_by_number, ctx.exchange.store, ctx.account, numbers)
    ins = ctx.exchange.instruments
    return {ids.ledger_id(int(r["entry_no"])): ledger_info(ins, r) for r in rows}


def _pct(ppm: int) -> str:
    return str((Decimal(ppm) / (PPM // 100)).quantize(Decimal("0.0001")))


def _fee_info(schedule: FeeSchedule, volume_minor: int, fee_asset: Asset, maker: bool) -> dict[str, Any]:
    i = schedule.tier_index(volume_minor)
    tiers = schedule.tiers

    def rate(t: FeeTier) -> int:
        return t.maker_ppm if maker else t.taker_ppm

    nxt = tiers[i + 1] if i + 1 < len(tiers) else None
    return {
        "fee": _pct(rate(tiers[i])),
        "minfee": _pct(min(rate(t) for t in tiers)),
        "maxfee": _pct(max(rate(t) for t in tiers)),
        "nextfee": _pct(rate(nxt)) if nxt else None,
        "tiervolume": str(fee_asset.from_minor(tiers[i].volume_minor)),
        "nextvolume": str(fee_asset.from_minor(nxt.volume_minor)) if nxt else None,
    }


def _schedule(name: str, schedule: FeeSchedule, volume_minor: int, fee_asset: Asset) -> dict[str, Any]:
    """One pair's ``schedules`` entry: every tier, its volume threshold (none for the first), and
    ``active`` on the tier the account's volume reaches (as in Kraken's example)."""
    active = schedule.tier_index(volume_minor)
    tiers: list[dict[str, Any]] = []
    for i, t in enumerate(schedule.tiers):
        tier: dict[str, Any] = {"maker_fee": _pct(t.maker_ppm), "taker_fee": _pct(t.taker_ppm)}
        if t.volume_minor:
            tier["min_spot_volume"] = fee_asset.fmt(t.volume_minor)
        if i == active:
            tier["active"] = True
        tiers.append(tier)
    return {"pair": name, "class": "forex", "tiers": tiers}


def _fee_schedule(p: Params) -> bool:
    """Kraken is strict here (doc §1.5): JSON booleans or the literals ``true``/``false``; the
    ``True`` that ``str(bool)`` gives is refused with the bare invalid-arguments error."""
    value = p.get("fee_schedule")
    if value is None or isinstance(value, bool):
        return bool(value)
    if value in ("true", "false"):
        return value == "true"
    raise ParamError(INVALID_ARGUMENTS)


async def trade_volume(ctx: Ctx, p: Params) -> Any:
    ins = ctx.exchange.instruments
    with_schedules = _fee_schedule(p)
    acct = ctx.exchange.engine.s.accounts.get(ctx.account)
    volume = acct.volume_in_window(ctx.now_ns) if acct is not None else 0
    fee_asset = ins.fee_volume_asset
    result: dict[str, Any] = {"currency": fee_asset.id, "volume": fee_asset.fmt(volume)}
    names = str_list(p, "pair", items_max=50)
    pairs = [find_pair(ins, {"pair": name}) for name in names]
    if names:
        fees: dict[str, Any] = {}
        makers: dict[str, Any] = {}
        for name, pair in zip(names, pairs, strict=True):
            fees[name] = _fee_info(pair.fees, volume, fee_asset, False)
            makers[name] = _fee_info(pair.fees, volume, fee_asset, True)
        result["fees"] = fees
        result["fees_maker"] = makers
    if with_schedules:  # the pairs asked for, keyed as asked; without ``pair``, every pair by altname
        named = list(zip(names, pairs, strict=True)) or [(pair.altname, pair) for pair in ins.pairs]
        result["schedules"] = [_schedule(name, pair.fees, volume, fee_asset) for name, pair in named]
    return result


async def websockets_token(ctx: Ctx, p: Params) -> Any:
    token = secrets.token_urlsafe(32)
    expires_ns = ctx.now_ns + WS_TOKEN_TTL_S * 10**9
    ctx.exchange.ws_tokens[token] = (ctx.key.key_no, expires_ns)
    if ctx.exchange.shared is not None:  # scaled out: valid on every gateway
        await ctx.exchange.read(ctx.exchange.shared.put_ws_token, token, ctx.key.key_no, expires_ns)
    return {"token": token, "expires": WS_TOKEN_TTL_S}


def _decode_all(prefix: str, texts: list[str], error: ParamError) -> list[int]:
    """The numbers behind Kraken-style ids of one kind; any malformed id refuses the whole call."""
    numbers = []
    for text in texts:
        n = ids.decode(prefix, text)
        if n is None:
            raise error
        numbers.append(n)
    return numbers
