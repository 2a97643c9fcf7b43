"""Snapshots: a restore anywhere in a command stream replays identically; blobs are canonical and checked."""

from __future__ import annotations

import functools
import hashlib
import os
import random
import subprocess
import sys
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abyssal.config import load_config
from abyssal.core import snapshot as snapshots
from abyssal.core.book import Order
from abyssal.core.engine import Engine
from abyssal.core.instruments import Instruments
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
    Mode,
    OrderType,
    PlaceBatch,
    PlaceOrder,
    PriceKind,
    SetMode,
    Tick,
    TimeInForce,
    Withdraw,
    command_encoder,
    events_encoder,
)
from abyssal.core.order import ORDER_FIELDS, OrderCold
from abyssal.core.snapshot import SnapshotError, restore, snapshot, state_hash

INS = load_config(None).instruments
PAIRS = INS.pairs[:3]  # XBT/USD, ETH/USD, ETH/XBT: a quote that is itself a base elsewhere
MID_TICKS = (500_000, 300_000, 60_000)  # 50000.0 USD, 3000.00 USD, 0.060000 XBT
ACCOUNTS = (1, 2, 3, 4, 5)
FUNDED = tuple(
    (INS.asset(code), Decimal(amount)) for code, amount in (("XBT", "20"), ("ETH", "400"), ("USD", "2000000"))
)
SECOND_NS = 10**9
DAY_NS = 86_400 * SECOND_NS
T0_NS = 20_000 * DAY_NS - 300 * SECOND_NS  # five minutes before a UTC midnight: fee days roll mid-stream
BUY, SELL = 0, 1

STREAM_SEEDS = range(10)
STREAM_COMMANDS = 600
KIND_WEIGHTS = {"place": 50, "batch": 4, "cancel": 4, "cancel_all": 1, "dms": 2, "amend": 16, "edit": 5}
KIND_WEIGHTS |= {"deposit": 2, "withdraw": 2, "tick": 4, "mode": 1}
TYPES = tuple(OrderType)
TYPE_WEIGHTS = (10, 30, 8, 6, 6, 6, 6, 5, 5)  # market, limit, iceberg, the four stops, the two trailing


def encoded(events: list[Any]) -> bytes:
    return events_encoder.encode(events)


