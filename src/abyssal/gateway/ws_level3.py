"""The ``level3`` channel: every resting order of the best ``depth`` price levels, in queue order.

A mirror of the engine's queues is kept for pairs with a subscriber, updated at each batch
boundary from the orders the batch touched (so it shows committed state only). Updates are
per order: ``add``, ``modify`` (visible quantity changed in place) or ``delete``; an iceberg
refill that sends an order to the back of its queue is a ``delete`` then an ``add``.

Windows follow the ``book`` rule at price-level granularity: a client keeps the best ``depth``
levels; a level that leaves the book inside its window gets ``delete`` rows, a level pushed
below the window gets nothing (the client drops it), and a level that enters the window gets
``add`` rows for all its orders. The checksum covers the top 10 levels of each side, asks then
bids, each order's ``limit_price`` then ``order_qty`` (as the ``book`` checksum text).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from typing import TYPE_CHECKING, Final

from abyssal.core import ids
from abyssal.core.instruments import Pair
from abyssal.core.messages import Fill
from abyssal.gateway.ws_batches import Results
from abyssal.gateway.ws_codec import Json, channel_frame, num, utc_text
from abyssal.gateway.ws_subscriptions import Registry, Subscription
from abyssal.marketdata.checksum import CHECKSUM_DEPTH, level_text

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

Queue = list[tuple[int, int, int]]  # (order_no, visible_lots, time_ns) in priority order
LEVEL3_DEPTHS: Final = (10, 100, 1000)
SIDES: Final = ("asks", "bids")


class _Side:
    """Queues by price; ``keys`` are sign * price ascending, so index 0 is the best level."""

    __slots__ = ("keys", "queues", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.queues: dict[int, Queue] = {}

    def set(self, price: int, queue: Queue) -> None:
        key = self.sign * price
        if not queue:
            if self.queues.pop(price, None) is not None:
                del self.keys[bisect_left(self.keys, key)]
            return
        if price not in self.queues:
            insort(self.keys, key)
        self.queues[price] = queue

    def bound(self, depth: int) -> int | None:
        """Key of the worst level inside a window of ``depth`` levels (None: side shallower)."""
        return self.keys[depth - 1] if len(self.keys) >= depth else None

    def top(self, depth: int) -> list[tuple[int, Queue]]:
        return [(self.sign * k, self.queues[self.sign * k]) for k in self.keys[:depth]]


class _Mirror:
    """One pair's queues and where each order rests."""

    def __init__(self, exchange: Exchange, pair: Pair) -> None:
        self.pair = pair
        self.sides = {"asks": _Side(+1), "bids": _Side(-1)}
        self.where: dict[int, tuple[str, int]] = {}
        book = exchange.engine.s.books[pair.index]
        for name, side in (("asks", book.asks), ("bids", book.bids)):
            for price in side.levels:
                self.store(name, price, _engine_queue(exchange, pair.index, name, price))

    def store(self, side: str, price: int, queue: Queue) -> None:
        for order_no, _, _ in self.sides[side].queues.get(price, []):
            self.where.pop(order_no, None)
        self.sides[side].set(price, queue)
        for order_no, _, _ in queue:
            self.where[order_no] = (side, price)

    def checksum(self) -> int:
        pd, ld = self.pair.pair_decimals, self.pair.lot_decimals
        parts = [
            level_text(price, pd) + level_text(qty, ld)
            for side in SIDES
            for price, queue in self.sides[side].top(CHECKSUM_DEPTH)
            for _, qty, _ in queue
        ]
        return zlib.crc32("".join(parts).encode("ascii")) & 0xFFFFFFFF


def _engine_queue(exchange: Exchange, pair: int, side: str, price: int) -> Queue:
    book = exchange.engine.s.books[pair]
    level = (book.asks if side == "asks" else book.bids).levels.get(price)
    if level is None:
        return []
    return [(o.order_no, o.visible_lots, o.opened_ns) for o in level.orders if o.resting]


