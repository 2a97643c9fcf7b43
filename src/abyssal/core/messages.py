"""Commands into the engine, with the enums both directions share: versioned, integer-only.

A command carries everything the engine needs, including the time (``ts_ns``), so that
replaying the command log yields byte-identical events. Events are keyed by the host as
(shard, seq, index); ``EVENT_SCHEMA_VERSION`` is stored with every batch.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

# events live in core/events.py; re-exported so that one import serves both directions
from abyssal.core.events import (
    EVENT_SCHEMA_VERSION as EVENT_SCHEMA_VERSION,
)
from abyssal.core.events import (
    AnyEvent as AnyEvent,
)
from abyssal.core.events import (
    CancelCount as CancelCount,
)
from abyssal.core.events import (
    Deposited as Deposited,
)
from abyssal.core.events import (
    Event as Event,
)
from abyssal.core.events import (
    Fill as Fill,
)
from abyssal.core.events import (
    ModeChanged as ModeChanged,
)
from abyssal.core.events import (
    OrderAccepted as OrderAccepted,
)
from abyssal.core.events import (
    OrderAmended as OrderAmended,
)
from abyssal.core.events import (
    OrderClosed as OrderClosed,
)
from abyssal.core.events import (
    OrderStarted as OrderStarted,
)
from abyssal.core.events import (
    OrderTriggered as OrderTriggered,
)
from abyssal.core.events import (
    Rejected as Rejected,
)
from abyssal.core.events import (
    TimerArmed as TimerArmed,
)
from abyssal.core.events import (
    WithdrawHeld as WithdrawHeld,
)
from abyssal.core.events import (
    Withdrawn as Withdrawn,
)
from abyssal.core.events import (
    WithdrawPosted as WithdrawPosted,
)
from abyssal.core.events import (
    WithdrawVoided as WithdrawVoided,
)
from abyssal.core.events import (
    events_decoder as events_decoder,
)
from abyssal.core.events import (
    events_encoder as events_encoder,
)

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
FLAG_POST: Final = 1
FLAG_FCIB: Final = 2
FLAG_FCIQ: Final = 4
FLAG_NOMPP: Final = 8
FLAG_VIQC: Final = 16


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
    mode_refused = 12  # a scheduled order came due while the market's mode refused it


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
    limit_price_ticks: int = -1  # the new price, or with a relative kind the offset in ticks
    trigger_price_ticks: int = -1
    post_only: bool = False
    # relative prices (after the fields above, so older logged amends still decode): how
    # ``limit_price_ticks`` / ``trigger_price_ticks`` are read, as PlaceOrder's ``price_kind``
    # and ``price_pct_ppm``; the engine resolves them against the last trade
    limit_price_kind: int = PriceKind.abs
    limit_price_pct_ppm: int = -1
    trigger_price_kind: int = PriceKind.abs
    trigger_price_pct_ppm: int = -1


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


command_encoder = msgspec.msgpack.Encoder()
command_decoder = msgspec.msgpack.Decoder(AnyCommand)