class StreamGen:
    """Random commands aimed at the live state of the engine that runs them (so they hit real orders)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.engine = Engine(INS)
        self.ts = T0_NS
        self.refs = 0
        self.reverts: list[tuple[int, int]] = []  # (command index, pair): a market mode back to online
        self.commands: list[Command] = []
        self.events: list[bytes] = []
        for account in ACCOUNTS:
            for asset, amount in FUNDED:
                assert asset is not None
                self.run(Deposit(self.ts, account, asset.index, asset.to_minor(amount), f"fund-{account}"))

    def run(self, command: Command) -> None:
        self.commands.append(command)
        self.events.append(encoded(self.engine.apply(command)))

    def step(self) -> None:
        r = self.r
        self.ts += r.randint(0, SECOND_NS // 2)
        if r.random() < 0.004:
            self.ts += 31 * DAY_NS  # a month of silence: every fee day leaves the window
        if self.reverts and self.reverts[0][0] <= len(self.commands):
            self.run(SetMode(self.ts, self.reverts.pop(0)[1], int(Mode.online)))
            return
        kind = r.choices(tuple(KIND_WEIGHTS), tuple(KIND_WEIGHTS.values()))[0]
        self.run(getattr(self, f"_{kind}")())

    # ------------------------------------------------------------------ helpers
    def _near(self, pair: int, spread: int = 12) -> int:
        last = self.engine.s.last_price[pair] or MID_TICKS[pair]
        return max(1, last + self.r.randint(-spread, spread))

    def _live(self, account: int) -> list[Order]:
        acct = self.engine.s.accounts.get(account)
        return list(acct.open.values()) if acct is not None else []

    def _order(self) -> PlaceOrder:
        r = self.r
        pair = r.choice(PAIRS)
        i = pair.index
        side = r.choice((BUY, SELL))
        t = r.choices(TYPES, TYPE_WEIGHTS)[0]
        volume = pair.ordermin_lots * r.randint(1, 6)
        kw: dict[str, Any] = {}
        flags = 0
        if t in (OrderType.limit, OrderType.iceberg):  # mostly passive, so queues build up
            last = self.engine.s.last_price[i] or MID_TICKS[i]
            away = r.randint(-4, 12)
            kw["price_ticks"] = max(1, last - away if side == BUY else last + away)
            if r.random() < 0.15:  # relative: the engine resolves it against the last trade
                kw["price_kind"] = int(r.choice((PriceKind.plus, PriceKind.minus, PriceKind.hash)))
                kw["price_ticks"] = r.randint(0, 8)
                if r.random() < 0.3:
                    kw["price_pct_ppm"] = r.randint(1, 3) * 1_000  # 0.001 % .. 0.003 %
        if t == OrderType.iceberg:
            volume *= 5
            kw["display_lots"] = -(-volume // r.randint(2, 15))
        if t == OrderType.market and side == BUY and r.random() < 0.25:
            flags |= FLAG_VIQC
            volume = pair.raw_to_quote_ceil(self._near(i) * volume)  # a quote amount
        if t in (
            OrderType.stop_loss,
            OrderType.take_profit,
            OrderType.stop_loss_limit,
            OrderType.take_profit_limit,
        ):
            if r.random() < 0.6:
                kw["price_ticks"] = self._near(i)
            else:
                kw["price_kind"] = int(r.choice((PriceKind.plus, PriceKind.minus, PriceKind.hash)))
                kw["price_ticks"] = r.randint(0, 8)
                if r.random() < 0.3:
                    kw["price_pct_ppm"] = r.randint(1, 3) * 1_000  # 0.001 % .. 0.003 %
            if t in (OrderType.stop_loss_limit, OrderType.take_profit_limit):
                kw["price2_ticks"] = self._near(i)
        if t in (OrderType.trailing_stop, OrderType.trailing_stop_limit):
            kw["price_kind"], kw["price_ticks"] = int(PriceKind.plus), r.randint(1, 8)
            if r.random() < 0.3:
                kw["price_pct_ppm"] = r.randint(1, 3) * 1_000
            if t == OrderType.trailing_stop_limit:
                kw["price2_kind"] = int(r.choice((PriceKind.plus, PriceKind.minus)))
                kw["price2_ticks"] = r.randint(0, 4)
        for flag, p in ((FLAG_POST, 0.1), (FLAG_FCIB, 0.1), (FLAG_NOMPP, 0.1)):
            if r.random() < p:
                flags |= flag
        tif = r.choices((TimeInForce.gtc, TimeInForce.ioc, TimeInForce.gtd), (70, 10, 20))[0]
        cl_ord_id = ""
        if r.random() < 0.25:
            self.refs += 1
            cl_ord_id = f"c{self.refs}"
        elif r.random() < 0.05 and self.refs:
            cl_ord_id = f"c{r.randint(1, self.refs)}"  # perhaps still in use: a duplicate
        return PlaceOrder(
            self.ts,
            r.choice(ACCOUNTS),
            i,
            side,
            int(t),
            volume,
            flags=flags,
            tif=int(tif),
            expire_ns=self.ts + r.randint(10, 300) * SECOND_NS if tif == TimeInForce.gtd else 0,
            start_ns=self.ts + r.randint(1, 40) * SECOND_NS if r.random() < 0.1 else 0,
            userref=r.randint(0, 3),
            cl_ord_id=cl_ord_id,
            stp=r.randrange(3),
            validate=r.random() < 0.03,
            **kw,
        )

    # ------------------------------------------------------------------ command kinds
    def _place(self) -> Command:
        return self._order()

    def _batch(self) -> Command:
        return PlaceBatch(self.ts, [self._order() for _ in range(self.r.randint(2, 3))])

    def _cancel(self) -> Command:
        r = self.r
        account = r.choice(ACCOUNTS)
        live = self._live(account)
        roll = r.random()
        if roll < 0.6 and live:
            numbers = [o.order_no for o in r.sample(live, min(len(live), r.randint(1, 2)))]
            if r.random() < 0.2:
                numbers.append(self.engine.s.next_order_no + 7)  # unknown: ignored beside known ones
            return CancelOrders(self.ts, account, order_nos=numbers)
        if roll < 0.8:
            ids = [o.cl_ord_id for o in live if o.cl_ord_id] or [f"c{r.randint(0, self.refs + 1)}"]
            return CancelOrders(self.ts, account, cl_ord_ids=ids[:2])
        return CancelOrders(self.ts, account, userrefs=[r.randint(0, 3)])

    def _cancel_all(self) -> Command:
        return CancelAll(self.ts, self.r.choice(ACCOUNTS))

    def _dms(self) -> Command:
        r = self.r
        return CancelAllAfter(self.ts, r.choice(ACCOUNTS), r.randint(1, 2), r.choice((0, 0, 60, 600, 3_600)))

    def _amend(self) -> Command:
        r = self.r
        account = r.choice(ACCOUNTS)
        live = self._live(account)
        if not live or r.random() < 0.05:
            return AmendOrder(self.ts, account, order_no=self.engine.s.next_order_no + 3)
        o = r.choice(live)
        lot = PAIRS[o.pair].ordermin_lots
        kw: dict[str, Any] = {}
        if r.random() < 0.5:
            kw["order_qty_lots"] = max(0, o.volume_lots + lot * r.randint(-3, 3))
        if o.display_lots and r.random() < 0.3:
            # within place's 1/15 ratio: amend does not enforce it, and a 1-lot chunk fills lot by lot
            kw["display_lots"] = -(-o.volume_lots // r.randint(2, 15))
        if r.random() < 0.4:
            kw["limit_price_ticks"] = self._near(o.pair)
            if r.random() < 0.2:  # relative to the last trade
                kw["limit_price_kind"] = int(r.choice((PriceKind.plus, PriceKind.minus)))
                kw["limit_price_ticks"] = r.randint(0, 8)
        if not o.triggered and r.random() < 0.5:
            kw["trigger_price_ticks"] = self._near(o.pair)
        kw["post_only"] = r.random() < 0.2
        if o.cl_ord_id and r.random() < 0.3:
            return AmendOrder(self.ts, account, cl_ord_id=o.cl_ord_id, **kw)
        return AmendOrder(self.ts, account, order_no=o.order_no, **kw)

    def _edit(self) -> Command:
        r = self.r
        account = r.choice(ACCOUNTS)
        live = [o for o in self._live(account) if o.ordertype in (OrderType.limit, OrderType.iceberg)]
        if not live:
            return EditOrder(self.ts, account, self.engine.s.next_order_no + 5)
        o = r.choice(live)
        lot = PAIRS[o.pair].ordermin_lots
        return EditOrder(
            self.ts,
            account,
            o.order_no,
            volume_lots=o.volume_lots + lot * r.randint(-2, 3) if r.random() < 0.5 else -1,
            price_ticks=self._near(o.pair) if r.random() < 0.6 else -1,
            post_only=r.choice((-1, -1, 0, 1)),
            userref=r.choice((-1, 2)),
            validate=r.random() < 0.1,
        )

    def _deposit(self) -> Command:
        asset, amount = self.r.choice(FUNDED)
        assert asset is not None
        minor = asset.to_minor(amount) // self.r.randint(2, 50)
        return Deposit(self.ts, self.r.choice(ACCOUNTS), asset.index, minor, f"d{len(self.commands)}")

    def _withdraw(self) -> Command:
        asset, amount = self.r.choice(FUNDED)
        assert asset is not None
        minor = asset.to_minor(amount) // self.r.randint(1, 20)  # sometimes more than is available
        return Withdraw(self.ts, self.r.choice(ACCOUNTS), asset.index, minor, f"w{len(self.commands)}")

    def _tick(self) -> Command:
        self.ts += self.r.randint(1, 20) * SECOND_NS
        return Tick(self.ts)

    def _mode(self) -> Command:
        r = self.r
        pair = r.choice((-1, 0, 1, 2))
        mode = r.choice((Mode.post_only, Mode.limit_only, Mode.cancel_only, Mode.maintenance))
        self.reverts.append((len(self.commands) + r.randint(5, 30), pair))
        self.reverts.sort()
        return SetMode(self.ts, pair, int(mode))


@functools.cache
def stream(seed: int, length: int = STREAM_COMMANDS) -> tuple[tuple[Command, ...], tuple[bytes, ...], str]:
    """(commands, encoded events of each, final state hash) of one uninterrupted run."""
    gen = StreamGen(seed)
    for _ in range(length):
        gen.step()
    return tuple(gen.commands), tuple(gen.events), state_hash(gen.engine)


def replay(engine: Engine, commands: tuple[Command, ...]) -> list[bytes]:
    return [encoded(engine.apply(c)) for c in commands]


def assert_same_events(got: list[bytes], want: tuple[bytes, ...] | list[bytes], where: str) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a == b, f"{where}: events of command {i} differ"
    assert b"".join(got) == b"".join(want)


def cut_and_resume(commands: tuple[Command, ...], k: int) -> tuple[list[bytes], Engine]:
    """Run the first k commands, snapshot, restore into a fresh engine, run the rest."""
    engine = Engine(INS)
    head = replay(engine, commands[:k])
    blob = snapshot(engine)
    resumed = restore(INS, blob)
    assert snapshot(resumed) == blob, f"snapshot(restore(snapshot)) differs at cut {k}"
    return head + replay(resumed, commands[k:]), resumed


# ---------------------------------------------------------------------- replay across a restore
@pytest.mark.parametrize("seed", STREAM_SEEDS)
def test_a_restore_at_any_cut_replays_the_same_events_and_state(seed: int) -> None:
    commands, events, final_hash = stream(seed)
    r = random.Random(seed)
    cuts = sorted({0, len(commands), *r.sample(range(1, len(commands)), 4)})
    for k in cuts:
        got, resumed = cut_and_resume(commands, k)
        assert_same_events(got, events, f"seed {seed}, cut {k}")
        assert state_hash(resumed) == final_hash, f"seed {seed}, cut {k}: final state differs"


def test_a_chain_of_restores_replays_the_same_events() -> None:
    """Snapshot and restore every few commands: every state on the way must round-trip."""
    for seed in (100, 101):
        commands, events, final_hash = stream(seed)
        engine = Engine(INS)
        got: list[bytes] = []
        for i, command in enumerate(commands):
            if i % 3 == 0:
                blob = snapshot(engine)
                engine = restore(INS, blob)
                assert snapshot(engine) == blob
            got.append(encoded(engine.apply(command)))
        assert_same_events(got, events, f"chain {seed}")
        assert state_hash(engine) == final_hash


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 200))
def test_restore_replays_identically_for_generated_streams(seed: int, cut: int) -> None:
    commands, events, final_hash = stream(seed, 150)
    k = min(cut, len(commands))
    got, resumed = cut_and_resume(commands, k)
    assert_same_events(got, events, f"seed {seed}, cut {k}")
    assert state_hash(resumed) == final_hash


def test_taking_a_snapshot_changes_nothing() -> None:
    commands, events, final_hash = stream(0)
    engine = Engine(INS)
    got = []
    for command in commands:
        got.append(encoded(engine.apply(command)))
        snapshot(engine)
        # state outside EngineState would escape snapshots; the cascade queue only lives inside a command
        attrs = getattr(engine, "__dict__", None) or getattr(type(engine), "__mypyc_attrs__", ())
        assert set(attrs) == {"s", "_handlers", "_cascades"}
        assert not engine._cascades
    assert_same_events(got, events, "snapshot after every command")
    assert state_hash(engine) == final_hash


# ---------------------------------------------------------------------- determinism
def test_two_runs_of_one_stream_give_one_hash() -> None:
    commands, events, final_hash = stream(3)
    engine = Engine(INS)
    assert_same_events(replay(engine, commands), events, "second run")
    assert state_hash(engine) == final_hash
    assert final_hash != state_hash(Engine(INS))


REPLAY_SCRIPT = """
import hashlib, sys
import msgspec
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import AnyCommand, events_encoder
from abyssal.core.snapshot import state_hash
engine = Engine(load_config(None).instruments)
commands = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=list[AnyCommand])
events = hashlib.sha256(b"".join(events_encoder.encode(engine.apply(c)) for c in commands)).hexdigest()
print(events, state_hash(engine))
"""


def test_another_process_with_other_string_hashing_gives_the_same_hash() -> None:
    """Set and dict orders of strings vary with PYTHONHASHSEED; nothing may depend on them."""
    commands, events, final_hash = stream(4)
    out = subprocess.run(
        [sys.executable, "-c", REPLAY_SCRIPT],
        input=command_encoder.encode(list(commands)),
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "4242"},
        timeout=60,
    )
    events_hash, hash_there = out.stdout.decode().split()
    assert events_hash == hashlib.sha256(b"".join(events)).hexdigest()
    assert hash_there == final_hash


# ---------------------------------------------------------------------- scenarios
T = T0_NS
BTC = 10**8  # lots per BTC on XBT/USD


def funded_engine() -> Engine:
    engine = Engine(INS)
    for account in (1, 2, 3):
        engine.apply(Deposit(T, account, 0, 10 * 10**10, "xbt"))
        engine.apply(Deposit(T, account, 2, 10**6 * 10**4, "usd"))
    return engine


def limit(ts: int, account: int, side: int, price_ticks: int, volume_lots: int, **kw: Any) -> PlaceOrder:
    return PlaceOrder(ts, account, 0, side, int(OrderType.limit), volume_lots, price_ticks=price_ticks, **kw)


def both(engines: tuple[Engine, Engine], command: Command) -> None:
    a, b = (encoded(e.apply(command)) for e in engines)
    assert a == b, f"events differ after a restore for {command!r}"


def test_stale_heap_entries_are_dropped_and_change_no_event() -> None:
    engine = funded_engine()
    engine.apply(limit(T + 1, 2, SELL, 100_000, BTC))
    engine.apply(limit(T + 2, 3, BUY, 100_000, BTC // 2))  # last price 10000.0
    stop = PlaceOrder(T + 3, 1, 0, SELL, int(OrderType.stop_loss), BTC // 10, price_ticks=99_900)
    engine.apply(stop)  # order 3
    for i, trigger in enumerate((99_800, 99_700, 99_900)):  # re-filed each time: older entries go stale
        engine.apply(AmendOrder(T + 4 + i, 1, order_no=3, trigger_price_ticks=trigger))
    engine.apply(limit(T + 10, 1, BUY, 90_000, BTC, tif=int(TimeInForce.gtd), expire_ns=T + 50 * SECOND_NS))
    engine.apply(limit(T + 11, 1, BUY, 90_000, BTC, start_ns=T + 60 * SECOND_NS))
    engine.apply(CancelOrders(T + 12, 1, order_nos=[4, 5]))
    s = engine.s
    # stale stop entries stay in the heap; stale expiry and start heads are dropped by apply itself
    assert (len(s.fall[0]), len(s.expiries), len(s.starts)) == (4, 0, 0)
    resumed = restore(INS, snapshot(engine))
    assert (resumed.s.fall[0], resumed.s.expiries, resumed.s.starts) == ([(-99_900, 3)], [], [])
    engines = (engine, resumed)
    both(engines, Tick(T + 70 * SECOND_NS))  # past the cancelled orders' expiry and start
    both(engines, limit(T + 71 * SECOND_NS, 3, BUY, 99_800, BTC // 2))  # walks the ask book down
    both(engines, PlaceOrder(T + 72 * SECOND_NS, 2, 0, SELL, int(OrderType.market), BTC))  # through 9990.0
    assert 3 not in engine.s.orders
    assert state_hash(engine) == state_hash(resumed)


def test_book_tombstones_are_left_out_and_change_no_priority() -> None:
    """[W, X, A, B] at one price; X cancelled, W filled: the deque keeps X's entry ahead of A."""
    engine = funded_engine()
    for ts, account in ((T + 1, 1), (T + 2, 1), (T + 3, 2), (T + 4, 3)):  # W=1, X=2, A=3, B=4
        engine.apply(limit(ts, account, SELL, 100_000, BTC))
    engine.apply(CancelOrders(T + 5, 1, order_nos=[2]))
    engine.apply(limit(T + 6, 3, BUY, 100_000, BTC))  # takes W exactly: X's tombstone is now the head
    level = engine.s.books[0].asks.levels[100_000]
    assert [o.order_no for o in level.orders] == [2, 3, 4]
    resumed = restore(INS, snapshot(engine))
    assert [o.order_no for o in resumed.s.books[0].asks.levels[100_000].orders] == [3, 4]
    engines = (engine, resumed)
    # A size increase: A loses its place. Were X's tombstone live, it would keep A from being popped.
    both(engines, AmendOrder(T + 7, 2, order_no=3, order_qty_lots=2 * BTC))
    both(engines, limit(T + 8, 1, BUY, 100_000, BTC))  # so B fills first
    assert 4 not in engine.s.orders
    assert state_hash(engine) == state_hash(resumed)


