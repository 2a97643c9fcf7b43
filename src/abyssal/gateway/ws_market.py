"""Public WebSocket v2 payloads (book, ticker, trade, ohlc, instrument, status) as exact JSON bytes.

Pure functions of the market data views and the instruments: every number is written with the
pair's (or asset's) precision through ``ws_codec.num``/``dec``, never through a binary float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from abyssal.core.instruments import Asset, Instruments, Pair
from abyssal.core.messages import Mode
from abyssal.gateway.ws_codec import Json, channel_frame, dec, num, utc_text
from abyssal.marketdata.candles import NS_PER_S, Candle, ohlc_ws_fields
from abyssal.marketdata.ticker import Level, ticker_ws
from abyssal.marketdata.trades_tape import PublicTrade, trade_ws_fields
from abyssal.runtime.market import PairMarket

API_VERSION: Final = "v2"
SERVER_VERSION: Final = "2.0.10"  # what Kraken reported in 2025 captures; clients only log it


def _levels(levels: Sequence[Level], pair: Pair) -> list[Json]:
    pd, ld = pair.pair_decimals, pair.lot_decimals
    return [{"price": num(price, pd), "qty": num(qty, ld)} for price, qty in levels]


def book_frame(
    pair: Pair,
    kind: str,
    asks: Sequence[Level],
    bids: Sequence[Level],
    checksum: int,
    time_ns: int | None = None,
) -> bytes:
    """``book`` snapshot or update; updates carry the time of the change (microseconds)."""
    data: Json = {"symbol": pair.symbol, "bids": _levels(bids, pair), "asks": _levels(asks, pair)}
    data["checksum"] = checksum
    if time_ns is not None:
        data["timestamp"] = utc_text(time_ns)
    return channel_frame("book", kind, [data])


def _exact(fields: Mapping[str, object]) -> Json:
    return {k: dec(v) if isinstance(v, Decimal) else v for k, v in fields.items()}


def ticker_frame(pm: PairMarket, kind: str, now_ns: int) -> bytes:
    """``ticker`` over the rolling 24 h with the touch of the book view."""
    pair = pm.pair
    stats = pm.ticker.stats(now_ns)
    fields = ticker_ws(stats, pm.book.best("ask"), pm.book.best("bid"), pair.pair_decimals, pair.lot_decimals)
    return channel_frame("ticker", kind, [{"symbol": pair.symbol, **_exact(fields)}])


def trade_frame(pair: Pair, kind: str, trades: Sequence[PublicTrade]) -> bytes:
    """``trade`` entries, oldest first, taker side (``data`` may be empty for an empty snapshot)."""
    pd, ld = pair.pair_decimals, pair.lot_decimals
    data = [{"symbol": pair.symbol, **_exact(trade_ws_fields(t, pd, ld))} for t in trades]
    return channel_frame("trade", kind, data)


def ohlc_entry(pair: Pair, candle: Candle, interval_min: int) -> Json:
    fields = _exact(ohlc_ws_fields(candle, interval_min, pair.pair_decimals, pair.lot_decimals))
    end_ns = (candle.start_s + interval_min * 60) * NS_PER_S
    return {"symbol": pair.symbol, **fields, "timestamp": utc_text(end_ns)}


def ohlc_frame(pair: Pair, kind: str, candles: Sequence[Candle], interval_min: int, now_ns: int) -> bytes:
    data = [ohlc_entry(pair, c, interval_min) for c in candles]
    return channel_frame("ohlc", kind, data, timestamp=utc_text(now_ns, 9))


def ohlc_snapshot(pm: PairMarket, interval_min: int, now_ns: int) -> bytes:
    candles, _ = pm.candles[interval_min].view(None, now_ns)
    return ohlc_frame(pm.pair, "snapshot", candles, interval_min, now_ns)


def _decimal_text(value: int, decimals: int) -> Decimal:
    """A value in units of 10**-decimals without trailing zeros (``cost_min`` 0.5, not 0.500…)."""
    return Decimal(value).scaleb(-decimals).normalize()


def _asset(asset: Asset) -> Json:
    return {
        "id": asset.code,
        "status": asset.status,
        "precision": asset.decimals,
        "precision_display": asset.display_decimals,
        "borrowable": False,
        "collateral_value": num(0, 2),
        "margin_rate": num(0, 6),
    }


def _pair(pair: Pair, mode: int) -> Json:
    pd, ld = pair.pair_decimals, pair.lot_decimals
    return {
        "symbol": pair.symbol,
        "base": pair.base.code,
        "quote": pair.quote.code,
        "status": Mode(mode).name if mode != Mode.online else pair.status,
        "qty_precision": ld,
        "qty_increment": num(1, ld),
        "price_precision": pd,
        "cost_precision": pair.cost_decimals,
        "marginable": False,
        "has_index": False,
        "cost_min": dec(_decimal_text(pair.costmin_raw, pd + ld)),
        "tick_size": num(pair.tick_ticks, pd),
        "price_increment": num(pair.tick_ticks, pd),
        "qty_min": num(pair.ordermin_lots, ld),
    }


def instrument_frame(instruments: Instruments, modes: Sequence[int], kind: str) -> bytes:
    """``instrument``: ``data`` is an object with every asset and pair (and each pair's mode)."""
    data = {
        "assets": [_asset(a) for a in instruments.assets],
        "pairs": [_pair(p, modes[p.index]) for p in instruments.pairs],
    }
    return channel_frame("instrument", kind, data)


def status_frame(system_mode: int, connection_id: int) -> bytes:
    """``status``: sent on connect and again when the system mode changes."""
    data = [
        {
            "api_version": API_VERSION,
            "connection_id": connection_id,
            "system": Mode(system_mode).name,
            "version": SERVER_VERSION,
        }
    ]
    return channel_frame("status", "update", data)
