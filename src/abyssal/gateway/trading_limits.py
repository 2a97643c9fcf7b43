"""Kraken's matching-engine rate counter, charged the same way by REST and WebSocket trading.

One counter per (account, pair) in ``Exchange.trading`` (gateway/ratelimit.py; off unless
``[limits] trading_tier`` names a tier): a client cannot double its allowance by splitting its
orders between the two interfaces. A refused charge raises ``EOrder:Rate limit exceeded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abyssal.gateway.params import ParamError
from abyssal.gateway.ratelimit import TRADING_RATE_LIMIT_EXCEEDED

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange


def _allowed(allowed: bool) -> None:
    if not allowed:
        raise ParamError(TRADING_RATE_LIMIT_EXCEEDED)


def age_ns(exchange: Exchange, order_no: int, now_ns: int) -> int:
    o = exchange.engine.s.orders.get(order_no)
    return max(0, now_ns - o.opened_ns) if o is not None else 0


def charge_add(exchange: Exchange, account: int, pair_id: str, now_ns: int) -> None:
    _allowed(exchange.trading.on_add(str(account), pair_id, now_ns))


def charge_batch_add(exchange: Exchange, account: int, pair_id: str, count: int, now_ns: int) -> None:
    _allowed(exchange.trading.on_batch_add(str(account), pair_id, count, now_ns))


def charge_amend(exchange: Exchange, account: int, pair_id: str, order_no: int, now_ns: int) -> None:
    _allowed(exchange.trading.on_amend(str(account), pair_id, age_ns(exchange, order_no, now_ns), now_ns))


def charge_edit(exchange: Exchange, account: int, pair_id: str, order_no: int, now_ns: int) -> None:
    _allowed(exchange.trading.on_edit(str(account), pair_id, age_ns(exchange, order_no, now_ns), now_ns))


def charge_cancels(exchange: Exchange, account: int, order_nos: list[int], now_ns: int) -> None:
    """Cancels are never refused, but their age-dependent cost counts against the pair."""
    by_pair: dict[str, list[int]] = {}
    for no in order_nos:
        o = exchange.engine.s.orders.get(no)
        if o is not None and o.account == account:
            pair_id = exchange.instruments.pairs[o.pair].id
            by_pair.setdefault(pair_id, []).append(max(0, now_ns - o.opened_ns))
    for pair_id, ages in by_pair.items():
        exchange.trading.on_batch_cancel(str(account), pair_id, ages, now_ns)


def open_orders(exchange: Exchange, account: int) -> list[int]:
    acct = exchange.engine.s.accounts.get(account)
    return list(acct.open) if acct is not None else []
