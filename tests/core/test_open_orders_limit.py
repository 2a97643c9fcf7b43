"""``open_orders_per_pair_max``: an account's live orders on one pair (resting, pending, untriggered)
stop at the limit; one more that could stay open is refused with ``orders_limit`` and changes nothing.

The limit reaches the engine with its instruments (config.py sets it from ``[limits]``), so every
engine built for one config refuses the same orders: embedded, recovered, replayed, scaled out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest
from tests.core.enginekit import (
    BUY,
    ETHUSD,
    INSTRUMENTS,
    SECOND_NS,
    SELL,
    UNLIMITED,
    Harness,
    accepted,
    digest,
    lots,
    of_type,
    px,
    rejected,
)

from abyssal.config import config_from_toml, load_config
from abyssal.core import snapshot as snapshots
from abyssal.core.messages import (
    CancelOrders,
    EditOrder,
    OrderAccepted,
    OrderType,
    PlaceBatch,
    PlaceOrder,
    Reject,
    Rejected,
    TimeInForce,
)

LIMIT = 3
LIMITED = replace(INSTRUMENTS, open_orders_per_pair_max=LIMIT)
VOLUME = lots("0.01")


def _full(instruments: Any = LIMITED) -> tuple[Harness, list[int]]:
    """Account 1 with LIMIT resting bids on XBTUSD; accounts 1 and 2 funded."""
    h = Harness(instruments)
    h.fund(1)
    h.fund(2)
    h.deposit(1, ETHUSD.base, 10**12)
    nos = [h.limit(1, BUY, VOLUME, px("100.0") - i) for i in range(LIMIT)]
    return h, nos


def _refused(h: Harness, events: list[Any]) -> None:
    assert rejected(events).reason == Reject.orders_limit
    assert not of_type(events, OrderAccepted)


BID: dict[str, Any] = {"ordertype": OrderType.limit, "price_ticks": px("90.0")}  # below the book: rests
ETH_ASK: dict[str, Any] = {"pair": ETHUSD.index, "side": SELL, "volume_lots": lots("0.1", ETHUSD)}
# (what account 1 places when it is full on XBTUSD, accepted?)
PLACEMENTS: list[tuple[str, dict[str, Any], bool]] = [
    ("plain limit (the fast path's order)", BID, False),
    ("limit with a client order id", {**BID, "cl_ord_id": "x"}, False),
    ("validate-only limit", {**BID, "validate": True}, False),
    ("iceberg", {**BID, "ordertype": OrderType.iceberg, "display_lots": VOLUME}, False),
    (
        "untriggered stop-loss",
        {"ordertype": OrderType.stop_loss, "side": SELL, "price_ticks": px("50.0")},
        False,
    ),
    ("scheduled limit (pending)", {**BID, "start_ns": "later"}, False),
    ("IOC limit: done within its command", {**BID, "tif": TimeInForce.ioc}, True),
    ("market: done within its command", {"ordertype": OrderType.market, "side": SELL}, True),
    ("the same account on another pair", {**BID, **ETH_ASK, "price_ticks": px("100.0", ETHUSD)}, True),
    ("another account on the same pair", {**BID, "account": 2}, True),
]


@pytest.mark.parametrize(("name", "fields", "ok"), PLACEMENTS, ids=[p[0] for p in PLACEMENTS])
def test_an_order_beyond_the_limit_is_refused_and_changes_nothing(
    name: str, fields: dict[str, Any], ok: bool
) -> None:
    h, _ = _full()
    kw = dict(fields)
    account, side = kw.pop("account", 1), kw.pop("side", BUY)
    ordertype, volume = kw.pop("ordertype"), kw.pop("volume_lots", VOLUME)
    if kw.get("start_ns") == "later":
        kw["start_ns"] = h.ts_ns + 60 * SECOND_NS
    before = digest(h.engine)
    events = h.place(account, side, ordertype, volume, **kw)
    if ok:
        assert not of_type(events, Rejected), events
        assert len(of_type(events, OrderAccepted)) == 1
    else:
        _refused(h, events)
        assert digest(h.engine) == before, "a refused order changed the engine"


def test_a_closed_order_frees_its_place() -> None:
    h, nos = _full()
    _refused(h, h.place(1, BUY, OrderType.limit, VOLUME, price_ticks=px("90.0")))
    h.apply(CancelOrders(h.tick_ns(), 1, [nos[0]]))
    h.limit(1, BUY, VOLUME, px("90.0"))
    _refused(h, h.place(1, BUY, OrderType.limit, VOLUME, price_ticks=px("89.0")))
    h.limit(2, SELL, VOLUME, px("99.0"))  # fills account 1's best bid: a fill closes it too
    h.limit(1, BUY, VOLUME, px("89.0"))
    assert h.s.accounts[1].open_per_pair[h.pair.index] == LIMIT


def test_stops_and_scheduled_orders_count_until_they_close() -> None:
    h = Harness(LIMITED)
    h.fund(1)
    h.place(1, SELL, OrderType.stop_loss, VOLUME, price_ticks=px("50.0"))
    h.limit(1, BUY, VOLUME, px("90.0"), start_ns=h.ts_ns + 60 * SECOND_NS)
    h.limit(1, BUY, VOLUME, px("80.0"))
    _refused(h, h.place(1, BUY, OrderType.limit, VOLUME, price_ticks=px("70.0")))
    assert h.s.accounts[1].open_per_pair[h.pair.index] == LIMIT


def test_an_edit_at_the_limit_replaces_its_order() -> None:
    h, nos = _full()
    events = h.apply(EditOrder(h.tick_ns(), 1, nos[1], price_ticks=px("95.0")))
    assert not of_type(events, Rejected), events
    assert accepted(events).order_no not in nos
    assert h.s.accounts[1].open_per_pair[h.pair.index] == LIMIT


def test_a_batch_stops_at_the_limit() -> None:
    h = Harness(LIMITED)
    h.fund(1)
    h.limit(1, BUY, VOLUME, px("90.0"))
    orders = [
        PlaceOrder(h.ts_ns + 1, 1, h.pair.index, BUY, int(OrderType.limit), VOLUME, price_ticks=px("80.0"))
    ] * 3
    events = h.apply(PlaceBatch(h.tick_ns(), orders))
    assert [e.batch_index for e in of_type(events, OrderAccepted)] == [0, 1]
    assert [(e.reason, e.batch_index) for e in of_type(events, Rejected)] == [(Reject.orders_limit, 2)]


def test_a_restored_engine_refuses_the_same_orders() -> None:
    h, nos = _full()
    h.apply(CancelOrders(h.tick_ns(), 1, [nos[0]]))
    restored = snapshots.restore(LIMITED, snapshots.snapshot(h.engine))
    assert restored.s.accounts[1].open_per_pair == h.s.accounts[1].open_per_pair
    assert digest(restored) == digest(h.engine)
    place = PlaceOrder(
        h.ts_ns + 1, 1, h.pair.index, BUY, int(OrderType.limit), VOLUME, price_ticks=px("80.0")
    )
    one_more = msgspec.structs.replace(place, ts_ns=place.ts_ns + 1, price_ticks=px("79.0"))
    for engine in (h.engine, restored):
        assert of_type(engine.apply(place), OrderAccepted)
        assert rejected(engine.apply(one_more)).reason == Reject.orders_limit
    assert snapshots.state_hash(restored) == snapshots.state_hash(h.engine)


def test_zero_is_no_limit() -> None:
    h = Harness(UNLIMITED)
    h.fund(1)
    h.checking = False
    for i in range(300):
        h.limit(1, BUY, VOLUME, px("100.0") - i)
    h.check()
    assert len(h.s.accounts[1].open) == 300
    assert h.s.accounts[1].open_per_pair == [], "nothing is counted without a limit"


def test_the_config_sets_the_engines_limit() -> None:
    assert load_config(None).instruments.open_orders_per_pair_max == 225  # Kraken's Pro figure
    config = config_from_toml("[limits]\nopen_orders_per_pair_max = 7\n")
    assert config.limits.open_orders_per_pair_max == 7
    assert config.instruments.open_orders_per_pair_max == 7
