"""Kraken's account endpoints: balances, orders, trades, ledgers, trade volume, WebSocket token."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from abyssal.adapters import sqlite_reads as reads
from abyssal.core import ids
from abyssal.core.instruments import PPM, Asset, FeeSchedule, FeeTier
from abyssal.gateway.context import Ctx
from abyssal.gateway.formats import ledger_info, order_info, trade_info
from abyssal.gateway.order_params import find_pair
from abyssal.gateway.params import ParamError, Params, invalid, opt_bool, opt_int, opt_str, str_list

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
    numbers = [int(r["order_no"]) for r in rows]
    trades = await ctx.exchange.read(reads.trades_of_orders, ctx.exchange.store, numbers) if want else {}
    ins = ctx.exchange.instruments
    return {
        ids.order_id(int(r["order_no"])): order_info(ins, r, trades.get(int(r["order_no"]))) for r in rows
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


async def query_orders(ctx: Ctx, p: Params) -> Any:
    txids = str_list(p, "txid", items_max=QUERY_ORDERS_MAX)
    if not txids:
        raise invalid("txid")
    numbers = _decode_all("O", txids, ParamError("EOrder:Invalid order"))
    rows = await ctx.exchange.read(reads.orders_by_number, ctx.exchange.store, ctx.account, numbers)
    if not rows:
        raise ParamError("EOrder:Invalid order")
    found = await _with_trades(ctx, rows, opt_bool(p, "trades", False))
    return {t: found[t] for t in txids if t in found}


async def trades_history(ctx: Ctx, p: Params) -> Any:
    kind = opt_str(p, "type") or "all"
    if kind not in ("all", "any position", "closed position", "closing position", "no position"):
        raise invalid("type")
    w = await ctx.exchange.read(_window, ctx, p)
    rows, count = await ctx.exchange.read(reads.fills, ctx.exchange.store, ctx.account, w)
    ins = ctx.exchange.instruments
    trades = {} if kind in ("closed position", "closing position") else {
        ids.trade_id(int(r["pair"]), int(r["trade_no"])): trade_info(ins, r) for r in rows
    }  # fmt: skip
    return {"trades": trades, "count": count if trades or not count else 0}


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
    w = await ctx.exchange.read(_window, ctx, p)
    rows, count = await ctx.exchange.read(
        reads.ledger, ctx.exchange.store, ctx.account, assets, None if kind == "all" else kind, w
    )
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


async def trade_volume(ctx: Ctx, p: Params) -> Any:
    ins = ctx.exchange.instruments
    acct = ctx.exchange.engine.s.accounts.get(ctx.account)
    volume = acct.volume_in_window(ctx.now_ns) if acct is not None else 0
    fee_asset = ins.fee_volume_asset
    result: dict[str, Any] = {"currency": fee_asset.id, "volume": fee_asset.fmt(volume)}
    names = str_list(p, "pair", items_max=50)
    if names:
        fees: dict[str, Any] = {}
        makers: dict[str, Any] = {}
        for name in names:
            pair = find_pair(ins, {"pair": name})
            fees[name] = _fee_info(pair.fees, volume, fee_asset, False)
            makers[name] = _fee_info(pair.fees, volume, fee_asset, True)
        result["fees"] = fees
        result["fees_maker"] = makers
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
