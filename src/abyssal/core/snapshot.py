"""Engine snapshots: the whole engine state as canonical msgpack, its restore, and its SHA-256 state hash."""

from __future__ import annotations

import hashlib

import msgspec

from abyssal.core.accounts import FEE_ACCOUNT, PRUNE_SLACK, Account
from abyssal.core.book import Book, BookSide, Level, Order
from abyssal.core.engine import Engine
from abyssal.core.instruments import PPM, Instruments
from abyssal.core.messages import Mode
from abyssal.core.snapshot_records import (
    BODY_DECODER,
    ENCODER,
    ENVELOPE_DECODER,
    FORMAT_VERSION,
    HEADER_DECODER,
    MAGIC,
    ORDER_PLAIN,
    AccountRec,
    Body,
    Envelope,
    LevelRec,
    OrderRec,
    PairRec,
    SnapshotError,
)
from abyssal.core.state import EngineState

__all__ = ["FORMAT_VERSION", "MAGIC", "SnapshotError", "restore", "snapshot", "state_hash"]


# Every field of the mutable state, and where it goes; the import-time checks below make a new slot
# in the engine fail loudly here instead of silently missing from snapshots.
STATE_STORED = frozenset(
    {"accounts", "amend_no", "books", "dms", "expiries", "fall", "last_price", "modes", "next_order_no"}
    | {"orders", "rise", "starts", "system_mode", "trade_no", "trailing", "withdrawals"}
)
STATE_DERIVED = frozenset({"instruments", "pairs", "supply", "usd_via"})  # rebuilt on restore
ACCOUNT_STORED = frozenset({"bal", "cl_ids", "cur_day", "number", "vol30", "vol_days", "vol_today"})
# the engine's order index, and the account's open orders in it (stored as their numbers) and
# their count per pair, and the fee tier last looked up (Account.tier_of)
ACCOUNT_DERIVED = frozenset(
    {"live", "open_nos", "open_per_pair", "stale_room", "tier", "tier_fees", "tier_high", "tier_low"}
)
BOOK_STORED = frozenset(
    {"orders", "price_ticks", "visible_lots", "is_bid", "levels", "prices", "asks", "bids"}
)
assert frozenset(EngineState.__slots__) == STATE_STORED | STATE_DERIVED, "EngineState changed"
assert frozenset(Account.__slots__) == ACCOUNT_STORED | ACCOUNT_DERIVED, "Account changed: update snapshots"
# Book.pair is the book's index in EngineState.books, so it is stored by position.
assert {*Level.__slots__, *BookSide.__slots__, *Book.__slots__} - {"pair"} == BOOK_STORED, "book changed"


def snapshot(engine: Engine) -> bytes:
    """The complete engine state as canonical bytes: equal states give equal bytes."""
    s = engine.s
    live = s.orders
    assert all(o.order_no == no for no, o in live.items()), "orders indexed under another number"
    body = Body(
        asset_ids=[a.id for a in s.instruments.assets],
        pair_ids=[p.id for p in s.pairs],
        next_order_no=s.next_order_no,
        amend_no=s.amend_no,
        system_mode=int(s.system_mode),
        accounts=[_account_rec(s.accounts[n]) for n in sorted(s.accounts)],
        orders=[_order_rec(live[n]) for n in sorted(live)],
        pairs=[_pair_rec(s, i) for i in range(len(s.pairs))],
        expiries=sorted({(t, n) for t, n in s.expiries if n in live and live[n].expire_ns == t}),
        starts=sorted({(t, n) for t, n in s.starts if n in live and live[n].start_ns == t}),
        dms=sorted((account, key_no, t) for (account, key_no), t in s.dms.items()),
        withdrawals=sorted((ref, a, asset, amt) for ref, (a, asset, amt) in s.withdrawals.items()),
    )
    for _, account, asset, amount in body.withdrawals:
        assert amount > 0, "a pending withdrawal of nothing"
        assert s.accounts[account].bal[asset].held >= amount, "a pending withdrawal beyond held"
    assert sum(len(a.open) for a in body.accounts) == len(body.orders), "an order outside open orders"
    queued = [n for p in body.pairs for level in (*p.bids, *p.asks) for n in level.queue]
    assert sorted(queued) == [r.order_no for r in body.orders if r.resting], "book and resting orders differ"
    try:
        raw = ENCODER.encode(body)
    except OverflowError as exc:  # the journal's 64-bit rule (instruments.UNITS_MAX) was broken upstream
        raise SnapshotError(f"engine state holds an integer beyond 64 bits: {exc}") from exc
    blob = ENCODER.encode(Envelope(MAGIC, FORMAT_VERSION, hashlib.sha256(raw).digest(), raw))
    assert len(blob) > len(raw)
    return blob


