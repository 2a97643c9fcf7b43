"""WebSocket v2 cancel methods: cancel_order, batch_cancel, cancel_all, cancel_all_orders_after."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from abyssal.core import ids
from abyssal.core.messages import CancelAll, CancelAllAfter, CancelCount, CancelOrders, Event, OrderClosed
from abyssal.gateway import trading_limits as limits
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.params import ParamError, int_text, invalid
from abyssal.gateway.ws_codec import Json, Reply
from abyssal.gateway.ws_order_params import check_fields
from abyssal.gateway.ws_placing import (
    BATCH_ORDERS_MIN,
    INT32_MAX,
    INT32_MIN,
    UNKNOWN_ORDER,
    execute,
    raise_rejected,
)

if TYPE_CHECKING:
    from abyssal.gateway.ws_session import Session

CANCEL_IDS_MAX: Final = 50
DMS_TIMEOUT_S_MAX: Final = 86_399


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
    await limits.charge_cancel(session.service.exchange, command)
    events = await execute(session, command)
    raise_rejected(events)
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
        userref = int_text(value)
        if userref is not None and INT32_MIN <= userref <= INT32_MAX:
            userrefs.append(userref)
            continue
        number_ = ids.decode("O", value)
        if number_ is None:
            raise ParamError("EOrder:Invalid order")
        order_nos.append(number_)
    command = CancelOrders(
        ts_ns=time.time_ns(), account=key.account, order_nos=order_nos, cl_ord_ids=cl_ids, userrefs=userrefs
    )
    await limits.charge_cancel(session.service.exchange, command)
    events = await execute(session, command)
    raise_rejected(events)
    return [reply.ok(None, orders_cancelled=_count(events))]


def _count(events: list[Event]) -> int:
    return next((e.count for e in events if isinstance(e, CancelCount)), 0)


async def cancel_all(session: Session, key: ApiKey, params: Json, reply: Reply) -> list[bytes]:
    check_fields(params, frozenset({"token"}), "cancel all")
    now = time.time_ns()
    exchange = session.service.exchange
    await limits.charge_cancels(exchange, key.account, limits.open_orders(exchange, key.account), now)
    events = await execute(session, CancelAll(ts_ns=now, account=key.account))
    raise_rejected(events)
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
    events = await execute(session, command)
    raise_rejected(events)
    trigger = _rfc3339_s(now + timeout * 10**9) if timeout else "0"
    return [reply.ok({"currentTime": _rfc3339_s(now), "triggerTime": trigger})]
