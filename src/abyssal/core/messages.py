"""Commands into the engine and events out of it: versioned, integer-only, msgpack-serialisable.

A command carries everything the engine needs, including the time (``ts_ns``), so that
replaying the command log yields byte-identical events. Events are keyed by the host as
(shard, seq, index); ``EVENT_SCHEMA_VERSION`` is stored with every batch.
"""

from __future__ import annotations

import enum

import msgspec

EVENT_SCHEMA_VERSION = 1
COMMAND_SCHEMA_VERSION = 1


class Side(enum.IntEnum):
    buy = 0
    sell = 1


class OrderType(enum.IntEnum):
    market = 0
    limit = 1
    iceberg = 2
    stop_loss = 3
    take_profit = 4
    stop_loss_limit = 5
    take_profit_limit = 6
    trailing_stop = 7
    trailing_stop_limit = 8

    @property
    def kraken(self) -> str:
        return self.name.replace("_", "-")


ORDER_TYPE_BY_NAME = {t.kraken: t for t in OrderType}
TRIGGERED_TYPES = frozenset(
    {
        OrderType.stop_loss,
        OrderType.take_profit,
        OrderType.stop_loss_limit,
        OrderType.take_profit_limit,
        OrderType.trailing_stop,
        OrderType.trailing_stop_limit,
    }
)


class TimeInForce(enum.IntEnum):
    gtc = 0
    ioc = 1
    gtd = 2


class Stp(enum.IntEnum):
    cancel_newest = 0
    cancel_oldest = 1
    cancel_both = 2


class PriceKind(enum.IntEnum):
    """How a price field was written: absolute, or relative to the last trade price."""

    abs = 0
    plus = 1  # last + offset
    minus = 2  # last - offset
    hash = 3  # + for buys' stops above / - below, per Kraken's '#'


# order flags (bit mask)
FLAG_POST = 1
FLAG_FCIB = 2
FLAG_FCIQ = 4
FLAG_NOMPP = 8
FLAG_VIQC = 16


class Mode(enum.IntEnum):
    online = 0
    cancel_only = 1
    post_only = 2
    limit_only = 3
    maintenance = 4


class OrderStatus(enum.IntEnum):
    pending = 0
    open = 1
    closed = 2
    canceled = 3
    expired = 4


class Reject(enum.IntEnum):
    """Business outcomes of a refused command; one table maps them to Kraken's strings."""

    unknown_pair = 1
    unknown_asset = 2
    unknown_order = 3
    insufficient_funds = 4
    volume_below_minimum = 5
    cost_below_minimum = 6
    invalid_price_precision = 7
    invalid_volume = 8
    invalid_price = 9
    tick_size = 10
    duplicate_cl_ord_id = 11
    market_cancel_only = 12
    market_post_only = 13
    market_limit_only = 14
    market_unavailable = 15
    invalid_arguments = 16
    orders_limit = 17
    invalid_amount = 18
    not_amendable = 19
    post_only_would_take = 20
    no_last_price = 21
    unknown_reference = 22  # a withdrawal post/void for a hold that is not pending
    duplicate_reference = 23  # a withdrawal hold whose reference is already pending


class CloseReason(enum.IntEnum):
    filled = 0
    user_requested = 1
    ioc_remainder = 2
    post_only = 3
    self_trade = 4
    expired = 5
    dead_mans_switch = 6
    market_protection = 7
    no_liquidity = 8
    insufficient_funds = 9
    amended_below_filled = 10
    replaced = 11


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------
class Command(msgspec.Struct, tag=True, array_like=True, frozen=True, gc=False):
    ts_ns: int


class PlaceOrder(Command, frozen=True, tag="place"):
    account: int
    pair: int
    side: int  # Side
    ordertype: int  # OrderType
    volume_lots: int  # with FLAG_VIQC: the quote amount in quote minor units
    price_kind: int = PriceKind.abs
    price_ticks: int = 0  # absolute price, or the offset in ticks
    price_pct_ppm: int = -1  # >= 0: the price (offset) is a percentage, in millionths of a percent
    price2_kind: int = PriceKind.abs
    price2_ticks: int = 0
    price2_pct_ppm: int = -1
    display_lots: int = 0  # iceberg visible quantity
    flags: int = 0
    tif: int = TimeInForce.gtc
    start_ns: int = 0
    expire_ns: int = 0
    userref: int = 0
    cl_ord_id: str = ""
    stp: int = Stp.cancel_newest
    validate: bool = False
    price_text: str = ""  # the prices as the client wrote them, for order descriptions
    price2_text: str = ""


class PlaceBatch(Command, frozen=True, tag="batch"):
    orders: list[PlaceOrder]


class CancelOrders(Command, frozen=True, tag="cancel"):
    """Cancel by order numbers, client order ids or userrefs: everything matching, atomically."""

    account: int
    order_nos: list[int] = []
    cl_ord_ids: list[str] = []
    userrefs: list[int] = []


class CancelAll(Command, frozen=True, tag="cancel_all"):
    account: int


class CancelAllAfter(Command, frozen=True, tag="dms"):
    account: int
    key_no: int
    timeout_s: int  # 0 disarms


class AmendOrder(Command, frozen=True, tag="amend"):
    account: int
    order_no: int = 0
    cl_ord_id: str = ""
    order_qty_lots: int = -1  # -1: unchanged
    display_lots: int = -1
    limit_price_ticks: int = -1
    trigger_price_ticks: int = -1
    post_only: bool = False


class EditOrder(Command, frozen=True, tag="edit"):
    """Cancel-replace: the new order gets a new number; unset fields keep the old values."""

    account: int
    order_no: int
    volume_lots: int = -1
    display_lots: int = -1
    price_ticks: int = -1
    price2_ticks: int = -1
    post_only: int = -1  # -1 unchanged, 0 clear, 1 set
    userref: int = -1
    validate: bool = False


class Deposit(Command, frozen=True, tag="deposit"):
    account: int
    asset: int
    amount_minor: int
    ref: str


class Withdraw(Command, frozen=True, tag="withdraw"):
    account: int
    asset: int
    amount_minor: int
    ref: str


class Tick(Command, frozen=True, tag="tick"):
    """Only advances time: fires expiries, scheduled starts and dead man's switches."""


class SetMode(Command, frozen=True, tag="mode"):
    pair: int  # -1: the whole system
    mode: int  # Mode


class WithdrawHold(Command, frozen=True, tag="withdraw_hold"):
    """A withdrawal as a pending transfer: move ``amount_minor`` from available to held."""

    account: int
    asset: int
    amount_minor: int
    ref: str  # the payment's refid: unique among pending holds


class WithdrawPost(Command, frozen=True, tag="withdraw_post"):
    """Complete a pending withdrawal: its hold leaves the account for the world."""

    account: int
    ref: str


class WithdrawVoid(Command, frozen=True, tag="withdraw_void"):
    """Fail or cancel a pending withdrawal: its hold returns to available."""

    account: int
    ref: str


AnyCommand = (
    PlaceOrder
    | PlaceBatch
    | CancelOrders
    | CancelAll
    | CancelAllAfter
    | AmendOrder
    | EditOrder
    | Deposit
    | Withdraw
    | Tick
    | SetMode
    | WithdrawHold
    | WithdrawPost
    | WithdrawVoid
)


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

command_encoder = msgspec.msgpack.Encoder()
command_decoder = msgspec.msgpack.Decoder(AnyCommand)
events_encoder = msgspec.msgpack.Encoder()
events_decoder = msgspec.msgpack.Decoder(list[AnyEvent])
