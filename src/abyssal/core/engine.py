"""The engine: ``apply(command) -> events``, pure and deterministic (no clock, no I/O).

Life of an order: checks (mode, volume, prices, minimums) -> hold (risk before matching)
-> scheduled start or trigger wait -> matching -> rest, or close (filled, IOC remainder,
post-only, self-trade, market protection) -> fills settle holds -> close releases the rest.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from abyssal.core import funding, schedule
from abyssal.core.book import Order
from abyssal.core.fastpath import cancel_one, place_plain_limit
from abyssal.core.instruments import Instruments, Pair
from abyssal.core.matching import (
    close_order,
    match,
    would_take,
)
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_FCIQ,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    TRIGGERED_TYPES,
    AmendOrder,
    CancelAll,
    CancelAllAfter,
    CancelCount,
    CancelOrders,
    CloseReason,
    Command,
    Deposit,
    EditOrder,
    Event,
    Mode,
    ModeChanged,
    OrderStatus,
    OrderTriggered,
    OrderType,
    PlaceBatch,
    PlaceOrder,
    Reject,
    Rejected,
    SetMode,
    Tick,
    TimerArmed,
    Withdraw,
    WithdrawHold,
    WithdrawPost,
    WithdrawVoid,
)
from abyssal.core.placement import (
    _ORDER_TYPE_BY_CODE,
    _REASON_FILLED,
    _REASON_IOC_REMAINDER,
    _REASON_POST_ONLY,
    _REASON_USER_REQUESTED,
    _SIDE_BUY,
    _STATUS_CANCELED,
    _STATUS_CLOSED,
    _STATUS_OPEN,
    _STATUS_PENDING,
    _TIF_GTD,
    _TIF_IOC,
    _TYPE_ICEBERG,
    STOP_LIMITS,
    accepted_event,
    below_minimum,
    best_opposite,
    check_place,
    initial_hold,
    known_enums,
    resolve_prices,
)
from abyssal.core.settlement import viqc_lots
from abyssal.core.state import EngineState
from abyssal.core.triggers import due_now

# compiled, a Final is a C static where an imported name is a dict lookup per use
_PLACE_ORDER: Final = PlaceOrder
_CANCEL_ORDERS: Final = CancelOrders


class Engine:
    """One shard's engine. ``apply`` is the only way state changes."""

    def __init__(self, instruments: Instruments) -> None:
        self.s = EngineState(instruments)
        # pair -> stops due but not yet fired, while that pair's trigger loop runs (empty between commands)
        self._cascades: dict[int, deque[tuple[Order, int]]] = {}
        self._handlers: dict[type, Callable[[object, list[Event]], None]] = {
            PlaceOrder: self._on_place,  # type: ignore[dict-item]
            PlaceBatch: self._on_batch,  # type: ignore[dict-item]
            CancelOrders: self._on_cancel,  # type: ignore[dict-item]
            CancelAll: self._on_cancel_all,  # type: ignore[dict-item]
            CancelAllAfter: self._on_dms,  # type: ignore[dict-item]
            AmendOrder: self._on_amend,  # type: ignore[dict-item]
            EditOrder: self._on_edit,  # type: ignore[dict-item]
            Deposit: lambda c, events: funding.on_deposit(self.s, c, events),  # type: ignore[arg-type]
            Withdraw: lambda c, events: funding.on_withdraw(self.s, c, events),  # type: ignore[arg-type]
            Tick: self._on_tick,  # type: ignore[dict-item]
            SetMode: self._on_mode,  # type: ignore[dict-item]
            # withdrawals as pending transfers (core/funding.py)
            WithdrawHold: lambda c, events: funding.on_withdraw_hold(self.s, c, events),  # type: ignore[arg-type]
            WithdrawPost: lambda c, events: funding.on_withdraw_post(self.s, c, events),  # type: ignore[arg-type]
            WithdrawVoid: lambda c, events: funding.on_withdraw_void(self.s, c, events),  # type: ignore[arg-type]
        }

    # ------------------------------------------------------------------ entry point
    def apply(self, command: Command) -> list[Event]:
        events: list[Event] = []
        s = self.s
        if s.expiries or s.starts or s.dms:  # skipped in the common case: nothing scheduled
            schedule.advance(self, command.ts_ns, events)
        kind = type(command)
        # the two commands that dominate a busy book skip the handler table
        if kind is _PLACE_ORDER:  # _on_place without its frame
            if not place_plain_limit(self, command, events):  # type: ignore[arg-type]
                self._place(command, events, -1)  # type: ignore[arg-type]
        elif kind is _CANCEL_ORDERS:  # _on_cancel without its frame
            if not cancel_one(s, command, events):  # type: ignore[arg-type]
                self._on_cancel_general(command, events)  # type: ignore[arg-type]
        else:
            self._handlers[kind](command, events)
        # stale heads (orders that closed before their time) would make the host send empty Ticks
        while s.expiries and s.orders.get(s.expiries[0][1]) is None:
            heapq.heappop(s.expiries)
        while s.starts and s.orders.get(s.starts[0][1]) is None:
            heapq.heappop(s.starts)
        return events

    def next_deadline_ns(self) -> int:
        """The earliest time at which a Tick would do something (0: nothing scheduled)."""
        s = self.s
        times = [h[0][0] for h in (s.expiries, s.starts) if h]
        times.extend(s.dms.values())
        return min(times) if times else 0

    # ------------------------------------------------------------------ placing
    def _on_place(self, c: PlaceOrder, events: list[Event]) -> None:
        if not place_plain_limit(self, c, events):
            self._place(c, events, -1)

    def _on_batch(self, c: PlaceBatch, events: list[Event]) -> None:
        for i, order in enumerate(c.orders):
            self._place(order, events, i)

    def _reject(self, c: PlaceOrder, reason: Reject, detail: str, events: list[Event], bi: int) -> None:
        events.append(Rejected(c.account, int(reason), detail, bi))

    def _place(self, c: PlaceOrder, events: list[Event], bi: int) -> None:
        s = self.s
        if not 0 <= c.pair < len(s.pairs):
            return self._reject(c, Reject.unknown_pair, "", events, bi)
        pair = s.pairs[c.pair]
        if not known_enums(c):  # an out-of-range code must not reach OrderType() or the STP loop
            return self._reject(c, Reject.invalid_arguments, "enum", events, bi)
        t = _ORDER_TYPE_BY_CODE[c.ordertype]  # OrderType(c.ordertype) without EnumType.__call__
        is_buy = c.side == _SIDE_BUY
        problem = check_place(self.s, c, pair, t, is_buy)
        if problem is not None:
            return self._reject(c, problem[0], problem[1], events, bi)
        prices = resolve_prices(self.s, c, pair, t, is_buy)
        if isinstance(prices, tuple) and isinstance(prices[0], Reject):
            return self._reject(c, prices[0], str(prices[1]), events, bi)
        limit, stop, price2, trail_off, trail_pct = prices  # type: ignore[misc]
        viqc = bool(c.flags & FLAG_VIQC)
        ref = limit or stop or best_opposite(self.s, pair, is_buy)
        short = below_minimum(pair, c.volume_lots, ref, viqc, max(limit, stop, price2))  # an amend's too
        if short is not None:
            return self._reject(c, short, "", events, bi)
        o = Order(0, c.account, c.pair, is_buy, int(t), c.volume_lots, 0 if t in TRIGGERED_TYPES else limit)
        o.flags = c.flags if c.flags & FLAG_FCIB else c.flags | FLAG_FCIQ
        o.stop_ticks, o.price2_ticks = stop, price2
        o.trail_offset, o.trail_pct_ppm, o.trail_ref_ticks = trail_off, trail_pct, s.last_price[c.pair]
        o.triggered = t not in TRIGGERED_TYPES  # a stop waits for its trigger, even while pending
        if t == _TYPE_ICEBERG:
            o.display_lots = c.display_lots
            o.visible_lots = min(c.display_lots, c.volume_lots)
        if t in TRIGGERED_TYPES and is_buy and t not in STOP_LIMITS:
            o.price2_ticks = s.band_limit(pair, True, stop)  # the price the hold covers
        hold = initial_hold(self.s, pair, o, t, viqc)
        known = s.accounts.get(c.account)  # a refusal must not even create an empty account
        hold_asset = pair.quote.index if is_buy else pair.base.index
        if (known.available(hold_asset) if known is not None else 0) < hold:
            return self._reject(c, Reject.insufficient_funds, "", events, bi)
        status = _STATUS_PENDING if c.start_ns > c.ts_ns else _STATUS_OPEN
        if c.validate:
            events.append(accepted_event(c, o, 0, hold_asset, hold, status, True, bi))
            return None
        acct = s.account(c.account)
        o.order_no = s.next_order_no
        s.next_order_no += 1
        o.tif, o.expire_ns, o.opened_ns = c.tif, c.expire_ns, c.ts_ns
        o.userref, o.cl_ord_id, o.stp = c.userref, c.cl_ord_id, c.stp
        acct.hold(hold_asset, hold)
        o.hold_minor = hold
        key: Any = o.order_no  # compiled, boxed once: the index and the account's list share it
        s.orders[key] = o
        acct.open_nos.append(key)
        acct.stale_room += 1
        if acct.open_per_pair:  # kept under an open-orders limit only
            acct.open_per_pair[c.pair] += 1
        if c.cl_ord_id:
            acct.cl_ids[c.cl_ord_id] = o.order_no
        events.append(accepted_event(c, o, o.order_no, hold_asset, hold, status, False, bi))
        if c.tif == _TIF_GTD:
            heapq.heappush(s.expiries, (c.expire_ns, o.order_no))
        if status == _STATUS_PENDING:
            o.start_ns = c.start_ns
            heapq.heappush(s.starts, (c.start_ns, o.order_no))
            return None
        self._activate(o, c.ts_ns, events)
        return None

    # ------------------------------------------------------------------ execution
    def _activate(self, o: Order, ts_ns: int, events: list[Event]) -> None:
        if o.ordertype in TRIGGERED_TYPES:
            o.triggered = False
            self.s.register_trigger(o)
            self._run_triggers(o.pair, ts_ns, events)
        else:
            self._execute(o, ts_ns, events)

    def _execute(self, o: Order, ts_ns: int, events: list[Event]) -> None:
        """Match a market or limit-priced order now, then rest it or close it."""
        s = self.s
        pair = s.pairs[o.pair]
        last_before = s.last_price[o.pair]
        if o.limit_ticks == 0:  # market, or a triggered stop that becomes a market order
            self._execute_market(o, pair, ts_ns, events)
        elif o.flags & FLAG_POST and would_take(s, o, o.limit_ticks):
            close_order(s, o, _STATUS_CANCELED, _REASON_POST_ONLY, ts_ns, events)
        elif match(s, o, o.limit_ticks, ts_ns, events):
            if o.remaining_lots == 0:
                close_order(s, o, _STATUS_CLOSED, _REASON_FILLED, ts_ns, events)
            elif o.tif == _TIF_IOC:
                close_order(s, o, _STATUS_CANCELED, _REASON_IOC_REMAINDER, ts_ns, events)
            else:
                o.visible_lots = min(o.display_lots, o.remaining_lots) if o.display_lots else o.remaining_lots
                s.books[o.pair].side(o.is_buy).add(o)
        if s.last_price[o.pair] != last_before and s.has_stops(o.pair):
            self._run_triggers(o.pair, ts_ns, events)

    def _execute_market(self, o: Order, pair: Pair, ts_ns: int, events: list[Event]) -> None:
        s = self.s
        best = best_opposite(self.s, pair, o.is_buy)
        if not best:
            close_order(s, o, OrderStatus.canceled, CloseReason.no_liquidity, ts_ns, events)
            return
        limit = 0 if o.flags & FLAG_NOMPP else s.band_limit(pair, o.is_buy, best)
        if o.is_buy and o.price2_ticks:  # a triggered stop buy may not pass what its hold covers
            limit = min(limit, o.price2_ticks) if limit else o.price2_ticks
        if not match(s, o, limit, ts_ns, events):
            return
        best = best_opposite(self.s, pair, o.is_buy)
        # a quote-sized buy counts its budget down in remaining_lots: it is done (filled) when it
        # bought something and what is left cannot buy one more lot at the price it would pay next
        # (the best ask, else the last trade); stopped while it still could, it is canceled with
        # the reason, as any other market order
        if o.flags & FLAG_VIQC:
            next_price = best or s.last_price[o.pair]
            done = o.filled_lots > 0 and (not o.remaining_lots or viqc_lots(pair, o, next_price) == 0)
        else:
            done = o.remaining_lots == 0
        if done:
            close_order(s, o, OrderStatus.closed, CloseReason.filled, ts_ns, events)
            return
        if not best:
            reason = CloseReason.no_liquidity
        elif limit and (best > limit if o.is_buy else best < limit):
            reason = CloseReason.market_protection
        else:  # liquidity left within reach: only a market buy's spent hold stops it there
            reason = CloseReason.insufficient_funds
        close_order(s, o, OrderStatus.canceled, reason, ts_ns, events)

    def _run_triggers(self, pair_index: int, ts_ns: int, events: list[Event]) -> None:
        """Fire every stop whose condition the last price meets, until none is left (cascades).

        A fired stop that trades calls back in here; that nested call only queues what the new
        price makes due, ahead of the rest (depth first, as a recursion would), and the loop
        below fires it: a cascade of any length runs in constant stack depth.
        """
        s = self.s
        pending = self._cascades.get(pair_index)
        if pending is not None:
            pending.extendleft(reversed(due_now(self.s, pair_index)))
            return
        pending = deque(due_now(self.s, pair_index))
        self._cascades[pair_index] = pending
        try:
            while pending:
                o, last = pending.popleft()
                if s.orders.get(o.order_no) is o and not o.triggered:
                    self._trigger(o, last, ts_ns, events)
                if not pending:
                    pending.extend(due_now(self.s, pair_index))
        finally:
            del self._cascades[pair_index]

    def _trigger(self, o: Order, last: int, ts_ns: int, events: list[Event]) -> None:
        s = self.s
        o.triggered = True
        s.trailing[o.pair].pop(o.order_no, None)
        if o.ordertype == OrderType.trailing_stop_limit:
            # a buy's trigger only falls, so trigger + a negative offset may fall below one tick
            o.limit_ticks = max(o.stop_ticks + o.price2_ticks, s.pairs[o.pair].tick_ticks)
        elif o.ordertype in STOP_LIMITS:
            o.limit_ticks = o.price2_ticks
        events.append(OrderTriggered(o.order_no, o.account, last, o.limit_ticks, ts_ns))
        self._execute(o, ts_ns, events)

    # ------------------------------------------------------------------ cancels and timers
    def _on_cancel(self, c: CancelOrders, events: list[Event]) -> None:
        if not cancel_one(self.s, c, events):
            self._on_cancel_general(c, events)

    def _on_cancel_general(self, c: CancelOrders, events: list[Event]) -> None:
        s = self.s
        acct = s.accounts.get(c.account)
        targets: set[int] = set()
        if acct is not None:
            targets.update(n for n in c.order_nos if acct.owns(n) is not None)
            targets.update(acct.cl_ids[i] for i in c.cl_ord_ids if i in acct.cl_ids)
            if c.userrefs:
                refs = set(c.userrefs)
                targets.update(n for n, o in acct.open.items() if o.userref in refs)
        if not targets:
            events.append(Rejected(c.account, int(Reject.unknown_order)))
            return
        for no in sorted(targets):
            close_order(s, s.orders[no], _STATUS_CANCELED, _REASON_USER_REQUESTED, c.ts_ns, events)
        events.append(CancelCount(c.account, len(targets)))

    def _on_cancel_all(self, c: CancelAll, events: list[Event]) -> None:
        count = self._close_all(c.account, CloseReason.user_requested, c.ts_ns, events)
        events.append(CancelCount(c.account, count))

    def _close_all(self, account: int, reason: CloseReason, ts_ns: int, events: list[Event]) -> int:
        acct = self.s.accounts.get(account)
        if acct is None:
            return 0
        numbers = sorted(acct.open)
        for no in numbers:
            close_order(self.s, self.s.orders[no], OrderStatus.canceled, reason, ts_ns, events)
        return len(numbers)

    def _on_dms(self, c: CancelAllAfter, events: list[Event]) -> None:
        key = (c.account, c.key_no)
        if c.timeout_s <= 0:
            self.s.dms.pop(key, None)
            events.append(TimerArmed(c.account, c.key_no, 0, c.ts_ns))
            return
        trigger = c.ts_ns + c.timeout_s * 1_000_000_000
        self.s.dms[key] = trigger
        events.append(TimerArmed(c.account, c.key_no, trigger, c.ts_ns))

    def _on_tick(self, c: Tick, events: list[Event]) -> None:
        return None

    # ------------------------------------------------------------------ amend and edit
    def _on_amend(self, c: AmendOrder, events: list[Event]) -> None:
        from abyssal.core.amend import amend

        amend(self, c, events)

    def _on_edit(self, c: EditOrder, events: list[Event]) -> None:
        from abyssal.core.amend import edit

        edit(self, c, events)

    def _on_mode(self, c: SetMode, events: list[Event]) -> None:
        mode = int(Mode(c.mode))
        if c.pair < 0:
            self.s.system_mode = mode
        elif c.pair < len(self.s.pairs):
            self.s.modes[c.pair] = mode
        else:
            events.append(Rejected(0, int(Reject.unknown_pair)))
            return
        events.append(ModeChanged(c.pair, mode, c.ts_ns))


# ---------------------------------------------------------------------- helpers
