"""Order and own-trade entries of the ``executions`` channel, with every number at its precision."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Final

from abyssal.core import ids
from abyssal.core.book import Order
from abyssal.core.instruments import Pair
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    TRIGGERED_TYPES,
    CloseReason,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from abyssal.gateway.errors import CLOSE_REASON_TEXT
from abyssal.gateway.ws_codec import Json, dec, num, utc_text
from abyssal.marketdata.candles import vwap_ticks

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

STOP_LIMITS: Final = (OrderType.stop_loss_limit, OrderType.take_profit_limit, OrderType.trailing_stop_limit)
NO_LIMIT_PRICE: Final = (
    OrderType.market,
    OrderType.stop_loss,
    OrderType.take_profit,
    OrderType.trailing_stop,
)
TRADE_SNAPSHOT_ROWS: Final = 50
FEE_CURRENCY: Final = "USD"


@dataclass(slots=True)
class Track:
    """What the channel needs to know about one live order."""

    order_no: int
    account: int
    pair: int
    side: int
    ordertype: int
    volume_lots: int
    limit_ticks: int
    stop_ticks: int
    display_lots: int
    flags: int
    tif: int
    userref: int
    cl_ord_id: str
    opened_ns: int
    start_ns: int
    expire_ns: int
    status: str = "new"  # pending_new | new | partially_filled
    cum_lots: int = 0
    cum_raw: int = 0  # sum of price_ticks * volume_lots over fills
    fee_minor: int = 0
    triggered_ticks: int = 0

    @classmethod
    def from_accepted(cls, e: OrderAccepted) -> Track:
        status = "pending_new" if e.status == OrderStatus.pending else "new"
        return cls(
            e.order_no,
            e.account,
            e.pair,
            e.side,
            e.ordertype,
            e.volume_lots,
            e.price_ticks,
            e.stop_ticks,
            e.display_lots,
            e.flags,
            e.tif,
            e.userref,
            e.cl_ord_id,
            e.ts_ns,
            e.start_ns,
            e.expire_ns,
            status,
        )

    @classmethod
    def from_order(cls, o: Order) -> Track:
        limit = o.price2_ticks if o.ordertype in STOP_LIMITS and not o.triggered else o.limit_ticks
        status = "pending_new" if o.start_ns else "partially_filled" if o.filled_lots else "new"
        track = cls(
            o.order_no,
            o.account,
            o.pair,
            0 if o.is_buy else 1,
            o.ordertype,
            o.volume_lots,
            limit,
            o.stop_ticks,
            o.display_lots,
            o.flags,
            o.tif,
            o.userref,
            o.cl_ord_id,
            o.opened_ns,
            o.start_ns,
            o.expire_ns,
            status,
        )
        track.cum_lots, track.cum_raw, track.fee_minor = o.filled_lots, o.cost_raw, o.fee_paid_minor
        return track

    def amend(self, e: OrderAmended) -> None:
        self.volume_lots, self.display_lots = e.volume_lots, e.display_lots
        self.limit_ticks, self.stop_ticks = e.price_ticks, e.stop_ticks


def _fee_asset(ex: Exchange, pair: Pair, flags: int) -> int:
    return pair.base.index if flags & FLAG_FCIB else pair.quote.index


def fee_usd(ex: Exchange, asset_index: int, fee_minor: int) -> object:
    """The fee valued in USD at the last trade prices (0 when there is no route)."""
    usd = ex.instruments.asset(FEE_CURRENCY)
    if usd is None:
        return num(0, 4)
    asset = ex.instruments.assets[asset_index]
    value = ex.market.value_in(asset, asset.from_minor(fee_minor), usd) if fee_minor else Decimal(0)
    return dec(value.quantize(Decimal(1).scaleb(-usd.decimals), rounding=ROUND_HALF_EVEN))


def cost_text(pair: Pair, raw: int) -> object:
    """A raw cost (ticks x lots) at the pair's cost precision, half-even. REST ``cost`` is what the side
    paid or received instead (rounded for it, as the ledger shows: ``formats.order_info``)."""
    exact = pair.raw_cost_decimal(raw)
    return dec(exact.quantize(Decimal(1).scaleb(-pair.cost_decimals), rounding=ROUND_HALF_EVEN))


def _base(ex: Exchange, t: Track, exec_type: str, status: str, time_ns: int) -> Json:
    entry: Json = {
        "order_id": ids.order_id(t.order_no),
        "symbol": ex.instruments.pairs[t.pair].symbol,
        "exec_type": exec_type,
        "order_status": status,
        "order_userref": t.userref,
    }
    if t.cl_ord_id:
        entry["cl_ord_id"] = t.cl_ord_id
    entry["timestamp"] = utc_text(time_ns)
    return entry


def full_entry(ex: Exchange, t: Track, exec_type: str, status: str, time_ns: int) -> Json:
    """Every field of an order (``pending_new`` and snapshots)."""
    pair = ex.instruments.pairs[t.pair]
    pd, ld = pair.pair_decimals, pair.lot_decimals
    order_type = OrderType(t.ordertype)
    entry = _base(ex, t, exec_type, status, time_ns)
    if t.flags & FLAG_VIQC:
        entry["cash_order_qty"] = num(t.volume_lots, pair.quote.decimals)
    else:
        entry["order_qty"] = num(t.volume_lots, ld)
    entry.update(
        side="buy" if t.side == 0 else "sell",
        order_type=order_type.kraken,
        time_in_force=TimeInForce(t.tif).name.upper(),
        cum_qty=num(t.cum_lots, ld),
        cum_cost=cost_text(pair, t.cum_raw),
        fee_usd_equiv=fee_usd(ex, _fee_asset(ex, pair, t.flags), t.fee_minor),
        fee_ccy_pref="fcib" if t.flags & FLAG_FCIB else "fciq",
    )
    if order_type not in NO_LIMIT_PRICE:
        entry["limit_price_type"] = "static"
        entry["limit_price"] = num(t.limit_ticks, pd)
    if order_type in TRIGGERED_TYPES:
        entry["stop_price"] = num(t.stop_ticks, pd)
        entry["triggers"] = _triggers(t, pd)
    if order_type == OrderType.iceberg:
        entry["display_qty"] = num(t.display_lots, ld)
    if t.flags & FLAG_POST:
        entry["post_only"] = True
    if t.flags & FLAG_NOMPP:
        entry["no_mpp"] = True
    if t.start_ns:
        entry["effective_time"] = utc_text(t.start_ns)
    if t.expire_ns:
        entry["expire_time"] = utc_text(t.expire_ns)
    return entry


def _triggers(t: Track, pd: int) -> Json:
    triggers: Json = {"reference": "last", "price": num(t.stop_ticks, pd), "price_type": "static"}
    triggers["status"] = "triggered" if t.triggered_ticks else "untriggered"
    if t.triggered_ticks:
        triggers["actual_price"] = num(t.triggered_ticks, pd)
    return triggers


def state_entry(ex: Exchange, t: Track, exec_type: str, time_ns: int) -> Json:
    """A sparse update (``new``, ``amended``, ``status``), with what changed."""
    pair = ex.instruments.pairs[t.pair]
    entry = _base(ex, t, exec_type, t.status, time_ns)
    entry["side"] = "buy" if t.side == 0 else "sell"
    entry["order_type"] = OrderType(t.ordertype).kraken
    if exec_type == "amended":
        entry.update(amended=True, reason="User requested", order_qty=num(t.volume_lots, pair.lot_decimals))
        entry["cum_qty"] = num(t.cum_lots, pair.lot_decimals)
        if OrderType(t.ordertype) not in NO_LIMIT_PRICE:
            entry["limit_price"] = num(t.limit_ticks, pair.pair_decimals)
            entry["limit_price_type"] = "static"
        if t.display_lots:
            entry["display_qty"] = num(t.display_lots, pair.lot_decimals)
    if exec_type == "status":
        entry["triggers"] = _triggers(t, pair.pair_decimals)
    return entry


def trade_entry(ex: Exchange, t: Track, f: Fill, maker: bool) -> Json:
    """One fill of one side (``exec_type: trade``); updates the track's cumulative figures."""
    pair = ex.instruments.pairs[t.pair]
    fee_asset, fee_minor = (
        (f.maker_fee_asset, f.maker_fee_minor) if maker else (f.taker_fee_asset, f.taker_fee_minor)
    )
    t.cum_lots += f.volume_lots
    t.cum_raw += f.cost_raw
    t.fee_minor += fee_minor
    filled = not t.flags & FLAG_VIQC and t.cum_lots >= t.volume_lots
    t.status = "filled" if filled else "partially_filled"
    return _trade(
        ex, t, pair, f.pair, f.trade_no, f.price_ticks, f.volume_lots, maker, fee_asset, fee_minor, f.ts_ns
    )


