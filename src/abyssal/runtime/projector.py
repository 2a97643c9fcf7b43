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
    # OrderAmends' log: amend_no, volume, display, limit, stop, the volume less the lots the order
    # filled earlier in this batch (the store subtracts the rest: amends are written before fills,
    # so its filled_lots then holds the earlier batches' fills), ts, order_no
    amend_log: list[tuple[int, int, int, int, int, int, int, int]] = field(default_factory=list)


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
        if isinstance(event, Fill):  # the commonest event with money in it: no lines built
            self._fill(seq, index, event, rows)
            return
        lines = lines_for(event, self.instruments)
        for line in lines:
            bal = self._touch(rows, line.account, line.asset)
            bal[0] += line.amount_minor
            if line.bucket == HELD:  # held is part of total: a HELD line moves both
                bal[1] += line.amount_minor
        if isinstance(event, WithdrawHeld):
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

    def _pay_fee(self, rows: Rows, account: int, asset: int, fee: int, from_hold: bool) -> None:
        """A fee from the account (out of its hold, or what is available) to the house."""
        bal = self._touch(rows, account, asset)
        bal[0] -= fee
        if from_hold:
            bal[1] -= fee
        self._touch(rows, FEE_ACCOUNT, asset)[0] += fee

    def _fill(self, seq: int, index: int, f: Fill, rows: Rows) -> None:
        """A fill's balances and ledger entries: what ``postings.lines_for`` gives for it, applied
        directly (tests/runtime/test_projector_holds.py checks the two agree)."""
        pair = self.instruments.pairs[f.pair]
        quote, base = pair.quote.index, pair.base.index
        taker_buys = f.taker_side == 0
        buyer = f.taker_account if taker_buys else f.maker_account
        seller = f.maker_account if taker_buys else f.taker_account
        pays, gets, base_minor = f.buyer_pays_minor, f.seller_gets_minor, f.base_minor
        buyer_quote = self._touch(rows, buyer, quote)  # out of the buyer's hold
        buyer_quote[0] -= pays
        buyer_quote[1] -= pays
        seller_quote = self._touch(rows, seller, quote)
        seller_quote[0] += gets
        seller_base = self._touch(rows, seller, base)  # out of the seller's hold
        seller_base[0] -= base_minor
        seller_base[1] -= base_minor
        buyer_base = self._touch(rows, buyer, base)
        buyer_base[0] += base_minor
        if f.rounding_minor:
            self._touch(rows, FEE_ACCOUNT, quote)[0] += f.rounding_minor
        taker_fee, maker_fee = f.taker_fee_minor, f.maker_fee_minor
        if taker_fee:
            self._pay_fee(rows, f.taker_account, f.taker_fee_asset, taker_fee, f.taker_fee_from_hold)
        if maker_fee:
            self._pay_fee(rows, f.maker_account, f.maker_fee_asset, maker_fee, f.maker_fee_from_hold)

        # the ledger: one entry per account and asset, the balance after the whole fill
        refid = ids.trade_id(f.pair, f.trade_no)
        ts = f.ts_ns
        b_fee_asset, b_fee = (f.taker_fee_asset, taker_fee) if taker_buys else (f.maker_fee_asset, maker_fee)
        s_fee_asset, s_fee = (f.maker_fee_asset, maker_fee) if taker_buys else (f.taker_fee_asset, taker_fee)
        ledger = rows.ledger
        ledger.append((seq, index, 0, buyer, quote, "trade", "", refid, ts, -pays,
                       b_fee if b_fee_asset == quote else 0, buyer_quote[0]))  # fmt: skip
        ledger.append((seq, index, 1, buyer, base, "trade", "", refid, ts, base_minor,
                       b_fee if b_fee_asset == base else 0, buyer_base[0]))  # fmt: skip
        ledger.append((seq, index, 2, seller, base, "trade", "", refid, ts, -base_minor,
                       s_fee if s_fee_asset == base else 0, seller_base[0]))  # fmt: skip
        ledger.append((seq, index, 3, seller, quote, "trade", "", refid, ts, gets,
                       s_fee if s_fee_asset == quote else 0, seller_quote[0]))  # fmt: skip
        house: dict[int, int] = {quote: f.rounding_minor}
        house[f.taker_fee_asset] = house.get(f.taker_fee_asset, 0) + taker_fee
        house[f.maker_fee_asset] = house.get(f.maker_fee_asset, 0) + maker_fee
        leg = 4
        for asset in sorted(house):
            amount = house[asset]
            if amount:
                total = self._touch(rows, FEE_ACCOUNT, asset)[0]
                ledger.append((seq, index, leg, FEE_ACCOUNT, asset, "trade", "", refid, ts, amount, 0, total))
                leg += 1

        taker_cost = pays if taker_buys else gets
        maker_cost = gets if taker_buys else pays
        taker_used = (pays if taker_buys else base_minor) + (taker_fee if f.taker_fee_from_hold else 0)
        maker_used = (base_minor if taker_buys else pays) + (maker_fee if f.maker_fee_from_hold else 0)
        maker_side = 1 - f.taker_side
        rows.fills.append((f.pair, f.trade_no, f.taker_account, f.taker_order, f.taker_side, f.price_ticks,
                           f.volume_lots, taker_cost, f.taker_fee_asset, taker_fee, 0, ts))  # fmt: skip
        rows.order_fills.append(
            (f.volume_lots, taker_cost, taker_fee, f.taker_fee_asset, taker_used, f.taker_order)
        )
        rows.fills.append((f.pair, f.trade_no, f.maker_account, f.maker_order, maker_side, f.price_ticks,
                           f.volume_lots, maker_cost, f.maker_fee_asset, maker_fee, 1, ts))  # fmt: skip
        rows.order_fills.append(
            (f.volume_lots, maker_cost, maker_fee, f.maker_fee_asset, maker_used, f.maker_order)
        )
        rows.trades.append(
            (f.pair, f.trade_no, f.price_ticks, f.volume_lots, f.taker_side, int(f.taker_market), ts,
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
            filled = sum(f[0] for f in rows.order_fills if f[5] == e2.order_no)  # amends are rare
            assert 0 <= filled < e2.volume_lots, "an amend leaves the order something to fill"
            rows.amend_log.append(
                (e2.amend_no, e2.volume_lots, e2.display_lots, e2.price_ticks, e2.stop_ticks,
                 e2.volume_lots - filled, e2.ts_ns, e2.order_no)
            )  # fmt: skip
