"""Events to double-entry lines: every event's lines sum to zero per asset.

Each account has two buckets per asset, ``available`` and ``held``; a hold is a transfer
from one to the other (a pending transfer in TigerBeetle's terms), a fill posts out of the
hold, and a close voids what is left. The world account is where deposits come from and
withdrawals go; the house account collects fees and rounding.
"""

from __future__ import annotations

from typing import NamedTuple

from abyssal.core.accounts import FEE_ACCOUNT, WORLD_ACCOUNT
from abyssal.core.instruments import Instruments
from abyssal.core.messages import (
    Deposited,
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    WithdrawHeld,
    Withdrawn,
    WithdrawPosted,
    WithdrawVoided,
)

AVAILABLE = 0
HELD = 1


class Line(NamedTuple):
    account: int
    asset: int
    bucket: int  # AVAILABLE or HELD
    amount_minor: int  # signed: credit > 0, debit < 0
    code: str  # deposit, withdrawal, hold, release, trade, fee, rounding


def lines_for(event: Event, instruments: Instruments) -> list[Line]:
    """The balanced lines of one event (empty for events that move no money)."""
    if isinstance(event, Fill):
        return _fill_lines(event, instruments)
    if isinstance(event, OrderAccepted):
        if event.validate_only or not event.hold_minor:
            return []
        return _move(event.account, event.hold_asset, AVAILABLE, HELD, event.hold_minor, "hold")
    if isinstance(event, OrderClosed):
        if not event.released_minor:
            return []
        return _move(event.account, event.hold_asset, HELD, AVAILABLE, event.released_minor, "release")
    if isinstance(event, OrderAmended):
        if event.hold_delta_minor > 0:
            return _move(event.account, event.hold_asset, AVAILABLE, HELD, event.hold_delta_minor, "hold")
        if event.hold_delta_minor < 0:
            return _move(event.account, event.hold_asset, HELD, AVAILABLE, -event.hold_delta_minor, "release")
        return []
    if isinstance(event, Deposited):
        return [
            Line(WORLD_ACCOUNT, event.asset, AVAILABLE, -event.amount_minor, "deposit"),
            Line(event.account, event.asset, AVAILABLE, event.amount_minor, "deposit"),
        ]
    if isinstance(event, Withdrawn):
        return [
            Line(event.account, event.asset, AVAILABLE, -event.amount_minor, "withdrawal"),
            Line(WORLD_ACCOUNT, event.asset, AVAILABLE, event.amount_minor, "withdrawal"),
        ]
    if isinstance(event, WithdrawHeld):  # a pending transfer: available -> held
        return _move(event.account, event.asset, AVAILABLE, HELD, event.amount_minor, "hold")
    if isinstance(event, WithdrawPosted):  # post: out of the hold, to the world
        return [
            Line(event.account, event.asset, HELD, -event.amount_minor, "withdrawal"),
            Line(WORLD_ACCOUNT, event.asset, AVAILABLE, event.amount_minor, "withdrawal"),
        ]
    if isinstance(event, WithdrawVoided):  # void: the hold returns to available
        return _move(event.account, event.asset, HELD, AVAILABLE, event.amount_minor, "release")
    return []


def _move(account: int, asset: int, source: int, target: int, amount: int, code: str) -> list[Line]:
    return [Line(account, asset, source, -amount, code), Line(account, asset, target, amount, code)]


def _fill_lines(f: Fill, instruments: Instruments) -> list[Line]:
    pair = instruments.pairs[f.pair]
    quote, base = pair.quote.index, pair.base.index
    taker_buys = f.taker_side == 0
    buyer = f.taker_account if taker_buys else f.maker_account
    seller = f.maker_account if taker_buys else f.taker_account
    lines = [
        Line(buyer, quote, HELD, -f.buyer_pays_minor, "trade"),
        Line(seller, quote, AVAILABLE, f.seller_gets_minor, "trade"),
        Line(seller, base, HELD, -f.base_minor, "trade"),
        Line(buyer, base, AVAILABLE, f.base_minor, "trade"),
    ]
    if f.rounding_minor:
        lines.append(Line(FEE_ACCOUNT, quote, AVAILABLE, f.rounding_minor, "rounding"))
    for account, asset, fee, from_hold in (
        (f.taker_account, f.taker_fee_asset, f.taker_fee_minor, f.taker_fee_from_hold),
        (f.maker_account, f.maker_fee_asset, f.maker_fee_minor, f.maker_fee_from_hold),
    ):
        if fee:
            lines.append(Line(account, asset, HELD if from_hold else AVAILABLE, -fee, "fee"))
            lines.append(Line(FEE_ACCOUNT, asset, AVAILABLE, fee, "fee"))
    return lines


def is_balanced(lines: list[Line]) -> bool:
    sums: dict[int, int] = {}
    for line in lines:
        sums[line.asset] = sums.get(line.asset, 0) + line.amount_minor
    return all(v == 0 for v in sums.values())
