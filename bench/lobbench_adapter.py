"""lobbench adapter: drives the full Abyssal engine (holds, fees, events) through lobbench's ops.

Run from the repo root (bench/ must be importable, hence PYTHONPATH)::

    PYTHONPATH=bench python /work/shared/bench/lobbench.py --adapter lobbench_adapter:Adapter

Mapping (pair XBTUSD of the default config: pair_decimals 1, lot_decimals 8):

- price: a lobbench price is the price in ticks (100_000 ticks = 10000.0 USD);
- quantity: ``lots = qty * LOTS_PER_QTY`` (1 qty = 0.0001 XBT = 10_000 lots, so qty 1 at
  50_000 ticks and above clears ordermin (5_000 lots) and costmin (0.5 USD));
- accounts: buys come from ``BUYER``, sells from ``SELLER``, so self-trade prevention never fires;
  both are funded with both assets by ``Deposit`` commands before the first order;
- order ids: the engine numbers accepted orders 1, 2, 3, ... and lobbench numbers adds and takes
  the same way, so a lobbench oid *is* the engine's order number (``CheckedAdapter`` asserts it);
- add: GTC limit order; take: GTC limit order at the last price it touches (it always fills
  completely, so any residue would rest and show up in the final-state check); cancel:
  ``CancelOrders`` by order number;
- time: ``ts_ns`` grows by 1 µs per command;
- open-orders limit: off (``open_orders_per_pair_max=0``). The default config keeps Kraken's 225
  per account and pair, but lobbench rests ~55k orders on one pair from two accounts: it measures
  a deep book, not a realistic account, and with the limit on nearly every add would be refused.
  The per-pair count behind it is kept either way (``Account.open_per_pair``: one list update
  per accepted and per closed order); off, only the comparison is skipped.

Every call goes through ``Engine.apply`` and gets its list of events; the adapter counts them
(``events_total``) and drops the list, as a host would after journaling it.
"""

from __future__ import annotations

from dataclasses import replace

from abyssal.config import load_config
from abyssal.core.book import Order
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    CancelOrders,
    Deposit,
    Deposited,
    Event,
    OrderAccepted,
    OrderType,
    PlaceOrder,
    Rejected,
    Side,
)

PAIR_NAME = "XBTUSD"
LOTS_PER_QTY = 10_000
BUYER = 1
SELLER = 2  # account 0 is the house (fees); any two other numbers would do
FUNDING_MINOR = 10**17  # per asset and account: far above what 1M orders can hold or spend
TS_STEP_NS = 1_000
TS_START_NS = 1_700_000_000 * 1_000_000_000

_BUY = int(Side.buy)
_SELL = int(Side.sell)
_LIMIT = int(OrderType.limit)


class Adapter:
    """The Abyssal engine behind lobbench's add / cancel / take / snapshot interface."""

    name = "abyssal"
    needs_fills = False

    def __init__(self) -> None:
        instruments = replace(load_config(None).instruments, open_orders_per_pair_max=0)  # see above
        pair = instruments.pair(PAIR_NAME)
        assert pair is not None, f"{PAIR_NAME} missing from the default config"
        self.pair_index = pair.index
        self.engine = Engine(instruments)
        self.apply = self.engine.apply
        self.ts_ns = TS_START_NS
        self.events_total = 0
        self.last_oid = 0
        for account in (BUYER, SELLER):
            for asset in (pair.base.index, pair.quote.index):
                self.ts_ns += TS_STEP_NS
                events = self.apply(Deposit(self.ts_ns, account, asset, FUNDING_MINOR, f"bench-{account}"))
                assert isinstance(events[0], Deposited), events
        assert self.engine.s.next_order_no == 1, "deposits must not consume order numbers"

    def add(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.ts_ns = ts_ns = self.ts_ns + TS_STEP_NS
        # positional: ts_ns, account, pair, side, ordertype, volume_lots, price_kind, price_ticks
        if is_buy:
            command = PlaceOrder(ts_ns, BUYER, self.pair_index, _BUY, _LIMIT, qty * LOTS_PER_QTY, 0, price)
        else:
            command = PlaceOrder(ts_ns, SELLER, self.pair_index, _SELL, _LIMIT, qty * LOTS_PER_QTY, 0, price)
        self.events_total += len(self.apply(command))
        self.last_oid = oid

    take = add  # a crossing GTC limit order: it fills completely, nothing rests

    def cancel(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.ts_ns = ts_ns = self.ts_ns + TS_STEP_NS
        self.events_total += len(self.apply(CancelOrders(ts_ns, BUYER if is_buy else SELLER, [oid])))

    def snapshot(self) -> tuple[int, int | None, int | None]:
        """(resting orders, best bid, best ask) read from the book itself, not from a counter."""
        s = self.engine.s
        assert s.next_order_no == self.last_oid + 1, "engine order numbers drifted from lobbench oids"
        book = s.books[self.pair_index]
        resting = sum(
            1
            for side in (book.bids, book.asks)
            for lv in side.levels.values()
            for o in lv.orders
            if o.resting
        )
        assert resting == len(s.orders), "every live order of this workload rests in the book"
        bid, ask = book.bids.best_price(), book.asks.best_price()
        return resting, bid or None, ask or None


class CheckedAdapter(Adapter):
    """The same, plus per-call checks of the events (slower; for correctness runs)."""

    name = "abyssal-checked"

    def add(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.ts_ns += TS_STEP_NS
        side, account = (_BUY, BUYER) if is_buy else (_SELL, SELLER)
        events = self.apply(
            PlaceOrder(self.ts_ns, account, self.pair_index, side, _LIMIT, qty * LOTS_PER_QTY, 0, price)
        )
        _no_rejects(events)
        first = events[0]
        assert isinstance(first, OrderAccepted), first
        assert first.order_no == oid, f"engine order {first.order_no} != lobbench oid {oid}"
        self.events_total += len(events)
        self.last_oid = oid

    def take(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.add(oid, is_buy, price, qty)
        order = self.engine.s.orders.get(oid)
        assert order is None, "a take must fill completely and leave nothing resting"

    def cancel(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        order: Order | None = self.engine.s.orders.get(oid)
        assert order is not None and order.resting, f"cancel of {oid}: not resting"
        self.ts_ns += TS_STEP_NS
        events = self.apply(CancelOrders(self.ts_ns, BUYER if is_buy else SELLER, [oid]))
        _no_rejects(events)
        assert oid not in self.engine.s.orders
        self.events_total += len(events)


def _no_rejects(events: list[Event]) -> None:
    for e in events:
        assert not isinstance(e, Rejected), e


class CommandsOnly(Adapter):
    """The adapter's own cost: each op's command is built as ``Adapter`` builds it, and not applied.

    A bound for ``lobbench_bounds.py``: what any engine behind this command interface pays per op
    before its first instruction.
    """

    name = "abyssal-commands-only"

    def __init__(self) -> None:
        super().__init__()
        self.apply = _ignore

    def snapshot(self) -> None:  # type: ignore[override]
        return None  # nothing was applied: no book to check


def _ignore(command: object) -> list[Event]:
    return []