class Level3:
    def __init__(self, exchange: Exchange, registry: Registry) -> None:
        self.exchange = exchange
        self.registry = registry
        self._mirrors: dict[int, _Mirror] = {}
        self._watchers: dict[int, int] = {}  # pair -> subscriptions

    def start(self, sub: Subscription) -> None:
        """At a batch boundary: build the mirror if needed, send the snapshot."""
        mirror = self._mirrors.get(sub.pair)
        if mirror is None:
            mirror = self._mirrors[sub.pair] = _Mirror(
                self.exchange, self.exchange.instruments.pairs[sub.pair]
            )
        self._watchers[sub.pair] = self._watchers.get(sub.pair, 0) + 1
        if sub.snapshot:
            sub.wire.push(self._snapshot(mirror, sub.depth))

    def stop(self, sub: Subscription) -> None:
        count = self._watchers.get(sub.pair, 0) - 1
        if count > 0:
            self._watchers[sub.pair] = count
        else:
            self._watchers.pop(sub.pair, None)
            self._mirrors.pop(sub.pair, None)

    def _snapshot(self, mirror: _Mirror, depth: int) -> bytes:
        data: Json = {"symbol": mirror.pair.symbol}
        for side in ("bids", "asks"):
            data[side] = [
                self._row(mirror.pair, price, entry)
                for price, queue in mirror.sides[side].top(depth)
                for entry in queue
            ]
        data["checksum"] = mirror.checksum()
        return channel_frame("level3", "snapshot", [data])

    def _row(self, pair: Pair, price: int, entry: tuple[int, int, int], event: str | None = None) -> Json:
        order_no, qty, time_ns = entry
        row: Json = {}
        if event is not None:
            row["event"] = event
        row.update(
            order_id=ids.order_id(order_no),
            limit_price=num(price, pair.pair_decimals),
            order_qty=num(qty, pair.lot_decimals),
            timestamp=utc_text(time_ns, 9),
        )
        return row

    # -- updates at each batch boundary -------------------------------------------------------
    def on_batch(self, results: Results) -> None:
        if not self._mirrors:
            return
        involved: dict[int, set[int]] = {}
        for _, _, events in results:
            for e in events:
                if isinstance(e, Fill):
                    if e.pair in self._mirrors:
                        involved.setdefault(e.pair, set()).update((e.taker_order, e.maker_order))
                    continue
                order_no = getattr(e, "order_no", 0)
                if order_no:
                    pair = self._pair_of(order_no, getattr(e, "pair", -1))
                    if pair in self._mirrors:
                        involved.setdefault(pair, set()).add(order_no)
        for pair, orders in involved.items():
            self._update(self._mirrors[pair], orders, results[-1][1].ts_ns)

    def _pair_of(self, order_no: int, pair: int) -> int:
        """Events such as a trigger carry no pair: the live order, or the mirror holding it, tells."""
        if pair >= 0:
            return pair
        live = self.exchange.engine.s.orders.get(order_no)
        if live is not None:
            return int(live.pair)
        for index, mirror in self._mirrors.items():
            if order_no in mirror.where:
                return index
        return -1

    def _update(self, mirror: _Mirror, orders: set[int], time_ns: int) -> None:
        engine_orders = self.exchange.engine.s.orders
        touched: set[tuple[str, int]] = set()
        for order_no in orders:
            if order_no in mirror.where:
                touched.add(mirror.where[order_no])
            o = engine_orders.get(order_no)
            if o is not None and o.resting:
                touched.add(("bids" if o.is_buy else "asks", o.limit_ticks))
        if not touched:
            return
        depths = [d for d in LEVEL3_DEPTHS if self.registry.has(("level3", mirror.pair.index, d))]
        before = {(s, p): list(mirror.sides[s].queues.get(p, [])) for s, p in touched}
        bounds = {(s, d): mirror.sides[s].bound(d) for s in SIDES for d in depths}
        for side, price in touched:
            mirror.store(side, price, _engine_queue(self.exchange, mirror.pair.index, side, price))
        checksum = mirror.checksum()
        for depth in depths:
            data: Json = {"symbol": mirror.pair.symbol}
            changed = False
            for side in ("bids", "asks"):
                rows = self._window_rows(mirror, side, depth, before, bounds[side, depth])
                data[side] = rows
                changed = changed or bool(rows)
            if changed:
                data["checksum"] = checksum
                data["timestamp"] = utc_text(time_ns, 9)
                self.registry.broadcast(
                    ("level3", mirror.pair.index, depth), channel_frame("level3", "update", [data])
                )

    def _window_rows(
        self,
        mirror: _Mirror,
        side: str,
        depth: int,
        before: dict[tuple[str, int], Queue],
        bound_before: int | None,
    ) -> list[Json]:
        book_side = mirror.sides[side]
        sign, pair = book_side.sign, mirror.pair
        bound_after = book_side.bound(depth)
        deletes: list[Json] = []
        changes: list[Json] = []
        for (s, price), old in sorted(before.items(), key=lambda item: sign * item[0][1]):
            if s != side:
                continue
            new = book_side.queues.get(price, [])
            key = sign * price
            was_shown = bool(old) and (bound_before is None or key <= bound_before)
            is_shown = bool(new) and (bound_after is None or key <= bound_after)
            if was_shown and not new:
                deletes.extend(self._row(pair, price, e, "delete") for e in old)
            elif is_shown and not was_shown:
                changes.extend(self._row(pair, price, e, "add") for e in new)
            elif is_shown:
                self._diff(pair, price, old, new, deletes, changes)
        if bound_before is not None:  # untouched levels that slid into the window
            start = bisect_left(book_side.keys, bound_before + 1)
            for key in book_side.keys[start:depth]:
                if (side, sign * key) not in before:
                    changes.extend(
                        self._row(pair, sign * key, e, "add") for e in book_side.queues[sign * key]
                    )
        return deletes + changes

    def _diff(
        self, pair: Pair, price: int, old: Queue, new: Queue, deletes: list[Json], changes: list[Json]
    ) -> None:
        """Per-order rows turning ``old`` into ``new`` at one price, keeping queue order."""
        new_at = {entry[0]: i for i, entry in enumerate(new)}
        kept = [entry for entry in old if entry[0] in new_at]
        in_order = [new_at[entry[0]] for entry in kept] == sorted(new_at[entry[0]] for entry in kept)
        old_qty = {entry[0]: entry[1] for entry in old}
        for entry in old:
            if entry[0] not in new_at or not in_order:
                deletes.append(self._row(pair, price, entry, "delete"))
        for entry in new:
            if entry[0] not in old_qty or not in_order:
                changes.append(self._row(pair, price, entry, "add"))
            elif old_qty[entry[0]] != entry[1]:
                changes.append(self._row(pair, price, entry, "modify"))
