"""WebSocket v2 methods that place or change orders: add_order, batch_add, amend_order, edit_order.

Parsing goes through the REST parsers (``ws_order_params``), so both doors accept and refuse the
same orders; each method runs one engine command and answers once it is durable.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from abyssal.core import ids
from abyssal.core.messages import (
    AmendOrder,
    Command,
    EditOrder,
    Event,
    OrderAccepted,
    OrderAmended,
    PlaceBatch,
    PlaceOrder,
)
from abyssal.gateway import trading_limits as limits
from abyssal.gateway.context import first_rejection
from abyssal.gateway.errors import reject_text
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.order_params import lots, place_order, ticks
from abyssal.gateway.params import ParamError, invalid, opt_deadline_ns
from abyssal.gateway.ws_codec import Json, Reply
from abyssal.gateway.ws_order_params import amend_price_parts, check_fields, number, rest_order

if TYPE_CHECKING:
    from abyssal.gateway.ws_session import Session

BATCH_ORDERS_MIN: Final = 2
BATCH_ORDERS_MAX: Final = 15
DEADLINE_AHEAD_NS_MAX: Final = 60 * 10**9
UNKNOWN_ORDER: Final = "EOrder:Unknown order"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


async def execute(session: Session, command: Command) -> list[Event]:
    return await session.service.exchange.execute(command)


def check_deadline(params: Json, now_ns: int) -> None:
    deadline = opt_deadline_ns(params)
    if deadline is None:
        return
    if deadline <= now_ns:
        raise ParamError("EService:Deadline elapsed")
    if deadline - now_ns > DEADLINE_AHEAD_NS_MAX:
        raise invalid("deadline")


def raise_rejected(events: list[Event], index: int = -1) -> None:
    rejected = first_rejection(events, index)
    if rejected is not None:
        raise ParamError(reject_text(rejected.reason, rejected.detail))


def _accepted(events: list[Event], index: int = -1) -> OrderAccepted | None:
    for e in events:
        if isinstance(e, OrderAccepted) and e.batch_index == index:
            return e
    return None


def _order_result(accepted: OrderAccepted | None, command: PlaceOrder, params: Json) -> Json:
    order_id = ids.order_id(accepted.order_no) if accepted is not None and not accepted.validate_only else ""
    result: Json = {"order_id": order_id}
    if command.cl_ord_id:
        result["cl_ord_id"] = command.cl_ord_id
    if "order_userref" in params:
        result["order_userref"] = command.userref
    return result


async def add_order(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    now = time.time_ns()
    rest = rest_order(params)
    check_deadline(rest, now)
    command = place_order(session.service.instruments, rest, key.account, now)
    pair_id = session.service.instruments.pairs[command.pair].id
    await limits.charge_add(session.service.exchange, key.account, pair_id, now)
    events = await execute(session, command)
    raise_rejected(events)
    return [reply.ok(_order_result(_accepted(events), command, params))]


async def batch_add(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"symbol", "orders", "deadline", "validate", "token"}), "batch add")
    now = time.time_ns()
    check_deadline(params, now)
    symbol = params.get("symbol")
    raw = params.get("orders")
    if not isinstance(symbol, str) or session.service.instruments.pair(symbol) is None:
        raise ParamError("EQuery:Unknown asset pair")
    if not isinstance(raw, list) or not BATCH_ORDERS_MIN <= len(raw) <= BATCH_ORDERS_MAX:
        raise invalid("orders")
    validate = params.get("validate", False)
    if not isinstance(validate, bool):
        raise invalid("validate")
    commands = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid("orders")
        rest = rest_order(item, "batch add", symbol)
        rest["validate"] = validate
        commands.append(place_order(session.service.instruments, rest, key.account, now))
    pair_id = session.service.instruments.pairs[commands[0].pair].id
    await limits.charge_batch_add(session.service.exchange, key.account, pair_id, len(commands), now)
    events = await execute(session, PlaceBatch(ts_ns=now, orders=commands))
    result: list[Json] = []
    for index, (command, item) in enumerate(zip(commands, raw, strict=True)):
        rejected = first_rejection(events, index)
        if rejected is not None:
            result.append({"error": reject_text(rejected.reason, rejected.detail)})
        else:
            result.append(_order_result(_accepted(events, index), command, item))
    return [reply.ok(result)]


def _order_no(session: Session, key: ApiKey, params: Json) -> int:
    """``order_id`` or ``cl_ord_id`` (exactly one) to a live order of this account."""
    order_id, cl_ord_id = params.get("order_id"), params.get("cl_ord_id")
    if (order_id is None) == (cl_ord_id is None):
        raise invalid("order_id")
    state = session.service.exchange.engine.s
    if isinstance(order_id, str):
        number_ = ids.decode("O", order_id)
        if number_ is None:
            raise ParamError("EOrder:Invalid order")
    elif isinstance(cl_ord_id, str):
        acct = state.accounts.get(key.account)
        number_ = acct.cl_ids.get(cl_ord_id, 0) if acct is not None else 0
    else:
        raise invalid("order_id")
    live = state.orders.get(number_)
    if live is None or live.account != key.account:
        raise ParamError(UNKNOWN_ORDER)
    return number_


async def amend_order(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(
        params,
        frozenset(
            {
                "order_id",
                "cl_ord_id",
                "order_qty",
                "display_qty",
                "limit_price",
                "limit_price_type",
                "post_only",
                "trigger_price",
                "trigger_price_type",
                "deadline",
                "token",
            }
        ),
        "amend order",
    )
    now = time.time_ns()
    check_deadline(params, now)
    order_no = _order_no(session, key, params)
    pair = session.service.instruments.pairs[session.service.exchange.engine.s.orders[order_no].pair]
    qty, display = number(params, "order_qty"), number(params, "display_qty")
    # static, or a quote/pct offset from the last trade that the engine resolves (as on REST)
    limit_kind, limit_ticks, limit_pct = amend_price_parts(pair, params, "limit_price", "limit_price_type")
    trigger_kind, trigger_ticks, trigger_pct = amend_price_parts(
        pair, params, "trigger_price", "trigger_price_type"
    )
    post_only = params.get("post_only", False)
    if not isinstance(post_only, bool):
        raise invalid("post_only")
    command = AmendOrder(
        ts_ns=now,
        account=key.account,
        order_no=order_no,
        order_qty_lots=lots(pair, qty, "order_qty") if qty is not None else -1,
        display_lots=lots(pair, display, "display_qty") if display is not None else -1,
        limit_price_ticks=limit_ticks,
        trigger_price_ticks=trigger_ticks,
        post_only=post_only,
        limit_price_kind=limit_kind,
        limit_price_pct_ppm=limit_pct,
        trigger_price_kind=trigger_kind,
        trigger_price_pct_ppm=trigger_pct,
    )
    await limits.charge_amend(session.service.exchange, key.account, pair.id, order_no, now)
    events = await execute(session, command)
    raise_rejected(events)
    # no OrderAmended: the quantity cancelled the rest, and the id is the order's own (as on REST)
    amend_no = next(
        (e.amend_no for e in events if isinstance(e, OrderAmended)), ids.CANCELLING_AMEND_BIT | order_no
    )
    result: Json = {"amend_id": ids.amend_id(amend_no), "order_id": ids.order_id(order_no)}
    if isinstance(params.get("cl_ord_id"), str):
        result["cl_ord_id"] = params["cl_ord_id"]
    return [reply.ok(result)]


async def edit_order(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(
        params,
        frozenset(
            {
                "order_id",
                "symbol",
                "order_qty",
                "limit_price",
                "display_qty",
                "fee_preference",
                "no_mpp",
                "order_userref",
                "post_only",
                "reduce_only",
                "triggers",
                "deadline",
                "validate",
                "token",
            }
        ),
        "edit order",
    )
    now = time.time_ns()
    check_deadline(params, now)
    if not isinstance(params.get("order_id"), str):
        raise invalid("order_id")
    order_no = _order_no(session, key, {"order_id": params["order_id"]})
    ins = session.service.instruments
    pair = ins.pairs[session.service.exchange.engine.s.orders[order_no].pair]
    symbol = params.get("symbol")
    named = ins.pair(symbol) if isinstance(symbol, str) else None
    if named is None:
        raise ParamError("EQuery:Unknown asset pair")
    if named is not pair:
        raise invalid("symbol")
    qty, display, limit = (
        number(params, "order_qty"),
        number(params, "display_qty"),
        number(params, "limit_price"),
    )
    userref = params.get("order_userref")
    if userref is not None and (isinstance(userref, bool) or not isinstance(userref, int)
                                or not INT32_MIN <= userref <= INT32_MAX):  # fmt: skip
        raise invalid("order_userref")
    for flag in ("post_only", "validate", "reduce_only", "no_mpp"):
        if not isinstance(params.get(flag, False), bool):
            raise invalid(flag)
    if params.get("reduce_only"):
        raise invalid("reduce_only")
    command = EditOrder(
        ts_ns=now,
        account=key.account,
        order_no=order_no,
        volume_lots=lots(pair, qty, "order_qty") if qty is not None else -1,
        display_lots=lots(pair, display, "display_qty") if display is not None else -1,
        price_ticks=ticks(pair, limit, "EOrder:Invalid price:Invalid price argument")
        if limit is not None
        else -1,
        post_only=int(params["post_only"]) if "post_only" in params else -1,
        userref=userref if userref is not None and userref >= 0 else -1,
        validate=bool(params.get("validate", False)),
    )
    await limits.charge_edit(session.service.exchange, key.account, pair.id, order_no, now)
    events = await execute(session, command)
    raise_rejected(events)
    accepted = _accepted(events)
    new_id = ids.order_id(accepted.order_no) if accepted is not None and not accepted.validate_only else ""
    return [reply.ok({"order_id": new_id, "original_order_id": params["order_id"]})]
