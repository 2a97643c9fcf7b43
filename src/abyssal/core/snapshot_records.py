"""The records of an engine snapshot: msgspec structs, array-like and strict, one per kind of state."""

from __future__ import annotations

import msgspec

from abyssal.core.book import ORDER_FIELDS

MAGIC = "abyssal.engine.snapshot"
FORMAT_VERSION = 1


class SnapshotError(ValueError):
    """A blob that cannot be restored: not a snapshot, corrupt, another format version, other markets."""


class _Rec(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    pass


class OrderRec(_Rec, frozen=True):
    """Every slot of ``Order``; ``fee_num`` (fee rate times cost, beyond 64 bits) split at PPM."""

    account: int
    cl_ord_id: str
    cost_raw: int
    display_lots: int
    expire_ns: int
    fee_num_units: int  # fee_num // PPM
    fee_num_rem: int  # fee_num % PPM
    fee_paid_minor: int
    filled_lots: int
    flags: int
    hold_minor: int
    is_buy: bool
    limit_ticks: int
    opened_ns: int
    order_no: int
    ordertype: int
    pair: int
    paid_minor: int
    price2_ticks: int
    remaining_lots: int
    resting: bool
    start_ns: int
    stop_ticks: int
    stp: int
    tif: int
    trail_offset: int
    trail_pct_ppm: int
    trail_ref_ticks: int
    triggered: bool
    userref: int
    visible_lots: int
    volume_lots: int


ORDER_PLAIN = tuple(name for name in ORDER_FIELDS if name != "fee_num")
assert set(OrderRec.__struct_fields__) == {*ORDER_PLAIN, "fee_num_units", "fee_num_rem"}, "Order changed"


class LevelRec(_Rec, frozen=True):
    """One price level: its resting orders in queue order (its visible volume is their sum).

    Tombstones (entries of closed orders that the deque drops lazily) are left out: matching,
    unlink and depth skip them, and amend removes a re-priced order's old entry, so they are inert.
    """

    price_ticks: int
    queue: list[int]  # order numbers, first in priority first


class PairRec(_Rec, frozen=True):
    last_price: int
    trade_no: int
    mode: int
    bids: list[LevelRec]  # in BookSide.prices order: worst price first, best last
    asks: list[LevelRec]
    rise: list[tuple[int, int]]  # live (stop_ticks, order_no), sorted: a sorted list is a heap
    fall: list[tuple[int, int]]  # live (-stop_ticks, order_no), sorted
    trailing: list[int]  # order numbers in the dict's insertion order


class AccountRec(_Rec, frozen=True):
    number: int
    total: list[int]
    held: list[int]
    open: list[int]  # order numbers in the dict's insertion order
    cl_ids: list[tuple[str, int]]  # sorted
    vol_days: list[tuple[int, int]]  # sorted
    vol30: int
    cur_day: int


class Body(_Rec, frozen=True, omit_defaults=True):
    asset_ids: list[str]
    pair_ids: list[str]
    next_order_no: int
    amend_no: int
    system_mode: int
    accounts: list[AccountRec]  # by number
    orders: list[OrderRec]  # by order number
    pairs: list[PairRec]  # by pair index
    expiries: list[tuple[int, int]]  # live (expire_ns, order_no), sorted
    starts: list[tuple[int, int]]  # live (start_ns, order_no), sorted
    dms: list[tuple[int, int, int]]  # (account, key_no, trigger_ns), sorted
    # pending withdrawal holds (ref, account, asset, amount_minor), sorted; omitted when empty, so
    # snapshots written before withdrawals were holds stay canonical and readable
    withdrawals: list[tuple[str, int, int, int]] = []


class Header(msgspec.Struct, array_like=True, frozen=True):
    """The part every format version keeps, so that any version can be recognised and refused."""

    magic: str
    version: int


class Envelope(Header, frozen=True, forbid_unknown_fields=True):
    digest: bytes  # SHA-256 of body: a flipped bit anywhere is refused, not restored
    body: bytes


ENCODER = msgspec.msgpack.Encoder()
HEADER_DECODER = msgspec.msgpack.Decoder(Header)
ENVELOPE_DECODER = msgspec.msgpack.Decoder(Envelope)
BODY_DECODER = msgspec.msgpack.Decoder(Body)
