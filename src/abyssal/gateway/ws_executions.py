"""The private ``executions`` channel: order lifecycle and own trades from committed events.

Per order: ``pending_new`` (full fields) -> ``new`` -> ``trade`` per fill -> ``filled`` |
``canceled`` | ``expired``, plus ``amended`` and ``status`` (a stop triggered). A frame never
mixes ``trade`` entries with order-state entries: ccxt routes a whole frame by
``data[0].exec_type``. Every order-state entry carries ``symbol`` (ccxt merges sparse updates
per symbol). ``sequence`` counts per subscription, from 1 at the snapshot.

Cumulative quantities are tracked here for accounts with a subscriber, seeded from the engine
at a batch boundary (when it equals the committed state).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from abyssal.core.messages import (
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    OrderStarted,
    OrderStatus,
    OrderTriggered,
)
from abyssal.gateway.ws_batches import Results
from abyssal.gateway.ws_codec import Json, channel_frame
from abyssal.gateway.ws_orders import (
    Track,
    closed_entry,
    full_entry,
    state_entry,
    trade_entry,
    trade_snapshot_rows,
)
from abyssal.gateway.ws_subscriptions import Registry, Subscription

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

ORDER_STATUS_ONLY: Final = frozenset({"new", "filled", "canceled", "expired", "trade"})
CLOSED_EXEC: Final = {
    OrderStatus.closed: "filled",
    OrderStatus.canceled: "canceled",
    OrderStatus.expired: "expired",
}


class Executions:
    def __init__(self, exchange: Exchange, registry: Registry) -> None:
        self.exchange = exchange
        self.registry = registry
        self._tracks: dict[int, Track] = {}  # order_no -> track, for accounts with subscribers
        self._watchers: dict[int, int] = {}  # account -> subscriptions
        self._reads: set[asyncio.Task[None]] = set()

    # -- subscriptions (at a batch boundary) --------------------------------------------------
    def start(self, sub: Subscription) -> None:
        account = sub.account
        if self._watchers.get(account, 0) == 0:
            self._seed(account)
        self._watchers[account] = self._watchers.get(account, 0) + 1
        if sub.snap_orders:
            tracks = sorted(
                (t for t in self._tracks.values() if t.account == account), key=lambda t: t.order_no
            )
            data = [full_entry(self.exchange, t, "new", t.status, t.opened_ns) for t in tracks]
            sub.wire.push(channel_frame("executions", "snapshot", data, sequence=sub.next_sequence()))
        if sub.snap_trades:
            sub.ready = False
            sequence = sub.next_sequence()  # reserved: updates held meanwhile come after it
            limits = list(self.exchange.engine.s.trade_no)
            task = asyncio.get_running_loop().create_task(self._trade_snapshot(sub, sequence, limits))
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)

    async def _trade_snapshot(self, sub: Subscription, sequence: int, limits: list[int]) -> None:
        rows = await self.exchange.read(trade_snapshot_rows, self.exchange, sub.account, limits)
        if sub.active:
            sub.wire.push(channel_frame("executions", "snapshot", rows, sequence=sequence))
            sub.release()

    def stop(self, sub: Subscription) -> None:
        count = self._watchers.get(sub.account, 0) - 1
        if count > 0:
            self._watchers[sub.account] = count
            return
        self._watchers.pop(sub.account, None)
        for order_no in [n for n, t in self._tracks.items() if t.account == sub.account]:
            del self._tracks[order_no]

    def _seed(self, account: int) -> None:
        acct = self.exchange.engine.s.accounts.get(account)
        if acct is None:
            return
        for order in acct.open.values():
            self._tracks[order.order_no] = Track.from_order(order)

    # -- updates -------------------------------------------------------------------------------
    def on_batch(self, results: Results) -> None:
        if not self._watchers:
            return
        entries: dict[int, list[Json]] = {}
        for _, _, events in results:
            for event in events:
                for account, entry in self._entries(event):
                    entries.setdefault(account, []).append(entry)
        for account, account_entries in entries.items():
            self._send(account, account_entries)

    def _send(self, account: int, entries: list[Json]) -> None:
        subs = self.registry.members(("executions", account))
        runs: list[list[Json]] = []
        for entry in entries:  # consecutive entries of one kind share a frame
            is_trade = entry["exec_type"] == "trade"
            if runs and (runs[-1][0]["exec_type"] == "trade") == is_trade:
                runs[-1].append(entry)
            else:
                runs.append([entry])
        for sub in subs:
            for run in runs:
                data = run if sub.order_status else [e for e in run if e["exec_type"] in ORDER_STATUS_ONLY]
                if data:
                    sub.deliver(channel_frame("executions", "update", data, sequence=sub.next_sequence()))

    def _entries(self, event: Event) -> list[tuple[int, Json]]:
        ex = self.exchange
        watched = self._watchers
        if isinstance(event, Fill):
            out = []
            for account, order_no, maker in (
                (event.taker_account, event.taker_order, False),
                (event.maker_account, event.maker_order, True),
            ):
                track = self._tracks.get(order_no)
                if account in watched and track is not None:
                    out.append((account, trade_entry(ex, track, event, maker)))
            return out
        account = getattr(event, "account", -1)
        if account not in watched:
            return []
        if isinstance(event, OrderAccepted):
            if event.validate_only:
                return []
            track = self._tracks[event.order_no] = Track.from_accepted(event)
            pending = full_entry(ex, track, "pending_new", "pending_new", event.ts_ns)
            if event.status == OrderStatus.pending:
                return [(account, pending)]
            track.status = "new"
            return [(account, pending), (account, state_entry(ex, track, "new", event.ts_ns))]
        track = self._tracks.get(getattr(event, "order_no", 0))
        if track is None:
            return []
        if isinstance(event, OrderClosed):
            del self._tracks[event.order_no]
            exec_type = CLOSED_EXEC.get(OrderStatus(event.status), "canceled")
            return [(account, closed_entry(ex, track, exec_type, event.reason, event.ts_ns))]
        if isinstance(event, OrderStarted):
            track.status = "new"
            return [(account, state_entry(ex, track, "new", event.ts_ns))]
        if isinstance(event, OrderAmended):
            track.amend(event)
            return [(account, state_entry(ex, track, "amended", event.ts_ns))]
        if isinstance(event, OrderTriggered):
            track.triggered_ticks = event.price_ticks
            if event.limit_ticks:
                track.limit_ticks = event.limit_ticks
            return [(account, state_entry(ex, track, "status", event.ts_ns))]
        return []
