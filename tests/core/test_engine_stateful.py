"""Hypothesis drives random command streams through the engine; after every step:

- totals per asset, over every account including the fee account, equal deposits - withdrawals;
- no total, held or available balance is negative; each account's held amount equals the sum of
  its live orders' holds; every order's hold is >= 0 and covers the rest of the order;
- the book never stays crossed; every resting order shows > 0 lots; a level's visible volume is
  the sum of its orders'; the sorted price index matches the levels; no order is queued twice;
- the ledger projected from the events agrees with the engine's balances.

(The checks live in ``enginekit``; the harness runs them after each command.)
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from tests.core.enginekit import ENGINE_PROFILE, ETH, ETHXBT, SECOND_NS, USD, XBT, XBTUSD, Harness, digest

from abyssal.core.engine import Engine
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    AmendOrder,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    Command,
    Deposit,
    EditOrder,
    Event,
    Mode,
    OrderType,
    PlaceOrder,
    PriceKind,
    Reject,
    Rejected,
    SetMode,
    Tick,
    TimeInForce,
    Withdraw,
    command_decoder,
    command_encoder,
    events_encoder,
)
from abyssal.core.messages import (
    TRIGGERED_TYPES as TRIGGERED,
)

ACCOUNTS = st.integers(1, 4)
SIDES = st.integers(0, 1)
# pair -> (mid price, price step, lot sizes that always clear ordermin and costmin); prices are
# drawn as mid + step * k with small k, so that buyers and sellers cross often
MARKETS = {
    XBTUSD.index: (1_000, 1, st.integers(600_000, 300_000_000)),
    ETHXBT.index: (50_000, 50, st.integers(100_000, 2_000_000_000)),
}
OFFSETS = st.integers(-20, 20)
STPS = st.sampled_from([0, 0, 0, 1, 2])
LIMIT_VARIANTS = st.sampled_from(
    ["plain"] * 6 + ["iceberg", "post", "ioc", "gtd", "start", "fcib", "iceberg gtd", "post fcib start"]
)
PAIRS = st.sampled_from(sorted(MARKETS))
ASSETS = st.sampled_from([USD.index, XBT.index, ETH.index])
STOP_TYPES = st.sampled_from(
    [
        OrderType.stop_loss,
        OrderType.take_profit,
        OrderType.stop_loss_limit,
        OrderType.take_profit_limit,
        OrderType.trailing_stop,
        OrderType.trailing_stop_limit,
    ]
)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()

    def apply(self, command: Command) -> list[Event]:
        events = self.h.apply(command)
        for e in events:  # visible with --hypothesis-show-statistics: what the streams exercise
            event(
                f"{type(e).__name__}:{Reject(e.reason).name}" if isinstance(e, Rejected) else type(e).__name__
            )
        return events

    @initialize()
    def fund(self) -> None:
        for account in (1, 2, 3, 4):
            self.apply(Deposit(self.h.tick_ns(), account, USD.index, 10**8, "seed"))  # 10,000 USD
            self.apply(Deposit(self.h.tick_ns(), account, XBT.index, 10**11, "seed"))  # 10 XBT
            self.apply(Deposit(self.h.tick_ns(), account, ETH.index, 10**12, "seed"))  # 100 ETH

    # ------------------------------------------------------------------ funds
    @rule(account=ACCOUNTS, asset=ASSETS, amount=st.integers(1, 10**11), out=st.booleans())
    def move_funds(self, account: int, asset: int, amount: int, out: bool) -> None:
        kind = Withdraw if out else Deposit
        self.apply(kind(self.h.tick_ns(), account, asset, amount, "w" if out else "d"))

    def _price(self, data: st.DataObject, pair: int) -> int:
        mid, step, _ = MARKETS[pair]
        return mid + step * data.draw(OFFSETS)

    @rule(data=st.data(), account=ACCOUNTS, pair=PAIRS, side=SIDES, variant=LIMIT_VARIANTS, stp=STPS)
    def place_limit(
        self, data: st.DataObject, account: int, pair: int, side: int, variant: str, stp: int
    ) -> None:
        volume = data.draw(MARKETS[pair][2])
        kw: dict[str, Any] = {"price_ticks": self._price(data, pair), "stp": stp}
        ordertype = OrderType.limit
        words = variant.split()
        if "iceberg" in words:
            ordertype = OrderType.iceberg
            kw["display_lots"] = max(volume // data.draw(st.integers(1, 15)), 1)
        kw["flags"] = (FLAG_POST if "post" in words else 0) | (FLAG_FCIB if "fcib" in words else 0)
        if "ioc" in words:
            kw["tif"] = int(TimeInForce.ioc)
        if "gtd" in words:
            expire_ns = self.h.ts_ns + data.draw(st.integers(1, 30)) * SECOND_NS
            kw.update(tif=int(TimeInForce.gtd), expire_ns=expire_ns)
        if "start" in words:
            kw["start_ns"] = self.h.ts_ns + data.draw(st.integers(1, 20)) * SECOND_NS
        self._place(account, pair, side, ordertype, volume, **kw)

    @rule(data=st.data(), account=ACCOUNTS, pair=PAIRS, side=SIDES, extras=st.integers(0, 15))
    def place_market(self, data: st.DataObject, account: int, pair: int, side: int, extras: int) -> None:
        volume = data.draw(MARKETS[pair][2])
        flags = (FLAG_NOMPP if extras & 1 else 0) | (FLAG_FCIB if extras & 2 else 0)
        if extras & 4 and side == 0 and pair == XBTUSD.index:  # quote-sized: 1..500 USD
            flags, volume = flags & ~FLAG_FCIB | FLAG_VIQC, data.draw(st.integers(10**4, 5 * 10**6))
        self._place(account, pair, side, OrderType.market, volume, flags=flags, stp=extras % 3)

    @rule(data=st.data(), account=ACCOUNTS, pair=PAIRS, side=SIDES, t=STOP_TYPES, pct=st.booleans())
    def place_stop(
        self, data: st.DataObject, account: int, pair: int, side: int, t: OrderType, pct: bool
    ) -> None:
        volumes = MARKETS[pair][2]
        kw: dict[str, Any] = {}
        if t in (OrderType.trailing_stop, OrderType.trailing_stop_limit):
            if pct:
                kw.update(price_kind=int(PriceKind.plus), price_pct_ppm=data.draw(st.integers(0, 5_000_000)))
            else:
                kw.update(price_kind=int(PriceKind.plus), price_ticks=data.draw(st.integers(0, 60)))
            if t == OrderType.trailing_stop_limit:
                kind = data.draw(st.sampled_from([PriceKind.plus, PriceKind.minus]))
                kw.update(price2_kind=int(kind), price2_ticks=data.draw(st.integers(0, 30)))
        else:
            kw["price_ticks"] = self._price(data, pair)
            if t in (OrderType.stop_loss_limit, OrderType.take_profit_limit):
                kw["price2_ticks"] = self._price(data, pair)
        self._place(account, pair, side, t, data.draw(volumes), **kw)

    @rule(data=st.data(), account=ACCOUNTS, pair=PAIRS, side=SIDES, depth=st.integers(0, 4), stp=STPS)
    def take(self, data: st.DataObject, account: int, pair: int, side: int, depth: int, stp: int) -> None:
        """A limit order priced ``depth`` steps through the opposite touch: it trades, and moves
        the last price that stops and trailing stops follow."""
        book = self.h.s.books[pair]
        touch = (book.asks if side == 0 else book.bids).best_price()
        if not touch:
            return
        step = MARKETS[pair][1] * depth
        price = touch + step if side == 0 else max(touch - step, 1)
        volume = data.draw(MARKETS[pair][2])
        self._place(account, pair, side, OrderType.limit, volume, price_ticks=price, stp=stp)

    def _place(self, account: int, pair: int, side: int, t: OrderType, volume: int, **kw: Any) -> None:
        self.apply(PlaceOrder(self.h.tick_ns(), account, pair, side, int(t), volume, **kw))

    def _pick(self, pick: int) -> tuple[int, int]:
        live = sorted(self.h.s.orders)
        if not live:
            return 1, 1
        no = live[pick % len(live)]
        return self.h.s.orders[no].account, no

    @rule(pick=st.integers(0, 10**6), wrong_account=st.booleans())
    def cancel(self, pick: int, wrong_account: bool) -> None:
        account, no = self._pick(pick)
        self.apply(CancelOrders(self.h.tick_ns(), account % 4 + 1 if wrong_account else account, [no]))

    @rule(
        pick=st.integers(0, 10**6),
        qty_pct=st.one_of(st.just(-1), st.integers(0, 200)),
        price_move=st.one_of(st.just(None), st.integers(-40, 40)),
        display=st.one_of(st.just(-1), st.integers(1, 10**8)),
        post=st.booleans(),
    )
    def amend(self, pick: int, qty_pct: int, price_move: int | None, display: int, post: bool) -> None:
        account, no = self._pick(pick)
        o = self.h.s.orders.get(no)
        qty = -1 if o is None or qty_pct < 0 else o.volume_lots * qty_pct // 100
        limit = trigger = -1
        if o is not None and price_move is not None:
            limit = max(0, (o.limit_ticks or o.price2_ticks) + price_move)
            trigger = max(1, o.stop_ticks + price_move) if o.stop_ticks else -1
        self.apply(AmendOrder(self.h.tick_ns(), account, no, "", qty, display, limit, trigger, post))

    @rule(pick=st.integers(0, 10**6), qty_pct=st.integers(-1, 200), price_move=st.integers(-40, 40))
    def edit(self, pick: int, qty_pct: int, price_move: int) -> None:
        account, no = self._pick(pick)
        o = self.h.s.orders.get(no)
        qty = -1 if o is None or qty_pct < 0 else o.volume_lots * qty_pct // 100
        price = -1 if o is None else max(1, o.limit_ticks + price_move)
        self.apply(EditOrder(self.h.tick_ns(), account, no, volume_lots=qty, price_ticks=price))

    # ------------------------------------------------------------------ time
    @rule(seconds=st.integers(0, 40))
    def tick(self, seconds: int) -> None:
        self.apply(Tick(self.h.ts_ns + seconds * SECOND_NS))

    @rule(
        account=ACCOUNTS, what=st.sampled_from(["cancel-all", "dms", "dms-off"]), seconds=st.integers(1, 30)
    )
    def housekeeping(self, account: int, what: str, seconds: int) -> None:
        if what == "cancel-all":
            self.apply(CancelAll(self.h.tick_ns(), account))
        else:
            self.apply(CancelAllAfter(self.h.tick_ns(), account, 0, seconds if what == "dms" else 0))

    def teardown(self) -> None:
        """Cancelling everything releases every hold to the last minor unit."""
        for account in (1, 2, 3, 4):
            self.apply(CancelAll(self.h.tick_ns(), account))
        assert not self.h.s.orders
        for acct in self.h.s.accounts.values():
            assert not any(acct.held), "holds left after every order was cancelled"

    @invariant()
    def everything_adds_up(self) -> None:
        self.h.check()


EngineMachine.TestCase.settings = settings(
    ENGINE_PROFILE, max_examples=ENGINE_PROFILE.max_examples * 2, stateful_step_count=50
)
TestEngineMachine = EngineMachine.TestCase


# ------------------------------------------------------------------ seeded soak
SOAK_VOLUMES = {XBTUSD.index: (600_000, 300_000_000), ETHXBT.index: (100_000, 2_000_000_000)}


def soak_command(rnd: random.Random, h: Harness) -> Command:
    """One random command, shaped by the current state (live orders, touch prices)."""
    ts = h.tick_ns()
    account = rnd.randint(1, 4)
    pair = rnd.choice(sorted(MARKETS))
    mid, step, _ = MARKETS[pair]
    low, high = SOAK_VOLUMES[pair]
    volume = int(low * (high / low) ** rnd.random())
    price = mid + step * rnd.randint(-20, 20)
    side = rnd.randint(0, 1)
    live = sorted(h.s.orders)
    target = h.s.orders[rnd.choice(live)] if live else None
    roll = rnd.random()
    if roll < 0.30:
        t, kw = OrderType.limit, {"price_ticks": price, "stp": rnd.choice([0, 0, 1, 2])}
        if rnd.random() < 0.2:
            t, kw["display_lots"] = OrderType.iceberg, max(volume // rnd.randint(1, 15), 1)
        kw["flags"] = rnd.choice([0, 0, 0, FLAG_POST, FLAG_FCIB])
        if rnd.random() < 0.1:
            kw.update(tif=int(TimeInForce.gtd), expire_ns=ts + rnd.randint(1, 20) * SECOND_NS)
        elif rnd.random() < 0.1:
            kw["tif"] = int(TimeInForce.ioc)
        if rnd.random() < 0.05:
            kw["start_ns"] = ts + rnd.randint(1, 20) * SECOND_NS
        return PlaceOrder(ts, account, pair, side, int(t), volume, **kw)
    if roll < 0.45:  # through the opposite touch: trades and moves the last price
        touch = h.s.books[pair].side(side == 1).best_price() or price
        through = step * rnd.randint(0, 4) * (1 if side == 0 else -1)
        return PlaceOrder(ts, account, pair, side, int(OrderType.limit), volume, price_ticks=touch + through)
    if roll < 0.52:
        flags = rnd.choice([0, 0, FLAG_NOMPP, FLAG_FCIB])
        if side == 0 and pair == XBTUSD.index and rnd.random() < 0.3:
            flags, volume = FLAG_VIQC, rnd.randint(10**4, 5 * 10**6)
        return PlaceOrder(
            ts, account, pair, side, int(OrderType.market), volume, flags=flags, stp=rnd.randint(0, 2)
        )
    if roll < 0.62:
        t = rnd.choice(sorted(TRIGGERED))
        kw = {"price_ticks": price, "price2_ticks": mid + step * rnd.randint(-20, 20)}
        if t in (OrderType.trailing_stop, OrderType.trailing_stop_limit):
            kw = {"price_kind": int(PriceKind.plus), "price_ticks": step * rnd.randint(0, 10)}
            if rnd.random() < 0.5:
                kw["price_pct_ppm"] = rnd.randint(0, 3_000_000)
            kw["price2_kind"] = int(rnd.choice([PriceKind.plus, PriceKind.minus]))
            kw["price2_ticks"] = step * rnd.randint(0, 10)
        return PlaceOrder(ts, account, pair, side, int(t), volume, **kw)
    if roll < 0.72 and target is not None:
        return CancelOrders(ts, target.account if rnd.random() < 0.9 else account, [target.order_no])
    if roll < 0.80 and target is not None:
        qty = rnd.choice([-1, target.volume_lots * rnd.randint(0, 200) // 100])
        move = step * rnd.randint(-10, 10)
        limit = rnd.choice([-1, max((target.limit_ticks or target.price2_ticks) + move, 0)])
        trigger = rnd.choice([-1, max(target.stop_ticks + move, 1)]) if target.stop_ticks else -1
        display = rnd.choice([-1, -1, max(target.volume_lots // rnd.randint(1, 20), 1)])
        post = rnd.random() < 0.3
        return AmendOrder(ts, target.account, target.order_no, "", qty, display, limit, trigger, post)
    if roll < 0.85 and target is not None:
        qty = rnd.choice([-1, target.volume_lots * rnd.randint(50, 200) // 100])
        price2 = rnd.choice([-1, max(target.limit_ticks + step * rnd.randint(-10, 10), 1)])
        return EditOrder(ts, target.account, target.order_no, volume_lots=qty, price_ticks=price2)
    if roll < 0.90:
        return Tick(ts + rnd.randint(0, 8) * SECOND_NS)
    if roll < 0.95:
        asset = rnd.choice([USD.index, XBT.index, ETH.index])
        kind = Deposit if rnd.random() < 0.6 else Withdraw
        return kind(ts, account, asset, rnd.randint(1, 10**11), "soak")
    if roll < 0.97:
        return CancelAllAfter(ts, account, 0, rnd.randint(0, 20))
    if roll < 0.98:
        return SetMode(ts, pair, int(rnd.choice(list(Mode))))
    return SetMode(ts, pair, int(Mode.online))


@pytest.mark.parametrize("seed", range(3))
def test_seeded_soak_keeps_every_invariant(seed: int) -> None:
    rnd = random.Random(seed)
    h = Harness()
    for account in (1, 2, 3, 4):
        for asset, amount in ((USD, 10**8), (XBT, 10**11), (ETH, 10**12)):
            h.deposit(account, asset, amount)
    seen: set[str] = set()
    for _ in range(1_500):
        events = h.apply(soak_command(rnd, h))  # the harness checks everything after each one
        seen.update(type(e).__name__ for e in events)
    for name in ("Fill", "OrderTriggered", "OrderAmended", "OrderStarted", "TimerArmed"):
        assert name in seen, f"the soak never produced {name}"


def test_replay_is_byte_identical() -> None:
    """The same command log, decoded from msgpack, yields byte-identical events and state."""
    rnd = random.Random(7)
    h = Harness()
    h.checking = False
    log: list[bytes] = []
    out: list[bytes] = []
    for account in (1, 2, 3, 4):
        for asset, amount in ((USD, 10**8), (XBT, 10**11), (ETH, 10**12)):
            cmd: Command = Deposit(h.tick_ns(), account, asset.index, amount, "seed")
            log.append(command_encoder.encode(cmd))
            out.append(events_encoder.encode(h.apply(cmd)))
    for _ in range(1_000):
        cmd = soak_command(rnd, h)
        log.append(command_encoder.encode(cmd))
        out.append(events_encoder.encode(h.apply(cmd)))
    replica = Engine(h.instruments)
    for raw, expected in zip(log, out, strict=True):
        assert events_encoder.encode(replica.apply(command_decoder.decode(raw))) == expected
    assert digest(replica) == digest(h.engine)
