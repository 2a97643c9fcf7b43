"""Kraken's matching-engine rate counter, charged the same way by REST and WebSocket trading.

One counter per (account, pair) (gateway/ratelimit.py; off unless ``[limits] trading_tier``
names a tier): a client cannot double its allowance by splitting its orders between the two
interfaces, nor, scaled out, between gateways: there the counter is a row in PostgreSQL
(``cluster/shared.py``), here ``Exchange.trading``. A refused charge raises
``EOrder:Rate limit exceeded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abyssal.gateway.params import ParamError
from abyssal.gateway.ratelimit import TRADING_RATE_LIMIT_EXCEEDED, TradeAction, trading_cost

if TYPE_CHECKING:
    from abyssal.core.messages import CancelOrders
    from abyssal.runtime.exchange import Exchange


MICRO = 1_000_000
NEVER_REFUSED = 2**62


def _allowed(allowed: bool) -> None:
    if not allowed:
        raise ParamError(TRADING_RATE_LIMIT_EXCEEDED)


def age_ns(exchange: Exchange, order_no: int, now_ns: int) -> int:
    o = exchange.engine.s.orders.get(order_no)
    return max(0, now_ns - o.opened_ns) if o is not None else 0


async def _shared(exchange: Exchange, account: int, pair_id: str, fixed: int, age: int, now_ns: int,
                  threshold_micro: int | None = None) -> bool:  # fmt: skip
    """A charge in millionths of a count against the counter every gateway shares."""
    assert exchange.shared is not None
    tier = exchange.trading.tier
    limit = tier.threshold * MICRO if threshold_micro is None else threshold_micro
    allowed: bool = await exchange.read(exchange.shared.charge, f"trade:{account}:{pair_id}", fixed, age,
                                        limit, tier.decay_micro_per_s, now_ns)  # fmt: skip
    return allowed


async def _action(exchange: Exchange, action: TradeAction, account: int, pair_id: str, age: int,
                  now_ns: int) -> None:  # fmt: skip
    if not exchange.trading.enabled:  # the default: nothing is counted, nothing refused
        return
    if exchange.shared is None:
        _allowed(exchange.trading.on(action, str(account), pair_id, age, now_ns))
        return
    fixed, by_age = trading_cost(action, age)
    _allowed(await _shared(exchange, account, pair_id, fixed * MICRO, by_age * MICRO, now_ns))


async def charge_add(exchange: Exchange, account: int, pair_id: str, now_ns: int) -> None:
    await _action(exchange, TradeAction.ADD, account, pair_id, 0, now_ns)


async def charge_batch_add(exchange: Exchange, account: int, pair_id: str, count: int, now_ns: int) -> None:
    if exchange.shared is None or not exchange.trading.enabled:
        _allowed(exchange.trading.on_batch_add(str(account), pair_id, count, now_ns))
        return
    _allowed(await _shared(exchange, account, pair_id, count * MICRO // 2, 0, now_ns))


async def charge_amend(exchange: Exchange, account: int, pair_id: str, order_no: int, now_ns: int) -> None:
    await _action(exchange, TradeAction.AMEND, account, pair_id, age_ns(exchange, order_no, now_ns), now_ns)


async def charge_edit(exchange: Exchange, account: int, pair_id: str, order_no: int, now_ns: int) -> None:
    await _action(exchange, TradeAction.EDIT, account, pair_id, age_ns(exchange, order_no, now_ns), now_ns)


def cancel_targets(exchange: Exchange, c: CancelOrders) -> list[int]:
    """The account's live orders the cancel would close, found as the engine finds them
    (``Engine._on_cancel_general``): by number, by client order id, by userref; each once."""
    acct = exchange.engine.s.accounts.get(c.account)
    if acct is None:
        return []
    targets = {n for n in c.order_nos if acct.owns(n) is not None}
    targets.update(acct.cl_ids[i] for i in c.cl_ord_ids if i in acct.cl_ids)
    if c.userrefs:  # a pass over the account's open orders, as the engine's
        refs = set(c.userrefs)
        targets.update(n for n, o in acct.open.items() if o.userref in refs)
    return sorted(targets)


async def charge_cancel(exchange: Exchange, c: CancelOrders) -> None:
    """A ``CancelOrders`` costs by each order's age however it names the order (contract 8.2):
    by number, client order id or userref."""
    if exchange.trading.enabled:  # else nothing is counted: spare the userrefs' pass
        await charge_cancels(exchange, c.account, cancel_targets(exchange, c), c.ts_ns)


async def charge_cancels(exchange: Exchange, account: int, order_nos: list[int], now_ns: int) -> None:
    """Cancels are never refused, but their age-dependent cost counts against the pair."""
    by_pair: dict[str, list[int]] = {}
    for no in order_nos:
        o = exchange.engine.s.orders.get(no)
        if o is not None and o.account == account:
            pair_id = exchange.instruments.pairs[o.pair].id
            by_pair.setdefault(pair_id, []).append(max(0, now_ns - o.opened_ns))
    for pair_id, ages in by_pair.items():
        if exchange.shared is None or not exchange.trading.enabled:
            exchange.trading.on_batch_cancel(str(account), pair_id, ages, now_ns)
        else:
            cost = sum(trading_cost(TradeAction.CANCEL, a)[1] for a in ages) * MICRO
            await _shared(exchange, account, pair_id, 0, cost, now_ns, threshold_micro=NEVER_REFUSED)


def open_orders(exchange: Exchange, account: int) -> list[int]:
    acct = exchange.engine.s.accounts.get(account)
    return list(acct.open) if acct is not None else []