def state_hash(engine: Engine) -> str:
    """Hex SHA-256 of the snapshot: equal hashes mean equal engine state."""
    return hashlib.sha256(snapshot(engine)).hexdigest()


# OrderRec's fields in their order, which ``_order_rec`` passes them in (positional arguments
# build a record in half the time of keywords; a snapshot of 100,000 orders spends most of its
# time here): a field added, removed or moved fails this check instead of shifting the values
ORDER_REC_FIELDS = (
    "account", "cl_ord_id", "cost_raw", "display_lots", "expire_ns", "fee_num_units", "fee_num_rem",
    "fee_paid_minor", "filled_lots", "flags", "hold_minor", "is_buy", "limit_ticks", "opened_ns",
    "order_no", "ordertype", "pair", "paid_minor", "price2_ticks", "remaining_lots", "resting",
    "start_ns", "stop_ticks", "stp", "tif", "trail_offset", "trail_pct_ppm", "trail_ref_ticks",
    "triggered", "userref", "visible_lots", "volume_lots",
)  # fmt: skip
assert OrderRec.__struct_fields__ == ORDER_REC_FIELDS, "OrderRec's fields changed: update _order_rec"


def _order_rec(o: Order) -> OrderRec:
    assert o.fee_num >= 0, "fee numerators only grow from zero"
    units, rem = divmod(o.fee_num, PPM)
    return OrderRec(
        o.account, o.cl_ord_id, o.cost_raw, o.display_lots, o.expire_ns, units, rem,
        o.fee_paid_minor, o.filled_lots, o.flags, o.hold_minor, o.is_buy, o.limit_ticks, o.opened_ns,
        o.order_no, o.ordertype, o.pair, o.paid_minor, o.price2_ticks, o.remaining_lots, o.resting,
        o.start_ns, o.stop_ticks, o.stp, o.tif, o.trail_offset, o.trail_pct_ppm, o.trail_ref_ticks,
        o.triggered, o.userref, o.visible_lots, o.volume_lots,
    )  # fmt: skip


def _open_by_account(live: dict[int, Order], numbers: list[int]) -> dict[int, list[int]]:
    """Each account's live order numbers, ascending: what ``AccountRec.open`` must list."""
    out: dict[int, list[int]] = {}
    for no in numbers:
        account = live[no].account
        nos = out.get(account)
        if nos is None:
            out[account] = [no]
        else:
            nos.append(no)
    return out


def _open_per_pair(live: dict[int, Order], open_nos: list[int], pair_count: int) -> list[int]:
    """What ``Account.open_per_pair`` must hold; empty, as it is, when ``pair_count`` is 0."""
    counts = [0] * pair_count
    if counts:
        for no in open_nos:
            counts[live[no].pair] += 1
    return counts


def _account_rec(a: Account) -> AccountRec:
    open_nos = list(a.open)  # ascending: appended when accepted under the next number
    assert open_nos == sorted(open_nos), "an account's open orders out of order"
    counts = _open_per_pair(a.live, open_nos, len(a.open_per_pair))  # [] when nothing is counted
    assert a.open_per_pair == counts, "an account's open orders per pair drifted from its orders"
    return AccountRec(
        number=a.number,
        total=a.total,  # the properties build new lists
        held=a.held,
        open=open_nos,
        cl_ids=sorted(a.cl_ids.items()),
        vol_days=sorted(a.volume_days().items()),
        vol30=a.vol30,
        cur_day=a.cur_day,
    )


def _pair_rec(s: EngineState, i: int) -> PairRec:
    live = s.orders
    for no, o in s.trailing[i].items():
        assert live.get(no) is o and not o.triggered, "a trailing stop that is not waiting"
    # Stale heap entries (closed, triggered or re-priced stops) are skipped by _run_triggers; keep
    # only the live ones, once each: duplicates of a live entry trigger the same order only once.
    rise = {(t, n) for t, n in s.rise[i] if n in live and not live[n].triggered and live[n].stop_ticks == t}
    fall = {(t, n) for t, n in s.fall[i] if n in live and not live[n].triggered and live[n].stop_ticks == -t}
    return PairRec(
        last_price=s.last_price[i],
        trade_no=s.trade_no[i],
        mode=int(s.modes[i]),
        bids=_levels(s.books[i].bids, live),
        asks=_levels(s.books[i].asks, live),
        rise=sorted(rise),
        fall=sorted(fall),
        trailing=list(s.trailing[i]),
    )


