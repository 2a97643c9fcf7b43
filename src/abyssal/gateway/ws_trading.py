"""WebSocket v2 trading methods: the same engine commands as REST, Kraken's WS replies.

Each method checks the token (and the key's permission), parses through the REST parsers
(``ws_order_params``), runs one command through the sequencer, and answers once it is durable.
Rejections map through the one table in ``gateway/errors.py``; ``error`` is a string here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import structlog

from abyssal.core import ids
from abyssal.core.messages import (
    AmendOrder,
    CancelAll,
    CancelAllAfter,
    CancelCount,
    CancelOrders,
    Command,
    EditOrder,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    PlaceBatch,
    PlaceOrder,
)
from abyssal.gateway.auth import Permission
from abyssal.gateway.context import first_rejection
from abyssal.gateway.errors import reject_text
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.order_params import lots, place_order, ticks
from abyssal.gateway.params import ParamError, invalid, opt_deadline_ns
from abyssal.gateway.ws_codec import Json, Reply
from abyssal.gateway.ws_order_params import FieldError, check_fields, number, rest_order
from abyssal.gateway.ws_tokens import TokenError
from abyssal.runtime.sequencer import Busy, Unavailable

if TYPE_CHECKING:
    from abyssal.gateway.ws_session import Session

log = structlog.get_logger("abyssal.ws")

Handler = Callable[["Session", ApiKey, Json, Reply], Awaitable[list[bytes]]]

BATCH_ORDERS_MIN: Final = 2
BATCH_ORDERS_MAX: Final = 15
CANCEL_IDS_MAX: Final = 50
DEADLINE_AHEAD_NS_MAX: Final = 60 * 10**9
DMS_TIMEOUT_S_MAX: Final = 86_399
UNKNOWN_ORDER: Final = "EOrder:Unknown order"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


async def run(session: Session, method: str, params: Json, reply: Reply) -> None:
    """Run one trading request and send its replies (never raises for client mistakes)."""
    try:
        key = session.authorize(params.get("token"), PERMISSIONS[method])
        frames = await HANDLERS[method](session, key, params, reply)
    except TokenError as err:
        frames = [reply.error(err.text)]
    except ParamError as err:
        frames = [reply.error(err.kraken)]
    except FieldError as err:
        frames = [reply.error(err.text)]
    except Busy:
        frames = [reply.error("EService:Busy")]
    except Unavailable:
        frames = [reply.error("EService:Unavailable")]
    except Exception as exc:  # a fault: logged, never a traceback to the client
        log.exception("ws_trading_failed", method=method, error=repr(exc))
        frames = [reply.error("EGeneral:Internal error")]
    for frame in frames:
        session.send(frame)


async def _execute(session: Session, command: Command) -> list[Event]:
    return await session.service.exchange.execute(command)


def _check_deadline(params: Json, now_ns: int) -> None:
    deadline = opt_deadline_ns(params)
    if deadline is None:
        return
    if deadline <= now_ns:
        raise ParamError("EService:Deadline elapsed")
    if deadline - now_ns > DEADLINE_AHEAD_NS_MAX:
        raise invalid("deadline")


def _raise_rejected(events: list[Event], index: int = -1) -> None:
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
    _check_deadline(rest, now)
    command = place_order(session.service.instruments, rest, key.account, now)
    events = await _execute(session, command)
    _raise_rejected(events)
    return [reply.ok(_order_result(_accepted(events), command, params))]


async def batch_add(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"symbol", "orders", "deadline", "validate", "token"}), "batch add")
    now = time.time_ns()
    _check_deadline(params, now)
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
    events = await _execute(session, PlaceBatch(ts_ns=now, orders=commands))
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


def _static_price(params: Json, name: str, type_name: str) -> Decimal | None:
    if params.get(type_name, "static") != "static":
        raise invalid(type_name)  # relative amend prices are not offered (as on REST)
    return number(params, name)


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
    _check_deadline(params, now)
    order_no = _order_no(session, key, params)
    pair = session.service.instruments.pairs[session.service.exchange.engine.s.orders[order_no].pair]
    qty, display = number(params, "order_qty"), number(params, "display_qty")
    limit = _static_price(params, "limit_price", "limit_price_type")
    trigger = _static_price(params, "trigger_price", "trigger_price_type")
    post_only = params.get("post_only", False)
    if not isinstance(post_only, bool):
        raise invalid("post_only")
    bad_price = "EOrder:Invalid price:Invalid price argument"
    command = AmendOrder(
        ts_ns=now,
        account=key.account,
        order_no=order_no,
        order_qty_lots=lots(pair, qty, "order_qty") if qty is not None else -1,
        display_lots=lots(pair, display, "display_qty") if display is not None else -1,
        limit_price_ticks=ticks(pair, limit, bad_price) if limit is not None else -1,
        trigger_price_ticks=ticks(pair, trigger, bad_price) if trigger is not None else -1,
        post_only=post_only,
    )
    events = await _execute(session, command)
    _raise_rejected(events)
    amend_no = next((e.amend_no for e in events if isinstance(e, OrderAmended)), 0)
    result: Json = {"amend_id": ids.amend_id(max(1, amend_no)), "order_id": ids.order_id(order_no)}
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
    _check_deadline(params, now)
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
    events = await _execute(session, command)
    _raise_rejected(events)
    accepted = _accepted(events)
    new_id = ids.order_id(accepted.order_no) if accepted is not None and not accepted.validate_only else ""
    return [reply.ok({"order_id": new_id, "original_order_id": params["order_id"]})]


def _str_list(params: Json, name: str) -> list[str]:
    value = params.get(name, [])
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or len(value) > CANCEL_IDS_MAX
        or not all(isinstance(v, str) for v in value)
    ):
        raise invalid(name)
    return value


def _int_list(params: Json, name: str) -> list[int]:
    value = params.get(name, [])
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or len(value) > CANCEL_IDS_MAX:
        raise invalid(name)
    if not all(isinstance(v, int) and not isinstance(v, bool) and INT32_MIN <= v <= INT32_MAX for v in value):
        raise invalid(name)
    return value


def _closed(events: list[Event]) -> list[int]:
    return [e.order_no for e in events if isinstance(e, OrderClosed)]


async def cancel_order(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"order_id", "cl_ord_id", "order_userref", "token"}), "cancel order")
    order_ids, cl_ids = _str_list(params, "order_id"), _str_list(params, "cl_ord_id")
    userrefs = _int_list(params, "order_userref")
    if not order_ids and not cl_ids and not userrefs:
        raise invalid("order_id")
    numbers = {text_id: ids.decode("O", text_id) for text_id in order_ids}
    acct = session.service.exchange.engine.s.accounts.get(key.account)
    by_cl = {cl: acct.cl_ids.get(cl, 0) if acct is not None else 0 for cl in cl_ids}
    command = CancelOrders(
        ts_ns=time.time_ns(),
        account=key.account,
        order_nos=[n for n in numbers.values() if n],
        cl_ord_ids=cl_ids,
        userrefs=userrefs,
    )
    events = await _execute(session, command)
    _raise_rejected(events)
    closed = _closed(events)
    frames = [
        reply.ok({"order_id": t}) if numbers[t] in closed else reply.error(UNKNOWN_ORDER) for t in order_ids
    ]
    frames += [
        reply.ok({"cl_ord_id": c}) if by_cl[c] in closed else reply.error(UNKNOWN_ORDER) for c in cl_ids
    ]
    named = set(numbers.values()) | set(by_cl.values())
    frames += [reply.ok({"order_id": ids.order_id(n)}) for n in closed if n not in named]  # by userref
    return frames or [reply.error(UNKNOWN_ORDER)]


async def batch_cancel(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"orders", "cl_ord_id", "token"}), "batch cancel")
    values, cl_ids = _str_list(params, "orders"), _str_list(params, "cl_ord_id")
    if not BATCH_ORDERS_MIN <= len(values) + len(cl_ids) <= CANCEL_IDS_MAX:
        raise invalid("orders")
    order_nos: list[int] = []
    userrefs: list[int] = []
    for value in values:
        if value.lstrip("-").isdigit() and INT32_MIN <= int(value) <= INT32_MAX:
            userrefs.append(int(value))
            continue
        number_ = ids.decode("O", value)
        if number_ is None:
            raise ParamError("EOrder:Invalid order")
        order_nos.append(number_)
    command = CancelOrders(
        ts_ns=time.time_ns(), account=key.account, order_nos=order_nos, cl_ord_ids=cl_ids, userrefs=userrefs
    )
    events = await _execute(session, command)
    _raise_rejected(events)
    return [reply.ok(None, orders_cancelled=_count(events))]


def _count(events: list[Event]) -> int:
    return next((e.count for e in events if isinstance(e, CancelCount)), 0)


async def cancel_all(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"token"}), "cancel all")
    events = await _execute(session, CancelAll(ts_ns=time.time_ns(), account=key.account))
    _raise_rejected(events)
    return [reply.ok({"count": _count(events)})]


def _rfc3339_s(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def cancel_all_orders_after(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"timeout", "token"}), "cancel all orders after")
    timeout = params.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout <= DMS_TIMEOUT_S_MAX:
        raise invalid("timeout")
    now = time.time_ns()
    command = CancelAllAfter(ts_ns=now, account=key.account, key_no=key.key_no, timeout_s=timeout)
    events = await _execute(session, command)
    _raise_rejected(events)
    trigger = _rfc3339_s(now + timeout * 10**9) if timeout else "0"
    return [reply.ok({"currentTime": _rfc3339_s(now), "triggerTime": trigger})]


HANDLERS: Final[dict[str, Handler]] = {
    "add_order": add_order,
    "amend_order": amend_order,
    "edit_order": edit_order,
    "cancel_order": cancel_order,
    "cancel_all": cancel_all,
    "cancel_all_orders_after": cancel_all_orders_after,
    "batch_add": batch_add,
    "batch_cancel": batch_cancel,
}
PERMISSIONS: Final[dict[str, Permission]] = {
    "add_order": Permission.CREATE_ORDERS,
    "amend_order": Permission.CREATE_ORDERS,
    "edit_order": Permission.CREATE_ORDERS,
    "cancel_order": Permission.CANCEL_ORDERS,
    "cancel_all": Permission.CANCEL_ORDERS,
    "cancel_all_orders_after": Permission.CANCEL_ORDERS,
    "batch_add": Permission.CREATE_ORDERS,
    "batch_cancel": Permission.CANCEL_ORDERS,
}