def _trade(
    ex: Exchange, t: Track, pair: Pair, pair_index: int, trade_no: int, price_ticks: int, volume_lots: int,
    maker: bool, fee_asset: int, fee_minor: int, time_ns: int,
) -> Json:  # fmt: skip
    entry: Json = {
        "order_id": ids.order_id(t.order_no),
        "symbol": pair.symbol,
        "exec_id": ids.trade_id(pair_index, trade_no),
        "exec_type": "trade",
        "trade_id": trade_no,
        "side": "buy" if t.side == 0 else "sell",
        "order_type": OrderType(t.ordertype).kraken,
        "last_qty": num(volume_lots, pair.lot_decimals),
        "last_price": num(price_ticks, pair.pair_decimals),
        "liquidity_ind": "m" if maker else "t",
        "cost": cost_text(pair, price_ticks * volume_lots),
        "order_userref": t.userref,
        "order_status": t.status,
        "timestamp": utc_text(time_ns),
        "fee_usd_equiv": fee_usd(ex, fee_asset, fee_minor),
        "fees": [
            {
                "asset": ex.instruments.assets[fee_asset].code,
                "qty": num(fee_minor, ex.instruments.assets[fee_asset].decimals),
            }
        ],
    }
    if t.cl_ord_id:
        entry["cl_ord_id"] = t.cl_ord_id
    return entry


