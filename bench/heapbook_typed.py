"""lobbench's ``heapbook`` with type annotations, so that mypyc can compile it (``lobbench_bounds.py``).

The algorithm, the data structures and the adapter interface are lobbench's ``HeapBookAdapter``'s,
unchanged: a dict of price levels, each a deque of orders, a heap of prices per side with lazy
deletion, cancels by tombstoning. The only difference: ``_best`` returns ``(-1, None)`` for an empty
side, where lobbench's returns ``(None, None)``, so that the price stays an ``int``.
"""

from __future__ import annotations

import heapq
from collections import deque


class _Order:
    __slots__ = ("is_buy", "oid", "price", "qty")

    def __init__(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.oid = oid
        self.is_buy = is_buy
        self.price = price
        self.qty = qty


class HeapBookTyped:
    name = "heapbook-typed"

    def __init__(self) -> None:
        self.lv: tuple[dict[int, deque[_Order]], dict[int, deque[_Order]]] = ({}, {})
        self.hp: tuple[list[int], list[int]] = ([], [])
        self.by_id: dict[int, _Order] = {}
        self.trades = 0

    def _best(self, side: bool) -> tuple[int, deque[_Order] | None]:
        lv, h = self.lv[side], self.hp[side]
        while h:
            p = -h[0] if side else h[0]
            q = lv.get(p)
            if q is not None:
                while q and q[0].qty == 0:
                    q.popleft()
                if q:
                    return p, q
                del lv[p]
            heapq.heappop(h)
        return -1, None

    def _rest(self, o: _Order) -> None:
        side = o.is_buy
        lv = self.lv[side]
        q = lv.get(o.price)
        if q is None:
            q = lv[o.price] = deque()
            heapq.heappush(self.hp[side], -o.price if side else o.price)
        q.append(o)
        self.by_id[o.oid] = o

    def add(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        o = _Order(oid, is_buy, price, qty)
        self._match(o)
        if o.qty:
            self._rest(o)

    def take(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.add(oid, is_buy, price, qty)

    def _match(self, o: _Order) -> None:
        opp = not o.is_buy
        by_id = self.by_id
        while o.qty:
            p, q = self._best(opp)
            if q is None or (p > o.price if o.is_buy else p < o.price):
                return
            while o.qty and q:
                r = q[0]
                if r.qty == 0:
                    q.popleft()
                    continue
                f = r.qty if r.qty < o.qty else o.qty
                r.qty -= f
                o.qty -= f
                self.trades += 1
                if r.qty == 0:
                    q.popleft()
                    del by_id[r.oid]

    def cancel(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        o = self.by_id.pop(oid, None)
        if o is not None:
            o.qty = 0

    def snapshot(self) -> tuple[int, int | None, int | None]:
        b = self._best(True)[0]
        a = self._best(False)[0]
        return (len(self.by_id), b if b >= 0 else None, a if a >= 0 else None)