def _levels(side: BookSide, live: dict[int, Order]) -> list[LevelRec]:
    assert len(side.levels) == len(side.prices), "level index and sorted prices disagree"
    out: list[LevelRec] = []
    for key in side.prices:
        level = side.levels[key if side.is_bid else -key]
        queue = [o for o in level.orders if o.resting]
        for o in queue:
            assert live.get(o.order_no) is o, "a closed order resting in the book"
            assert o.is_buy == side.is_bid and o.limit_ticks == level.price_ticks, "order in a wrong level"
        assert level.visible_lots == sum(o.visible_lots for o in queue), "level volume drifted"
        assert level.visible_lots > 0, "an empty level left in the book"
        out.append(LevelRec(level.price_ticks, [o.order_no for o in queue]))
    return out


# ---------------------------------------------------------------------- restore
def restore(instruments: Instruments, blob: bytes) -> Engine:
    """An engine whose every later ``apply`` gives the same events as the one snapshotted."""
    body = _decode(blob)
    markets = ([a.id for a in instruments.assets], [p.id for p in instruments.pairs])
    if (body.asset_ids, body.pair_ids) != markets:
        raise SnapshotError("snapshot was taken with other assets or pairs than these instruments")
    engine = Engine(instruments)
    s = engine.s
    s.next_order_no, s.amend_no = body.next_order_no, body.amend_no
    s.system_mode = _mode(body.system_mode)
    s.orders.update(_orders(body))  # the new engine's own index: its accounts share it
    open_nos = _open_by_account(s.orders, list(s.orders))
    s.accounts = {rec.number: _account(rec, s, open_nos.pop(rec.number, [])) for rec in body.accounts}
    if open_nos:
        raise SnapshotError("snapshot holds orders of an account it does not hold")
    if FEE_ACCOUNT not in s.accounts:
        raise SnapshotError("snapshot has no fee account")
    s.supply = [sum(a.bal[i].total for a in s.accounts.values()) for i in range(len(s.supply))]
    if len(body.pairs) != len(s.pairs):
        raise SnapshotError("snapshot has another number of pairs")
    for i, rec in enumerate(body.pairs):
        _restore_pair(s, i, rec)
    s.expiries = [_live(s, n, t) for t, n in body.expiries]
    s.starts = [_live(s, n, t) for t, n in body.starts]
    s.dms = {(account, key_no): t for account, key_no, t in body.dms}
    s.withdrawals = _withdrawals(s, body)
    queued = [o for book in s.books for side in (book.bids, book.asks) for o in side.orders_in_priority()]
    resting = [o for o in s.orders.values() if o.resting]
    if len({id(o) for o in queued}) != len(queued) or len(queued) != len(resting):
        raise SnapshotError("snapshot queues a resting order twice, or not at all")
    # The paired check on read: whatever was accepted must encode back to the very same bytes, which
    # also refuses unsorted, duplicated or stale entries without a check of its own for each.
    if snapshot(engine) != blob:
        raise SnapshotError("snapshot is not in canonical form")
    return engine


def _decode(blob: bytes) -> Body:
    try:
        header = HEADER_DECODER.decode(blob)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"not an engine snapshot: {exc}") from exc
    if header.magic != MAGIC:
        raise SnapshotError(f"not an engine snapshot (magic {header.magic[:40]!r})")
    if header.version != FORMAT_VERSION:
        raise SnapshotError(
            f"snapshot format version {header.version}; this build reads version {FORMAT_VERSION} only"
        )
    try:
        envelope = ENVELOPE_DECODER.decode(blob)
        if hashlib.sha256(envelope.body).digest() != envelope.digest:
            raise SnapshotError("snapshot is corrupt: its digest does not match its body")
        return BODY_DECODER.decode(envelope.body)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"snapshot is corrupt: {exc}") from exc


def _mode(value: int) -> int:
    if value not in set(Mode):
        raise SnapshotError(f"unknown market mode {value}")
    return value


