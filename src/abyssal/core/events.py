"""Events out of the engine: what happened, integer-only, versioned (EVENT_SCHEMA_VERSION)."""

from __future__ import annotations

import msgspec

EVENT_SCHEMA_VERSION = 1


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------
class Event(msgspec.Struct, tag=True, array_like=True, frozen=True, gc=False):
    pass


class Rejected(Event, frozen=True, tag="rejected"):
    account: int
    reason: int  # Reject
    detail: str = ""
    batch_index: int = -1  # position inside a PlaceBatch, else -1


class OrderAccepted(Event, frozen=True, tag="accepted"):
    order_no: int
    account: int
    pair: int
    side: int
    ordertype: int
    volume_lots: int
    price_ticks: int  # limit price (0 for market)
    stop_ticks: int  # trigger price (0 when not triggered)
    price2_ticks: int
    display_lots: int
    flags: int
    tif: int
    start_ns: int
    expire_ns: int
    userref: int
    cl_ord_id: str
    status: int  # OrderStatus: pending or open
    hold_asset: int
    hold_minor: int
    ts_ns: int
    price_text: str
    price2_text: str
    validate_only: bool = False
    batch_index: int = -1


class OrderTriggered(Event, frozen=True, tag="triggered"):
    order_no: int
    account: int
    price_ticks: int  # last trade price that triggered it
    limit_ticks: int  # resulting limit (0 for market)
    ts_ns: int


class OrderStarted(Event, frozen=True, tag="started"):
    order_no: int
    account: int
    ts_ns: int


class OrderAmended(Event, frozen=True, tag="amended"):
    order_no: int
    account: int
    amend_no: int
    volume_lots: int
    display_lots: int
    price_ticks: int
    stop_ticks: int
    hold_delta_minor: int  # > 0 more held, < 0 released
    hold_asset: int
    ts_ns: int
    pair: int = -1


class Fill(Event, frozen=True, tag="fill"):
    """One trade between a taker and a resting maker, with every amount that moves."""

    trade_no: int  # per pair, from 1
    pair: int
    price_ticks: int
    volume_lots: int
    taker_side: int
    taker_order: int
    taker_account: int
    maker_order: int
    maker_account: int
    taker_market: bool  # taker was a market order ('m' on the public tape)
    cost_raw: int  # price_ticks * volume_lots
    buyer_pays_minor: int  # quote leaving the buyer (from its hold), excluding fees
    seller_gets_minor: int  # quote credited to the seller before fees
    base_minor: int  # base leaving the seller, before fees
    rounding_minor: int  # buyer_pays - seller_gets: to the fee account
    taker_fee_asset: int
    taker_fee_minor: int
    maker_fee_asset: int
    maker_fee_minor: int
    taker_fee_from_hold: bool  # the fee came from the taker's hold (True) or its proceeds (False)
    maker_fee_from_hold: bool
    ts_ns: int


class OrderClosed(Event, frozen=True, tag="closed"):
    order_no: int
    account: int
    status: int  # OrderStatus: closed, canceled or expired
    reason: int  # CloseReason
    filled_lots: int
    released_minor: int  # hold returned to available
    hold_asset: int
    ts_ns: int
    pair: int = -1
    limit_ticks: int = 0  # where it rested (0: it never rested)


class Deposited(Event, frozen=True, tag="deposited"):
    account: int
    asset: int
    amount_minor: int
    ref: str
    ts_ns: int


class Withdrawn(Event, frozen=True, tag="withdrawn"):
    account: int
    asset: int
    amount_minor: int
    ref: str
    ts_ns: int


class TimerArmed(Event, frozen=True, tag="timer"):
    account: int
    key_no: int
    trigger_ns: int  # 0: disarmed
    ts_ns: int


class ModeChanged(Event, frozen=True, tag="mode_changed"):
    pair: int
    mode: int
    ts_ns: int


class CancelCount(Event, frozen=True, tag="cancel_count"):
    """The answer to a cancel command: how many orders it closed."""

    account: int
    count: int


class WithdrawHeld(Event, frozen=True, tag="withdraw_held"):
    account: int
    asset: int
    amount_minor: int
    ref: str
    ts_ns: int


class WithdrawPosted(Event, frozen=True, tag="withdraw_posted"):
    account: int
    asset: int
    amount_minor: int
    ref: str
    ts_ns: int


class WithdrawVoided(Event, frozen=True, tag="withdraw_voided"):
    account: int
    asset: int
    amount_minor: int
    ref: str
    ts_ns: int


AnyEvent = (
    Rejected
    | OrderAccepted
    | OrderTriggered
    | OrderStarted
    | OrderAmended
    | Fill
    | OrderClosed
    | Deposited
    | Withdrawn
    | TimerArmed
    | ModeChanged
    | CancelCount
    | WithdrawHeld
    | WithdrawPosted
    | WithdrawVoided
)


events_encoder = msgspec.msgpack.Encoder()
events_decoder = msgspec.msgpack.Decoder(list[AnyEvent])
