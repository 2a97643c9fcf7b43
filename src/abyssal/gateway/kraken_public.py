"""Kraken's public endpoints: Time, SystemStatus, Assets, AssetPairs, Ticker, OHLC, Depth, Trades, Spread."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from abyssal.config import asset_pairs_fee_rows
from abyssal.core.instruments import Pair, format_fixed
from abyssal.core.messages import Mode
from abyssal.gateway.params import ParamError, Params, invalid, opt_int, opt_str, str_list
from abyssal.marketdata.book_view import depth_rest_rows
from abyssal.marketdata.candles import INTERVALS_MIN, ohlc_rest_row
from abyssal.marketdata.ticker import ticker_rest
from abyssal.marketdata.trades_tape import spread_rest_row, trade_rest_row

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

DEPTH_COUNT_MAX = 500
DEPTH_COUNT_DEFAULT = 100
TRADES_COUNT_MAX = 1000
PAIR_STATUS = {
    Mode.online: "online",
    Mode.cancel_only: "cancel_only",
    Mode.post_only: "post_only",
    Mode.limit_only: "limit_only",
    Mode.maintenance: "cancel_only",
}


def _pairs(ex: Exchange, p: Params, required: bool) -> list[tuple[str, Pair]]:
    """(result key, pair) for each requested pair; slash names are echoed as keys (doc §1.5)."""
    names = str_list(p, "pair", error="EQuery:Unknown asset pair")
    if not names:
        if required:
            raise invalid("pair")
        return [(pair.id, pair) for pair in ex.instruments.pairs]
    out = []
    for name in names:
        pair = ex.instruments.pair(name)
        if pair is None:
            raise ParamError("EQuery:Unknown asset pair")
        out.append((name if "/" in name else pair.id, pair))
    return out


def _one_pair(ex: Exchange, p: Params) -> tuple[str, Pair]:
    pairs = _pairs(ex, p, True)
    if len(pairs) != 1:
        raise invalid("pair")
    return pairs[0]


async def time_(ex: Exchange, p: Params) -> Any:
    now = int(time.time())
    return {
        "unixtime": now,
        "rfc1123": datetime.fromtimestamp(now, UTC).strftime("%a, %d %b %y %H:%M:%S +0000"),
    }


async def system_status(ex: Exchange, p: Params) -> Any:
    mode = Mode(ex.engine.s.system_mode)
    return {"status": mode.name, "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


async def assets(ex: Exchange, p: Params) -> Any:
    names = str_list(p, "asset", error="EQuery:Unknown asset")
    chosen = ex.instruments.assets
    if names:
        found = [ex.instruments.asset(n) for n in names]
        if any(a is None for a in found):
            raise ParamError("EQuery:Unknown asset")
        chosen = tuple(a for a in found if a is not None)
    return {
        a.id: {"aclass": "currency", "altname": a.altname, "decimals": a.decimals,
               "display_decimals": a.display_decimals, "collateral_value": 1, "status": a.status}
        for a in chosen
    }  # fmt: skip


def _pair_info(ex: Exchange, pair: Pair, info: str) -> dict[str, Any]:
    fees, fees_maker = asset_pairs_fee_rows(pair.fees, ex.instruments.fee_volume_asset)
    status = PAIR_STATUS[Mode(ex.engine.s.mode_of(pair.index))]
    if info == "leverage":
        return {"leverage_buy": [], "leverage_sell": []}
    if info == "fees":
        return {
            "fees": fees,
            "fees_maker": fees_maker,
            "fee_volume_currency": ex.instruments.fee_volume_asset.id,
        }
    if info == "margin":
        return {"margin_call": 80, "margin_stop": 40}
    return {
        "altname": pair.altname, "wsname": pair.wsname, "aclass_base": "currency", "base": pair.base.id,
        "aclass_quote": "currency", "quote": pair.quote.id, "lot": "unit",
        "cost_decimals": pair.cost_decimals,
        "pair_decimals": pair.pair_decimals, "lot_decimals": pair.lot_decimals, "lot_multiplier": 1,
        "leverage_buy": [], "leverage_sell": [], "fees": fees, "fees_maker": fees_maker,
        "fee_volume_currency": ex.instruments.fee_volume_asset.id, "margin_call": 80, "margin_stop": 40,
        "ordermin": pair.volume_text(pair.ordermin_lots).rstrip("0").rstrip("."),
        "costmin": str(pair.raw_cost_decimal(pair.costmin_raw).normalize()),
        "tick_size": str(format_fixed(pair.tick_ticks, pair.pair_decimals)),
        "status": status, "long_position_limit": 0, "short_position_limit": 0,
    }  # fmt: skip


async def asset_pairs(ex: Exchange, p: Params) -> Any:
    info = opt_str(p, "info") or "info"
    if info not in ("info", "leverage", "fees", "margin"):
        raise invalid("info")
    aclass = opt_str(p, "aclass_base") or "currency"
    if aclass not in ("currency", "tokenized_asset"):
        raise invalid("aclass_base")
    if aclass == "tokenized_asset":
        return {}
    return {key: _pair_info(ex, pair, info) for key, pair in _pairs(ex, p, False)}


async def ticker(ex: Exchange, p: Params) -> Any:
    now = time.time_ns()
    out = {}
    for key, pair in _pairs(ex, p, False):
        pm = ex.market.pairs[pair.index]
        stats = pm.ticker.stats(now)
        out[key] = ticker_rest(
            stats, pm.book.best("ask"), pm.book.best("bid"), pair.pair_decimals, pair.lot_decimals
        )
    return out


async def ohlc(ex: Exchange, p: Params) -> Any:
    key, pair = _one_pair(ex, p)
    interval = opt_int(p, "interval", value_min=1, value_max=21600) or 1
    if interval not in INTERVALS_MIN:
        raise invalid("interval")
    since = opt_int(p, "since", value_min=0, value_max=2**40)
    candles, last = ex.market.pairs[pair.index].candles[interval].view(since, time.time_ns())
    return {key: [ohlc_rest_row(c, pair.pair_decimals, pair.lot_decimals) for c in candles], "last": last}


async def depth(ex: Exchange, p: Params) -> Any:
    key, pair = _one_pair(ex, p)
    count = opt_int(p, "count", value_min=1, value_max=DEPTH_COUNT_MAX) or DEPTH_COUNT_DEFAULT
    book = ex.market.pairs[pair.index].book
    pd, ld = pair.pair_decimals, pair.lot_decimals
    return {key: {"asks": depth_rest_rows(book.top_timed("ask", count), pd, ld),
                  "bids": depth_rest_rows(book.top_timed("bid", count), pd, ld)}}  # fmt: skip


async def trades(ex: Exchange, p: Params) -> Any:
    key, pair = _one_pair(ex, p)
    since = opt_int(p, "since", value_min=0, value_max=2**63 - 1)
    count = opt_int(p, "count", value_min=1, value_max=TRADES_COUNT_MAX) or TRADES_COUNT_MAX
    rows, last = ex.market.pairs[pair.index].tape.since(since, count)
    return {key: [trade_rest_row(t, pair.pair_decimals, pair.lot_decimals) for t in rows], "last": last}


async def spread(ex: Exchange, p: Params) -> Any:
    key, pair = _one_pair(ex, p)
    since = opt_int(p, "since", value_min=0, value_max=2**40)
    rows, last = ex.market.pairs[pair.index].spread.since(since)
    return {key: [spread_rest_row(r, pair.pair_decimals) for r in rows], "last": last}
