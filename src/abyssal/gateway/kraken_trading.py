"""Kraken's trading endpoints: AddOrder, AddOrderBatch, AmendOrder, EditOrder and the cancels."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from abyssal.core import ids
from abyssal.core.instruments import Pair
from abyssal.core.messages import (
    AmendOrder,
    CancelAll,
    CancelAllAfter,
    CancelCount,
    CancelOrders,
    EditOrder,
    Event,
    OrderAccepted,
    OrderAmended,
    PlaceBatch,
    PlaceOrder,
    PriceKind,
)
from abyssal.gateway import trading_limits as limits
from abyssal.gateway.context import Ctx, first_rejection, raise_if_rejected
from abyssal.gateway.errors import reject_text
from abyssal.gateway.formats import describe, volume_text
from abyssal.gateway.order_params import amend_price, find_pair, lots, place_order, price_parts
from abyssal.gateway.params import (
    INVALID_PRICE,
    INVALID_PRICE2,
    ParamError,
    Params,
    PriceSpec,
    int_text,
    invalid,
    object_list,
    opt_bool,
    opt_deadline_ns,
    opt_decimal,
    opt_int,
    opt_price,
    opt_str,
    str_list,
)

BATCH_ORDERS_MIN = 2
BATCH_ORDERS_MAX = 15
CANCEL_BATCH_MAX = 50
DEADLINE_AHEAD_NS_MAX = 60 * 10**9
DMS_TIMEOUT_S_MAX = 86_399
# Kraken's order-id shape (``OQCLML-BW3P3-BUCMWZ``). Our ids are a keyed bijection, so most ids of this
# shape decode to no number at all; Kraken cannot tell such an id from one it forgot, and neither do we.
KRAKEN_ORDER_ID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
NO_ORDER = 0  # order numbers start at 1: matches no order, so the engine answers "Unknown order"


def check_deadline(ctx: Ctx, p: Params) -> None:
    deadline = opt_deadline_ns(p)
    if deadline is None:
        return
    if deadline <= ctx.now_ns:
        raise ParamError("EService:Deadline elapsed")
    if deadline - ctx.now_ns > DEADLINE_AHEAD_NS_MAX:
        raise invalid("deadline")


def order_descr(pair: Pair, c: PlaceOrder) -> dict[str, str]:
    volume = volume_text(pair, c.volume_lots, c.flags)
    price = c.price_text or "0"
    price2 = c.price2_text or "0"
    return {"order": describe(pair, c.side, c.ordertype, volume, price, price2)}


def _accepted(events: list[Event], batch_index: int = -1) -> OrderAccepted | None:
    for e in events:
        if isinstance(e, OrderAccepted) and e.batch_index == batch_index:
            return e
    return None


async def add_order(ctx: Ctx, p: Params) -> Any:
    check_deadline(ctx, p)
    ins = ctx.exchange.instruments
    cmd = place_order(ins, p, ctx.account, ctx.now_ns)
    await limits.charge_add(ctx.exchange, ctx.account, ins.pairs[cmd.pair].id, ctx.now_ns)
    pair = ins.pairs[cmd.pair]
    events = await ctx.run(cmd)
    raise_if_rejected(events)
    result: dict[str, Any] = {"descr": order_descr(pair, cmd)}
    accepted = _accepted(events)
    if accepted is not None and not accepted.validate_only:
        result["txid"] = [ids.order_id(accepted.order_no)]
    return result


async def add_order_batch(ctx: Ctx, p: Params) -> Any:
    check_deadline(ctx, p)
    ins = ctx.exchange.instruments
    pair = find_pair(ins, p)
    raw_orders = object_list(p, "orders", items_max=BATCH_ORDERS_MAX)
    if len(raw_orders) < BATCH_ORDERS_MIN:
        raise invalid("orders")
    validate = opt_bool(p, "validate", False)
    orders = []
    for raw in raw_orders:
        o = place_order(ins, raw, ctx.account, ctx.now_ns, pair)
        orders.append(o if not validate else PlaceOrder(**{**_fields(o), "validate": True}))
    await limits.charge_batch_add(ctx.exchange, ctx.account, pair.id, len(orders), ctx.now_ns)
    events = await ctx.run(PlaceBatch(ts_ns=ctx.now_ns, orders=orders))
    out: list[dict[str, Any]] = []
    for i, o in enumerate(orders):
        rejected = first_rejection(events, i)
        if rejected is not None:
            out.append({"error": reject_text(rejected.reason, rejected.detail, pair)})
            continue
        entry: dict[str, Any] = {"descr": order_descr(pair, o)}
        accepted = _accepted(events, i)
        if accepted is not None and not accepted.validate_only:
            entry["txid"] = ids.order_id(accepted.order_no)
        out.append(entry)
    return {"orders": out}


def _fields(o: PlaceOrder) -> dict[str, Any]:
    return {f: getattr(o, f) for f in o.__struct_fields__}


def order_number(text: str) -> int:
    """The order behind a txid; ``NO_ORDER`` for a well-shaped id never issued; malformed is refused."""
    number = ids.decode("O", text)
    if number is not None:
        return number
    if KRAKEN_ORDER_ID.fullmatch(text):
        return NO_ORDER  # cancel/amend/edit answer "EOrder:Unknown order", as for any unknown id
    raise ParamError("EOrder:Invalid order")


async def _pair_of_order(ctx: Ctx, order_no: int) -> Pair | None:
    o = ctx.exchange.engine.s.orders.get(order_no)
    if o is None or o.account != ctx.account:
        return None
    pair: Pair = ctx.exchange.instruments.pairs[o.pair]
    return pair


async def amend_order(ctx: Ctx, p: Params) -> Any:
    check_deadline(ctx, p)
    txid = opt_str(p, "txid")
    cl_ord_id = opt_str(p, "cl_ord_id")
    if bool(txid) == bool(cl_ord_id):
        raise invalid("txid")
    order_no = order_number(txid) if txid else 0
    acct = ctx.exchange.engine.s.accounts.get(ctx.account)
    if cl_ord_id and acct is not None:
        order_no = acct.cl_ids.get(cl_ord_id, 0)
    pair = await _pair_of_order(ctx, order_no)
    if pair is None:
        raise ParamError("EOrder:Unknown order")
    qty = opt_decimal(p, "order_qty")
    display = opt_decimal(p, "display_qty")
    # absolute, or a +/- offset (or %) from the last trade that the engine resolves
    limit_kind, limit_ticks, limit_pct = amend_price(pair, opt_price(p, "limit_price"), "limit_price")
    trigger_kind, trigger_ticks, trigger_pct = amend_price(
        pair, opt_price(p, "trigger_price"), "trigger_price"
    )
    cmd = AmendOrder(
        ts_ns=ctx.now_ns,
        account=ctx.account,
        order_no=order_no,
        order_qty_lots=lots(pair, qty, "order_qty") if qty is not None else -1,
        display_lots=lots(pair, display, "display_qty") if display is not None else -1,
        limit_price_ticks=limit_ticks,
        trigger_price_ticks=trigger_ticks,
        post_only=opt_bool(p, "post_only", False),
        limit_price_kind=limit_kind,
        limit_price_pct_ppm=limit_pct,
        trigger_price_kind=trigger_kind,
        trigger_price_pct_ppm=trigger_pct,
    )
    await limits.charge_amend(ctx.exchange, ctx.account, pair.id, order_no, ctx.now_ns)
    events = await ctx.run(cmd)
    raise_if_rejected(events)
    amends = [e for e in events if isinstance(e, OrderAmended)]
    if amends:
        return {"amend_id": ids.amend_id(amends[0].amend_no)}
    # a quantity at or below what the order executed cancelled the rest (the contract): no amend
    # is recorded, and the answer's id is this order's own, never another amend's
    return {"amend_id": ids.amend_id(ids.CANCELLING_AMEND_BIT | order_no)}


async def edit_order(ctx: Ctx, p: Params) -> Any:
    check_deadline(ctx, p)
    ins = ctx.exchange.instruments
    pair = find_pair(ins, p)
    txid = opt_str(p, "txid")
    if not txid:
        raise invalid("txid")
    order_no = order_number(txid)
    live = await _pair_of_order(ctx, order_no)
    if live is None:
        raise ParamError("EOrder:Unknown order")
    if live.index != pair.index:
        raise invalid("pair")
    volume = opt_decimal(p, "volume")
    display = opt_decimal(p, "displayvol")
    price = _edit_price(pair, opt_price(p, "price"), INVALID_PRICE)
    price2 = _edit_price(pair, opt_price(p, "price2"), INVALID_PRICE2)
    flags = str_list(p, "oflags", items_max=4)
    if any(f not in ("post", "fcib", "fciq") for f in flags):
        raise invalid("oflags")
    validate = opt_bool(p, "validate", False)
    userref = opt_int(p, "userref", value_min=-(2**31), value_max=2**31 - 1)
    cmd = EditOrder(
        ts_ns=ctx.now_ns,
        account=ctx.account,
        order_no=order_no,
        volume_lots=lots(pair, volume, "volume") if volume is not None else -1,
        display_lots=lots(pair, display, "displayvol") if display is not None else -1,
        price_ticks=price,
        price2_ticks=price2,
        post_only=(1 if "post" in flags else 0) if "oflags" in p else -1,
        userref=userref if userref is not None and userref >= 0 else -1,
        validate=validate,
    )
    await limits.charge_edit(ctx.exchange, ctx.account, pair.id, order_no, ctx.now_ns)
    events = await ctx.run(cmd)
    raise_if_rejected(events)
    accepted = _accepted(events)
    assert accepted is not None, "an edit that was not rejected places a new order"
    price_text = pair.price_text(accepted.price_ticks)
    volume_text = pair.volume_text(accepted.volume_lots)
    result: dict[str, Any] = {
        "status": "ok",
        "originaltxid": txid,
        "volume": volume_text,
        "price": price_text,
        "price2": "0",
        "orders_cancelled": 0 if validate else 1,
        "descr": {"order": describe(pair, accepted.side, accepted.ordertype, volume_text, price_text, "0")},
    }
    if not accepted.validate_only:
        result["txid"] = ids.order_id(accepted.order_no)
    return result


def _edit_price(pair: Pair, spec: PriceSpec | None, error: str) -> int:
    """An EditOrder price in ticks, -1 when absent. Only absolute prices: the edit command has no
    relative kind for the engine to resolve (AmendOrder has), and reading ``-5`` as the price 5.0
    would place an order nobody asked for."""
    if spec is None:
        return -1
    kind, ticks_, _ = price_parts(pair, spec, error)
    if kind != int(PriceKind.abs):
        raise ParamError(error)
    return ticks_


def _cancel_targets(values: list[str]) -> tuple[list[int], list[int]]:
    order_nos: list[int] = []
    userrefs: list[int] = []
    for v in values:
        userref = int_text(v)
        if userref is not None:
            userrefs.append(userref)
        else:
            order_nos.append(order_number(v))
    return order_nos, userrefs


async def cancel_order(ctx: Ctx, p: Params) -> Any:
    txids = str_list(p, "txid", items_max=CANCEL_BATCH_MAX)
    cl_ord_id = opt_str(p, "cl_ord_id")
    if not txids and not cl_ord_id:
        raise invalid("txid")
    order_nos, userrefs = _cancel_targets(txids)
    cl_ord_ids = [cl_ord_id] if cl_ord_id else []
    cmd = CancelOrders(
        ts_ns=ctx.now_ns, account=ctx.account, order_nos=order_nos, cl_ord_ids=cl_ord_ids, userrefs=userrefs
    )
    await limits.charge_cancel(ctx.exchange, cmd)
    return {"count": _count(await ctx.run(cmd))}


def _count(events: list[Event]) -> int:
    raise_if_rejected(events)
    for e in events:
        if isinstance(e, CancelCount):
            return e.count
    return 0


async def cancel_order_batch(ctx: Ctx, p: Params) -> Any:
    raw = p.get("orders")
    values: list[str] = []
    if raw is not None:
        if not isinstance(raw, list):
            raise invalid("orders")
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("txid"), str):
                values.append(item["txid"])
            elif isinstance(item, str):
                values.append(item)
            else:
                raise invalid("orders")
    cl_ids = str_list(p, "cl_ord_ids", items_max=CANCEL_BATCH_MAX)
    if (not values and not cl_ids) or len(values) + len(cl_ids) > CANCEL_BATCH_MAX:
        raise invalid("orders")
    order_nos, userrefs = _cancel_targets(values)
    cmd = CancelOrders(
        ts_ns=ctx.now_ns, account=ctx.account, order_nos=order_nos, cl_ord_ids=cl_ids, userrefs=userrefs
    )
    await limits.charge_cancel(ctx.exchange, cmd)
    return {"count": _count(await ctx.run(cmd))}


async def cancel_all(ctx: Ctx, p: Params) -> Any:
    open_orders = limits.open_orders(ctx.exchange, ctx.account)
    await limits.charge_cancels(ctx.exchange, ctx.account, open_orders, ctx.now_ns)
    return {"count": _count(await ctx.run(CancelAll(ts_ns=ctx.now_ns, account=ctx.account)))}


def rfc3339_s(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def cancel_all_orders_after(ctx: Ctx, p: Params) -> Any:
    timeout = opt_int(p, "timeout", value_min=0, value_max=DMS_TIMEOUT_S_MAX)
    if timeout is None:
        raise invalid("timeout")
    cmd = CancelAllAfter(ts_ns=ctx.now_ns, account=ctx.account, key_no=ctx.key.key_no, timeout_s=timeout)
    events = await ctx.run(cmd)
    raise_if_rejected(events)
    trigger = ctx.now_ns + timeout * 10**9 if timeout else 0
    return {"currentTime": rfc3339_s(ctx.now_ns), "triggerTime": rfc3339_s(trigger) if timeout else "0"}
