"""Events to read-model rows: orders, trades, fills, ledger entries and balances.

Pure apart from its balance cache: ``project(seq, events)`` returns the rows a storage
adapter writes in the same transaction as the command batch. Rows are keyed so that
writing them twice is harmless: ledger entries by (seq, index, leg), trades by
(pair, trade_no), fills by (pair, trade_no, account).

Events that others must hear about (orders, trades, ledger movements) are not copied anywhere:
the event log committed with the batch is their outbox, tailed by the event-log relay
(adapters/event_log_outbox.py, messages built by runtime/event_messages.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from abyssal.core import ids
from abyssal.core.accounts import FEE_ACCOUNT
from abyssal.core.instruments import Instruments
from abyssal.core.messages import (
    Deposited,
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    OrderStarted,
    OrderTriggered,
    WithdrawHeld,
    Withdrawn,
    WithdrawPosted,
    WithdrawVoided,
)
from abyssal.core.postings import HELD, lines_for


@dataclass(slots=True)
class Rows:
    """Everything one batch writes, grouped by statement, in application order."""

    order_inserts: list[tuple[object, ...]] = field(default_factory=list)
    order_fills: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    order_closes: list[tuple[int, int, int, int]] = field(default_factory=list)  # status, reason, ts, no
    order_starts: list[tuple[int]] = field(default_factory=list)
    order_amends: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    order_triggers: list[tuple[int, int, int]] = field(default_factory=list)
    trades: list[tuple[object, ...]] = field(default_factory=list)
    fills: list[tuple[object, ...]] = field(default_factory=list)
    ledger: list[tuple[object, ...]] = field(default_factory=list)
    balances: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # -> [total, held]
    withdraw_holds: list[tuple[str, int, int, int]] = field(default_factory=list)  # ref, account, asset, amt
    withdraw_resolved: list[tuple[str]] = field(default_factory=list)  # refs posted or voided


class Projector:
    """Keeps a cache of balances (total, held) so ledger rows can carry the balance after."""

    def __init__(self, instruments: Instruments, balances: dict[tuple[int, int], list[int]]) -> None:
        self.instruments = instruments
        self.balances = balances

    def project(self, seq: int, events: list[Event], rows: Rows) -> None:
        for index, event in enumerate(events):
            self._money(seq, index, event, rows)
            self._orders(event, rows)

    def _touch(self, rows: Rows, account: int, asset: int) -> list[int]:
        key = (account, asset)
        bal = self.balances.get(key)
        if bal is None:
            bal = self.balances[key] = [0, 0]
        rows.balances[key] = bal
        return bal

    def _money(self, seq: int, index: int, event: Event, rows: Rows) -> None:
        # The two commonest events move one hold (postings.lines_for: available <-> held, total
        # unchanged); applied here without building their lines.
        if isinstance(event, OrderAccepted):
            if event.hold_minor and not event.validate_only:
                self._touch(rows, event.account, event.hold_asset)[1] += event.hold_minor
            return
        if isinstance(event, OrderClosed):
            if event.released_minor:
                self._touch(rows, event.account, event.hold_asset)[1] -= event.released_minor
            return
        lines = lines_for(event, self.instruments)
        for line in lines:
            bal = self._touch(rows, line.account, line.asset)
            bal[0] += line.amount_minor
            if line.bucket == HELD:  # held is part of total: a HELD line moves both
                bal[1] += line.amount_minor
        if isinstance(event, Fill):
            self._fill_ledger(seq, index, event, rows)
        elif isinstance(event, WithdrawHeld):
            rows.withdraw_holds.append((event.ref, event.account, event.asset, event.amount_minor))
        elif isinstance(event, WithdrawVoided):
            rows.withdraw_resolved.append((event.ref,))
        elif isinstance(event, Deposited | Withdrawn | WithdrawPosted):
            if isinstance(event, WithdrawPosted):
                rows.withdraw_resolved.append((event.ref,))
            sign = 1 if isinstance(event, Deposited) else -1
            kind = "deposit" if sign > 0 else "withdrawal"
            total = self._touch(rows, event.account, event.asset)[0]
            rows.ledger.append(
                (seq, index, 0, event.account, event.asset, kind, "", event.ref, event.ts_ns,
                 sign * event.amount_minor, 0, total)
            )  # fmt: skip
            world = self._touch(rows, -1, event.asset)[0]
            rows.ledger.append(
                (seq, index, 1, -1, event.asset, kind, "", event.ref, event.ts_ns,
                 -sign * event.amount_minor, 0, world)
            )  # fmt: skip

    def _fill_ledger(self, seq: int, index: int, f: Fill, rows: Rows) -> None:
        pair = self.instruments.pairs[f.pair]
        quote, base = pair.quote.index, pair.base.index
        refid = ids.trade_id(f.pair, f.trade_no)
        taker_buys = f.taker_side == 0
        buyer = f.taker_account if taker_buys else f.maker_account
        seller = f.maker_account if taker_buys else f.taker_account
        b_fee = (
            (f.taker_fee_asset, f.taker_fee_minor) if taker_buys else (f.maker_fee_asset, f.maker_fee_minor)
        )
        s_fee = (
            (f.maker_fee_asset, f.maker_fee_minor) if taker_buys else (f.taker_fee_asset, f.taker_fee_minor)
        )
        entries = [
            (buyer, quote, -f.buyer_pays_minor, b_fee[1] if b_fee[0] == quote else 0),
            (buyer, base, f.base_minor, b_fee[1] if b_fee[0] == base else 0),
            (seller, base, -f.base_minor, s_fee[1] if s_fee[0] == base else 0),
            (seller, quote, f.seller_gets_minor, s_fee[1] if s_fee[0] == quote else 0),
        ]
        house: dict[int, int] = {}
        house[quote] = f.rounding_minor
        house[f.taker_fee_asset] = house.get(f.taker_fee_asset, 0) + f.taker_fee_minor
        house[f.maker_fee_asset] = house.get(f.maker_fee_asset, 0) + f.maker_fee_minor
        for asset in sorted(house):
            if house[asset]:
                entries.append((FEE_ACCOUNT, asset, house[asset], 0))
        for leg, (account, asset, amount, fee_minor) in enumerate(entries):
            total = self._touch(rows, account, asset)[0]
            rows.ledger.append(
                (seq, index, leg, account, asset, "trade", "", refid, f.ts_ns, amount, fee_minor, total)
            )
        for account, order_no, side, maker, fee, from_hold in (
            (f.taker_account, f.taker_order, f.taker_side, 0, (f.taker_fee_asset, f.taker_fee_minor),
             f.taker_fee_from_hold),
            (f.maker_account, f.maker_order, 1 - f.taker_side, 1, (f.maker_fee_asset, f.maker_fee_minor),
             f.maker_fee_from_hold),
        ):  # fmt: skip
            cost = f.buyer_pays_minor if side == 0 else f.seller_gets_minor
            hold_used = (f.buyer_pays_minor if side == 0 else f.base_minor) + (fee[1] if from_hold else 0)
            rows.fills.append(
                (f.pair, f.trade_no, account, order_no, side, f.price_ticks, f.volume_lots, cost,
                 fee[0], fee[1], maker, f.ts_ns)
            )  # fmt: skip
            rows.order_fills.append((f.volume_lots, cost, fee[1], fee[0], hold_used, order_no))
        rows.trades.append(
            (f.pair, f.trade_no, f.price_ticks, f.volume_lots, f.taker_side, int(f.taker_market), f.ts_ns,
             f.taker_order, f.maker_order)
        )  # fmt: skip

    def _orders(self, event: Event, rows: Rows) -> None:
        if isinstance(event, OrderAccepted):
            if event.validate_only:
                return
            e = event
            rows.order_inserts.append(
                (e.order_no, e.account, e.pair, e.side, e.ordertype, e.status, e.volume_lots, e.display_lots,
                 e.price_ticks, e.stop_ticks, e.price2_ticks, e.flags, e.tif, e.start_ns, e.expire_ns,
                 e.userref, e.cl_ord_id, e.ts_ns, e.price_text, e.price2_text, e.hold_asset, e.hold_minor)
            )  # fmt: skip
        elif isinstance(event, OrderClosed):
            rows.order_closes.append((int(event.status), int(event.reason), event.ts_ns, event.order_no))
        elif isinstance(event, OrderStarted):
            rows.order_starts.append((event.order_no,))
        elif isinstance(event, OrderTriggered):
            rows.order_triggers.append((event.limit_ticks, event.price_ticks, event.order_no))
        elif isinstance(event, OrderAmended):
            e2 = event
            rows.order_amends.append(
                (
                    e2.volume_lots,
                    e2.display_lots,
                    e2.price_ticks,
                    e2.stop_ticks,
                    e2.hold_delta_minor,
                    e2.order_no,
                )
            )