def _orders(body: Body) -> dict[int, Order]:
    orders: dict[int, Order] = {}
    n_pairs = len(body.pair_ids)
    for rec in body.orders:
        if not 0 < rec.order_no < body.next_order_no or not 0 <= rec.pair < n_pairs:
            raise SnapshotError(f"order {rec.order_no} has an impossible number or pair")
        if rec.fee_num_units < 0 or not 0 <= rec.fee_num_rem < PPM:
            raise SnapshotError(f"order {rec.order_no} has a fee remainder out of range")
        o = Order(rec.order_no, rec.account, rec.pair, rec.is_buy, rec.ordertype, rec.volume_lots, 0)
        for name in ORDER_PLAIN:
            setattr(o, name, getattr(rec, name))
        o.fee_num = rec.fee_num_units * PPM + rec.fee_num_rem
        orders[o.order_no] = o
    return orders


def _order(s: EngineState, order_no: int) -> Order:
    o = s.orders.get(order_no)
    if o is None:
        raise SnapshotError(f"snapshot refers to order {order_no}, which it does not hold")
    return o


def _live(s: EngineState, order_no: int, t: int) -> tuple[int, int]:
    _order(s, order_no)
    return t, order_no


def _withdrawals(s: EngineState, body: Body) -> dict[str, tuple[int, int, int]]:
    pending: dict[str, tuple[int, int, int]] = {}
    held: dict[tuple[int, int], int] = {}
    for ref, account, asset, amount in body.withdrawals:
        acct = s.accounts.get(account)
        if acct is None or not 0 <= asset < len(acct.bal) or amount <= 0 or ref in pending:
            raise SnapshotError(f"pending withdrawal {ref!r} is impossible")
        held[(account, asset)] = held.get((account, asset), 0) + amount
        if held[(account, asset)] > acct.bal[asset].held:
            raise SnapshotError(f"pending withdrawals of account {account} exceed its held balance")
        pending[ref] = (account, asset, amount)
    return pending


def _account(rec: AccountRec, s: EngineState, open_nos: list[int]) -> Account:
    n_assets = len(s.instruments.assets)
    if len(rec.total) != n_assets or len(rec.held) != n_assets:
        raise SnapshotError(f"account {rec.number} has balances for another number of assets")
    counted = len(s.pairs) if s.instruments.open_orders_per_pair_max else 0
    a = Account(rec.number, n_assets, s.orders, counted)
    for b, total, held in zip(a.bal, rec.total, rec.held, strict=True):
        b.total, b.held = total, held
    if rec.open != open_nos:
        raise SnapshotError(f"account {rec.number} lists other open orders than the orders it holds")
    a.open_nos, a.stale_room = open_nos, len(open_nos) + PRUNE_SLACK
    a.open_per_pair = _open_per_pair(s.orders, open_nos, counted)
    for cl_ord_id, no in rec.cl_ids:
        o = a.owns(no)
        if o is None or o.cl_ord_id != cl_ord_id:
            raise SnapshotError(f"client order id {cl_ord_id!r} does not name an open order")
        a.cl_ids[cl_ord_id] = no
    a.set_volume_days(dict(rec.vol_days), rec.cur_day)
    a.vol30 = rec.vol30
    return a


def _restore_pair(s: EngineState, i: int, rec: PairRec) -> None:
    s.last_price[i], s.trade_no[i], s.modes[i] = rec.last_price, rec.trade_no, _mode(rec.mode)
    book = s.books[i]
    _restore_side(s, i, book.bids, rec.bids)
    _restore_side(s, i, book.asks, rec.asks)
    s.rise[i] = [_live(s, n, t) for t, n in rec.rise]
    s.fall[i] = [_live(s, n, t) for t, n in rec.fall]
    s.trailing[i] = {n: _order(s, n) for n in rec.trailing}
    if any(o.triggered for o in s.trailing[i].values()):
        raise SnapshotError(f"pair {i}: a trailing stop that has already triggered")


def _restore_side(s: EngineState, i: int, side: BookSide, recs: list[LevelRec]) -> None:
    for rec in recs:
        key = rec.price_ticks if side.is_bid else -rec.price_ticks
        if side.prices and key <= side.prices[-1]:
            raise SnapshotError(f"pair {i}: book levels out of price order")
        level = Level(rec.price_ticks)
        for no in rec.queue:
            o = _order(s, no)
            if o.pair != i or o.is_buy != side.is_bid or o.limit_ticks != rec.price_ticks or not o.resting:
                raise SnapshotError(f"order {no} is queued in a level it does not rest at")
            level.orders.append(o)
            level.visible_lots += o.visible_lots
        if level.visible_lots <= 0:
            raise SnapshotError(f"pair {i}: a level without visible volume at {rec.price_ticks}")
        side.levels[rec.price_ticks] = level
        side.prices.append(key)
    assert len(side.levels) == len(side.prices)
