"""Order changes: amend in place (a size cut keeps priority) and edit as cancel-replace."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from abyssal.core.book import Order
from abyssal.core.instruments import UNITS_MAX
from abyssal.core.matching import close_order, would_take
from abyssal.core.messages import (
    FLAG_POST,
    TRIGGERED_TYPES,
    AmendOrder,
    CloseReason,
    EditOrder,
    Event,
    Mode,
    OrderAmended,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PriceKind,
    Reject,
    Rejected,
    Side,
)
from abyssal.core.placement import (
    ICEBERG_DISPLAY_RATIO_MAX,
    PRICE_KINDS,
    below_minimum,
    resolve,
    resolve_limit,
)
from abyssal.core.settlement import required_hold

if TYPE_CHECKING:
    from abyssal.core.engine import Engine

AMENDABLE = (
    OrderType.limit,
    OrderType.iceberg,
    OrderType.stop_loss,
    OrderType.take_profit,
    OrderType.stop_loss_limit,
    OrderType.take_profit_limit,
)
STOP_LOSS_TYPES = (OrderType.stop_loss, OrderType.stop_loss_limit)


def _find(engine: Engine, account: int, order_no: int, cl_ord_id: str) -> Order | None:
    acct = engine.s.accounts.get(account)
    if acct is None:
        return None
    if cl_ord_id:
        order_no = acct.cl_ids.get(cl_ord_id, 0)
    return acct.owns(order_no)


def _price_refused(c: AmendOrder, resolved: int | None, name: str) -> Rejected:
    """The refusal of a relative amend price: no last trade yet, or a result that is no price."""
    if resolved is None:  # a relative price before the pair's first trade
        return Rejected(c.account, int(Reject.no_last_price))
    return Rejected(c.account, int(Reject.invalid_price), name)


def _new_prices(
    c: AmendOrder, o: Order, last: int, tick: int, limit: int, has_limit: bool
) -> tuple[int, int] | Rejected:
    """(limit, trigger) after the amend, or its refusal; ``limit`` is the order's current one.

    A relative price is an offset from the last trade (Kraken: "relative to the market price"),
    read from the engine's state, so a replay resolves it the same: a limit (a stop-limit's too)
    as ``placement.resolve_limit`` resolves a placed limit, rounded to the passive side; a trigger
    as a placed stop's. Absolute prices pass through unchanged for the caller's checks.
    """
    waiting = not o.triggered
    new_limit = c.limit_price_ticks if c.limit_price_ticks >= 0 and has_limit else limit
    new_stop = c.trigger_price_ticks if c.trigger_price_ticks >= 0 and waiting else o.stop_ticks
    if c.limit_price_kind != PriceKind.abs and c.limit_price_ticks >= 0 and has_limit:
        kind, ticks, pct = c.limit_price_kind, c.limit_price_ticks, c.limit_price_pct_ppm
        resolved = resolve_limit(kind, ticks, pct, last, o.is_buy, tick)
        if resolved is None or not 0 < resolved <= UNITS_MAX:
            return _price_refused(c, resolved, "limit_price")
        new_limit = resolved
    if c.trigger_price_kind != PriceKind.abs and c.trigger_price_ticks >= 0 and waiting:
        up = (o.ordertype in STOP_LOSS_TYPES) == o.is_buy  # '#': a stop-loss buy fires above the market
        kind, ticks, pct = c.trigger_price_kind, c.trigger_price_ticks, c.trigger_price_pct_ppm
        resolved = resolve(kind, ticks, pct, last, up, tick)
        if resolved is None or not 0 < resolved <= UNITS_MAX:
            return _price_refused(c, resolved, "trigger_price")
        new_stop = resolved
    return new_limit, new_stop


def amend(engine: Engine, c: AmendOrder, events: list[Event]) -> None:
    """Change an open order in place, or refuse the amend and change nothing.

    A new ``order_qty`` at or below what has already executed cancels the remainder (Kraken:
    "reducing order_qty below vol_exec cancels the remainder"); that is never refused for a
    minimum. Any other amend must leave an order that AddOrder would accept, by the pair's
    minimums as ``placement.below_minimum`` states them for a placed order: ``ordermin`` on the
    new total quantity (``order_qty`` is the order's size, executed part included, as AddOrder's
    ``volume`` is; a remainder below the minimum after fills is normal and stays allowed), and
    ``costmin`` on that total times the new price, the price a placed order of the same type is
    costed at: the limit, or for an untriggered stop its trigger. So a price cut that takes the
    order's cost under ``costmin`` is refused as a size cut is (``EOrder:Cost minimum not met``).
    The check covers every amend that leaves the order open, one that changes only the display
    size too: a minimum raised in the config since the order was placed holds it to the new one.
    """
    s = engine.s
    o = _find(engine, c.account, c.order_no, c.cl_ord_id)
    if o is None:
        events.append(Rejected(c.account, int(Reject.unknown_order)))
        return
    if c.limit_price_kind not in PRICE_KINDS or c.trigger_price_kind not in PRICE_KINDS:
        events.append(Rejected(c.account, int(Reject.invalid_arguments), "price_kind"))
        return
    if o.ordertype not in AMENDABLE or (o.ordertype in TRIGGERED_TYPES and o.triggered):
        events.append(Rejected(c.account, int(Reject.not_amendable)))
        return
    mode = s.mode_of(o.pair)
    if mode == Mode.maintenance:
        events.append(Rejected(c.account, int(Reject.market_unavailable)))
        return
    if mode == Mode.cancel_only:
        events.append(Rejected(c.account, int(Reject.market_cancel_only)))
        return
    post_only = c.post_only or mode == Mode.post_only  # in post-only mode nothing may take
    pending = o.start_ns > 0  # scheduled, not started: change it, but it stays off the book
    pair = s.pairs[o.pair]
    tick = pair.tick_ticks
    new_qty = c.order_qty_lots if c.order_qty_lots >= 0 else o.volume_lots
    if new_qty <= o.filled_lots:
        close_order(s, o, OrderStatus.canceled, CloseReason.amended_below_filled, c.ts_ns, events)
        return
    waiting = not o.triggered  # an untriggered stop: its limit lives in price2 until it fires
    limit = o.price2_ticks if waiting and o.ordertype != OrderType.stop_loss else o.limit_ticks
    has_limit = o.ordertype not in (OrderType.stop_loss, OrderType.take_profit)
    prices = _new_prices(c, o, s.last_price[o.pair], tick, limit, has_limit)
    if isinstance(prices, Rejected):
        events.append(prices)
        return
    new_limit, new_stop = prices
    for value in (new_limit, new_stop):
        if value < 0 or (value and value % tick):
            events.append(Rejected(c.account, int(Reject.tick_size)))
            return
    if has_limit and new_limit == 0:
        events.append(Rejected(c.account, int(Reject.invalid_price), "limit_price"))
        return
    if waiting and new_stop == 0:
        events.append(Rejected(c.account, int(Reject.invalid_price), "trigger_price"))
        return
    new_display = o.display_lots
    if o.ordertype == OrderType.iceberg and c.display_lots >= 0:
        new_display = c.display_lots
        if not 0 < new_display <= new_qty:
            events.append(Rejected(c.account, int(Reject.invalid_arguments), "display_qty"))
            return
    if o.ordertype == OrderType.iceberg and new_display * ICEBERG_DISPLAY_RATIO_MAX < new_qty:
        events.append(Rejected(c.account, int(Reject.invalid_arguments), "display_qty"))  # as when placed
        return
    short = below_minimum(pair, new_qty, new_stop if waiting else new_limit, False, max(new_limit, new_stop))
    if short is not None:  # see amend()'s docstring: the amended order, checked as if placed
        events.append(Rejected(c.account, int(short)))
        return
    remaining = new_qty - o.filled_lots
    price_changed = o.resting and new_limit != o.limit_ticks
    if post_only and price_changed and would_take(s, o, new_limit):
        events.append(Rejected(c.account, int(Reject.post_only_would_take)))
        return
    band = o.price2_ticks
    if waiting and o.is_buy and not has_limit:  # a stop-market buy holds for the band above its trigger
        band = s.band_limit(pair, True, new_stop)
    hold_price = new_limit if has_limit else band
    needed = required_hold(pair, o, remaining, hold_price)
    acct = s.accounts[o.account]
    asset = pair.quote.index if o.is_buy else pair.base.index
    delta = needed - o.hold_minor
    if delta > acct.available(asset):
        events.append(Rejected(c.account, int(Reject.insufficient_funds)))
        return
    s.amend_no += 1
    lose_priority = price_changed or remaining > o.remaining_lots or new_display > o.display_lots
    if o.resting:
        side = s.books[o.pair].side(o.is_buy)
        level = side.levels[o.limit_ticks]
        if lose_priority:
            side.unlink(o)
            if o in level.orders:  # drop its old place now, or re-adding it would revive that place
                level.orders.remove(o)
        else:  # a size cut keeps the order's place in the queue, and its current iceberg chunk
            visible = min(o.visible_lots, new_display, remaining) if new_display else remaining
            level.visible_lots += visible - o.visible_lots
            o.visible_lots = visible
    if delta > 0:
        acct.hold(asset, delta)
    elif delta < 0:
        acct.release(asset, -delta)
    o.hold_minor = needed
    o.volume_lots, o.remaining_lots, o.display_lots = new_qty, remaining, new_display
    if waiting:
        o.price2_ticks = new_limit if has_limit else band
        if new_stop != o.stop_ticks:
            o.stop_ticks = new_stop
            if not pending:  # a scheduled stop is filed when it starts
                s.register_trigger(o)
    else:
        o.limit_ticks = new_limit
    events.append(
        OrderAmended(
            o.order_no, o.account, s.amend_no, new_qty, new_display, new_limit if has_limit else 0,
            o.stop_ticks, delta, asset, c.ts_ns, o.pair,
        )
    )  # fmt: skip
    if pending:
        return
    if o.resting is False and not waiting:
        if post_only and would_take(s, o, o.limit_ticks):
            o.flags |= FLAG_POST
        o.visible_lots = min(o.display_lots, o.remaining_lots) if o.display_lots else o.remaining_lots
        engine._execute(o, c.ts_ns, events)
    elif waiting:
        engine._run_triggers(o.pair, c.ts_ns, events)


def edit(engine: Engine, c: EditOrder, events: list[Event]) -> None:
    """Cancel-replace: the new order is checked with the old one's hold counted as free.

    The replacement keeps the old order's ``cl_ord_id`` (``EditOrder`` carries no new one, and
    Kraken keeps the client order id across an edit): while the new order is checked, the id is
    counted as free, as the hold and the old order's place under the open-orders limit are, so
    that it is not refused as a duplicate of itself nor as one order too many.
    """
    s = engine.s
    o = _find(engine, c.account, c.order_no, "")
    if o is None:
        events.append(Rejected(c.account, int(Reject.unknown_order)))
        return
    if o.ordertype not in (OrderType.limit, OrderType.iceberg):
        events.append(Rejected(c.account, int(Reject.not_amendable)))
        return
    new_volume = c.volume_lots if c.volume_lots >= 0 else o.volume_lots
    if new_volume <= o.filled_lots:
        events.append(Rejected(c.account, int(Reject.invalid_volume), "volume"))
        return
    flags = o.flags
    if c.post_only == 1:
        flags |= FLAG_POST
    elif c.post_only == 0:
        flags &= ~FLAG_POST
    pair = s.pairs[o.pair]
    price = c.price_ticks if c.price_ticks >= 0 else o.limit_ticks
    place = PlaceOrder(
        ts_ns=c.ts_ns,
        account=o.account,
        pair=o.pair,
        side=int(Side.buy if o.is_buy else Side.sell),
        ordertype=o.ordertype,
        volume_lots=new_volume - o.filled_lots,
        price_ticks=price,
        display_lots=c.display_lots if c.display_lots >= 0 else o.display_lots,
        flags=flags,
        tif=o.tif,
        expire_ns=o.expire_ns,
        userref=c.userref if c.userref >= 0 else o.userref,
        cl_ord_id=o.cl_ord_id,
        stp=o.stp,
        validate=True,
        price_text=pair.price_text(price),
    )
    asset = pair.quote.index if o.is_buy else pair.base.index
    acct = s.accounts[o.account]
    acct.release(asset, o.hold_minor)  # count the old hold, client id and open slot as free while checking
    if o.cl_ord_id:
        del acct.cl_ids[o.cl_ord_id]
    counts = acct.open_per_pair  # empty without an open-orders limit
    if counts:
        counts[o.pair] -= 1
    trial: list[Event] = []
    engine._place(place, trial, -1)
    if counts:
        counts[o.pair] += 1
    acct.hold(asset, o.hold_minor)
    if o.cl_ord_id:
        acct.cl_ids[o.cl_ord_id] = o.order_no
    if trial and isinstance(trial[-1], Rejected):
        events.append(trial[-1])
        return
    if c.validate:
        events.extend(trial)
        return
    close_order(s, o, OrderStatus.canceled, CloseReason.replaced, c.ts_ns, events)
    engine._place(msgspec.structs.replace(place, validate=False), events, -1)
