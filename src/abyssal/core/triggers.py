"""Stop triggers: which untriggered stops the last trade price fires (trailing ones move first)."""

from __future__ import annotations

import heapq

from abyssal.core.book import Order
from abyssal.core.placement import trail_offset
from abyssal.core.state import EngineState


def due_now(s: EngineState, pair_index: int) -> list[tuple[Order, int]]:
    """Untriggered stops the current last price fires, by order number, with that price.

    Trailing stops move their trigger with the price first; fired heap entries are popped.
    """
    tick = s.pairs[pair_index].tick_ticks
    last = s.last_price[pair_index]
    if not last:
        return []
    due: list[Order] = []
    for o in list(s.trailing[pair_index].values()):
        if o.is_buy:
            o.trail_ref_ticks = min(o.trail_ref_ticks, last)
            o.stop_ticks = o.trail_ref_ticks + trail_offset(o, tick)
            hit = last >= o.stop_ticks
        else:
            o.trail_ref_ticks = max(o.trail_ref_ticks, last)
            o.stop_ticks = o.trail_ref_ticks - trail_offset(o, tick)
            hit = last <= o.stop_ticks
        if hit:
            due.append(o)
    rise, fall = s.rise[pair_index], s.fall[pair_index]
    while rise and rise[0][0] <= last:
        stop, no = heapq.heappop(rise)
        o2 = s.orders.get(no)
        if o2 is not None and not o2.triggered and o2.stop_ticks == stop:
            due.append(o2)
    while fall and -fall[0][0] >= last:
        neg, no = heapq.heappop(fall)
        o2 = s.orders.get(no)
        if o2 is not None and not o2.triggered and o2.stop_ticks == -neg:
            due.append(o2)
    due.sort(key=lambda x: x.order_no)
    return [(o, last) for o in due]