def closed_entry(ex: Exchange, t: Track, exec_type: str, reason: int, time_ns: int) -> Json:
    """``filled`` / ``canceled`` / ``expired`` with the order's totals."""
    pair = ex.instruments.pairs[t.pair]
    entry = _base(ex, t, exec_type, exec_type, time_ns)
    entry.update(
        side="buy" if t.side == 0 else "sell",
        order_type=OrderType(t.ordertype).kraken,
        cum_qty=num(t.cum_lots, pair.lot_decimals),
        cum_cost=cost_text(pair, t.cum_raw),
        avg_price=num(vwap_ticks(t.cum_raw, t.cum_lots), pair.pair_decimals),
        fee_usd_equiv=fee_usd(ex, _fee_asset(ex, pair, t.flags), t.fee_minor),
    )
    text = CLOSE_REASON_TEXT.get(CloseReason(reason))
    if exec_type != "filled" and text:
        entry["cancel_reason"] = text
        entry["reason"] = text
    return entry


def trade_snapshot_rows(ex: Exchange, account: int, limits: list[int]) -> list[Json]:
    """The account's last 50 fills up to ``limits[pair]`` (trade numbers), oldest first (blocking)."""
    clause = " OR ".join("(f.pair = ? AND f.trade_no <= ?)" for _ in limits) or "0"
    args: list[int] = [account]
    for pair_index, limit in enumerate(limits):
        args.extend((pair_index, limit))
    rows = (
        ex.store.conn()
        .execute(
            "SELECT f.pair, f.trade_no, f.order_no, f.price_ticks, f.volume_lots, f.fee_asset, f.fee_minor, "
            "f.maker, f.ts_ns, o.side, o.ordertype, o.userref, o.cl_ord_id, o.status, o.flags, o.volume_lots "
            f"FROM fills f JOIN orders o ON o.order_no = f.order_no WHERE f.account = ? AND ({clause}) "
            "ORDER BY f.ts_ns DESC, f.trade_no DESC LIMIT ?",
            (*args, TRADE_SNAPSHOT_ROWS),
        )
        .fetchall()
    )
    out: list[Json] = []
    for (
        pair_i,
        trade_no,
        order_no,
        price,
        volume,
        fee_asset,
        fee,
        maker,
        ts,
        side,
        otype,
        userref,
        cl_id,
        status,
        flags,
        lots,
    ) in reversed(rows):
        pair = ex.instruments.pairs[pair_i]
        t = Track(order_no, account, pair_i, side, otype, lots, 0, 0, 0, flags, 0, userref, cl_id, ts, 0, 0)
        t.status = "filled" if status == OrderStatus.closed else "partially_filled"
        out.append(_trade(ex, t, pair, pair_i, trade_no, price, volume, bool(maker), fee_asset, fee, ts))
    return out