def bump(value: Any) -> Any:
    return not value if isinstance(value, bool) else value + ("x" if isinstance(value, str) else 1)


def bump_slot(engine: Engine, order_no: int, name: str) -> None:
    o = engine.s.orders[order_no]
    setattr(o, name, bump(getattr(o, name)))


def test_every_state_field_reaches_the_hash() -> None:
    engine = funded_engine()
    engine.apply(limit(T + 1, 2, SELL, 100_000, BTC))
    engine.apply(limit(T + 2, 3, BUY, 100_000, BTC // 2))  # a trade: last price, fee volume
    engine.apply(CancelAllAfter(T + 3, 1, 1, 60))
    engine.apply(limit(T + 4, 1, BUY, 90_000, BTC, start_ns=T + 100 * SECOND_NS, cl_ord_id="pending"))
    pending = engine.s.next_order_no - 1
    assert engine.s.orders[pending].start_ns > 0
    base = snapshot(engine)

    def changes(mutate: Any) -> bool:
        e = restore(INS, base)
        mutate(e)
        try:
            return snapshot(e) != base
        except AssertionError:  # an invariant check refused it: that too proves the field is read
            return True

    for name in ORDER_FIELDS:
        assert changes(functools.partial(bump_slot, order_no=pending, name=name)), name
    mutations = {
        "total": lambda e: setattr(e.s.accounts[1].bal[2], "total", e.s.accounts[1].bal[2].total + 1),
        "held": lambda e: setattr(e.s.accounts[1].bal[2], "held", e.s.accounts[1].bal[2].held + 1),
        "cl_ids": lambda e: e.s.accounts[1].cl_ids.__setitem__("other", pending),
        "vol_days": lambda e: e.s.accounts[1].vol_days.__setitem__(-1, 1),
        "vol_today": lambda e: setattr(e.s.accounts[1], "vol_today", e.s.accounts[1].vol_today + 2),
        "vol30": lambda e: setattr(e.s.accounts[1], "vol30", e.s.accounts[1].vol30 + 1),
        "cur_day": lambda e: setattr(e.s.accounts[1], "cur_day", e.s.accounts[1].cur_day + 1),
        "account number": lambda e: setattr(e.s.accounts[1], "number", 99),
        "next_order_no": lambda e: setattr(e.s, "next_order_no", e.s.next_order_no + 1),
        "amend_no": lambda e: setattr(e.s, "amend_no", e.s.amend_no + 1),
        "system_mode": lambda e: setattr(e.s, "system_mode", int(Mode.post_only)),
        "modes": lambda e: e.s.modes.__setitem__(1, int(Mode.limit_only)),
        "last_price": lambda e: e.s.last_price.__setitem__(1, e.s.last_price[1] + 1),
        "trade_no": lambda e: e.s.trade_no.__setitem__(1, e.s.trade_no[1] + 1),
        "dms": lambda e: e.s.dms.__setitem__((1, 9), T + 500 * DAY_NS),
    }
    for what, mutate in mutations.items():
        assert changes(mutate), what


def test_trailing_stops_keep_their_insertion_order() -> None:
    engine = funded_engine()
    engine.apply(limit(T + 1, 2, SELL, 100_000, BTC))
    engine.apply(limit(T + 2, 3, BUY, 100_000, BTC // 2))
    trail: dict[str, Any] = {"price_kind": int(PriceKind.plus), "price_ticks": 50}
    engine.apply(
        PlaceOrder(
            T + 3, 1, 0, SELL, int(OrderType.trailing_stop), BTC // 10, start_ns=T + SECOND_NS, **trail
        )
    )
    engine.apply(PlaceOrder(T + 4, 1, 0, SELL, int(OrderType.trailing_stop), BTC // 10, **trail))
    engine.apply(Tick(T + 2 * SECOND_NS))  # order 3 starts after order 4 was filed
    assert list(engine.s.trailing[0]) == [4, 3]
    resumed = restore(INS, snapshot(engine))
    assert list(resumed.s.trailing[0]) == [4, 3]
    resumed.s.trailing[0] = dict(reversed(resumed.s.trailing[0].items()))
    assert snapshot(resumed) != snapshot(engine)


def test_fee_numerators_beyond_64_bits_round_trip() -> None:
    engine = funded_engine()
    engine.apply(limit(T + 1, 1, SELL, 100_000, BTC))
    engine.s.orders[1].fee_num = 2**70 + 12_345  # a whale's cumulative fee rate times cost
    resumed = restore(INS, snapshot(engine))
    assert resumed.s.orders[1].fee_num == 2**70 + 12_345
    engine.s.accounts[1].bal[0].total = 2**64  # beyond the 64-bit rule: refused loudly, not truncated
    with pytest.raises(SnapshotError, match="beyond 64 bits"):
        snapshot(engine)


# ---------------------------------------------------------------------- refused blobs
@functools.cache
def sample_blob() -> bytes:
    commands, _, _ = stream(7)
    engine = Engine(INS)
    replay(engine, commands)
    return snapshot(engine)


def reseal(body: snapshots.Body, version: int = snapshots.FORMAT_VERSION) -> bytes:
    raw = msgspec.msgpack.encode(body)
    return msgspec.msgpack.encode(
        snapshots.Envelope(snapshots.MAGIC, version, hashlib.sha256(raw).digest(), raw)
    )


def body_of(blob: bytes) -> snapshots.Body:
    envelope = msgspec.msgpack.decode(blob, type=snapshots.Envelope)
    return msgspec.msgpack.decode(envelope.body, type=snapshots.Body)


def test_every_flipped_byte_is_refused() -> None:
    blob = sample_blob()
    assert len(blob) > 2_000
    for i in range(len(blob)):
        corrupt = blob[:i] + bytes([blob[i] ^ 0x5A]) + blob[i + 1 :]
        with pytest.raises(SnapshotError, match=r"corrupt|not an engine snapshot|format version"):
            restore(INS, corrupt)


@pytest.mark.parametrize("cut", [0, 1, 5, 30, -40, -1])
def test_a_truncated_blob_is_refused(cut: int) -> None:
    with pytest.raises(SnapshotError):
        restore(INS, sample_blob()[:cut])


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00",
        b"\xc1",
        msgspec.msgpack.encode({"magic": 1}),
        msgspec.msgpack.encode(["other.format", 1]),
    ],
)
def test_something_else_is_refused(blob: bytes) -> None:
    with pytest.raises(SnapshotError, match="not an engine snapshot"):
        restore(INS, blob)


def test_another_format_version_is_refused_by_name() -> None:
    with pytest.raises(SnapshotError, match="format version 2; this build reads version 1 only"):
        restore(INS, reseal(body_of(sample_blob()), version=2))
    future = msgspec.msgpack.encode([snapshots.MAGIC, 7, {"a": "new shape"}])
    with pytest.raises(SnapshotError, match="format version 7"):
        restore(INS, future)


def test_a_snapshot_of_other_markets_is_refused() -> None:
    fewer = Instruments(assets=INS.assets, pairs=INS.pairs[:3], fee_volume_asset=INS.fee_volume_asset)
    with pytest.raises(SnapshotError, match="other assets or pairs"):
        restore(fewer, sample_blob())


def test_a_sealed_but_non_canonical_body_is_refused() -> None:
    body = body_of(sample_blob())
    assert snapshot(restore(INS, reseal(body))) == sample_blob()  # resealing alone changes nothing
    live = body.orders[0].order_no
    shuffled = msgspec.structs.replace(body, accounts=body.accounts[::-1])
    stale = msgspec.structs.replace(body, expiries=sorted([*body.expiries, (T0_NS - 1, live)]))
    twice = msgspec.structs.replace(body, dms=[*body.dms, *body.dms, (99, 1, T0_NS)])
    for bad in (shuffled, stale, twice):
        with pytest.raises(SnapshotError, match="not in canonical form"):
            restore(INS, reseal(bad))
    ghost = msgspec.structs.replace(body, starts=[(T0_NS, body.next_order_no + 1)])
    with pytest.raises(SnapshotError, match="does not hold"):
        restore(INS, reseal(ghost))


def test_the_module_exports_what_it_names() -> None:
    for name in snapshots.__all__:
        assert hasattr(snapshots, name), name
    # every slot of an order, hot or cold, is in ORDER_FIELDS, and so in snapshots (opened_ns is
    # kept relative, in opened_rel_ns)
    slots = {*Order.__slots__, *OrderCold.__slots__} - {"cold", "opened_rel_ns"} | {"opened_ns"}
    assert slots == set(ORDER_FIELDS)
    plain = set(ORDER_FIELDS) - {"fee_num"}
    assert set(snapshots.OrderRec.__struct_fields__) == plain | {"fee_num_units", "fee_num_rem"}
