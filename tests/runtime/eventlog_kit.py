"""Test kit for the event-log relay (adapters/event_log_outbox.py), shared by SQLite and PostgreSQL.

``old_outbox_row`` is the projector's ``outbox_row`` as it was when engine events were copied
into the ``outbox`` table: the reference the new messages must equal, field for field and byte
for byte (the bus got ``outbox_store._row`` of that row). The command stream comes from a real
engine: deposits, resting and crossing orders, sweeps that make one command with dozens of
events, validate-only orders and refusals (no message), ticks (no event at all).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from abyssal.adapters.event_log_outbox import EVENTS_CURSOR
from abyssal.adapters.sqlite import BatchRecord
from abyssal.adapters.store import Store
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    COMMAND_SCHEMA_VERSION,
    EVENT_SCHEMA_VERSION,
    Command,
    Deposit,
    Deposited,
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    OrderStarted,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    Side,
    Tick,
    WithdrawHeld,
    Withdrawn,
    WithdrawPosted,
    WithdrawVoided,
    command_encoder,
    events_encoder,
)
from abyssal.ports import BusMessage
from abyssal.runtime.projector import Rows

INSTRUMENTS = load_config(None).instruments
PAIR = INSTRUMENTS.pair("XBTUSD")
assert PAIR is not None
MID = 300_000

# -- the reference: the old projector.outbox_row, verbatim ----------------------------------------
_ORDER_EVENTS = (OrderAccepted, OrderClosed, OrderStarted, OrderTriggered, OrderAmended)
_LEDGER_EVENTS = (Deposited, Withdrawn, WithdrawHeld, WithdrawPosted, WithdrawVoided)
_json = msgspec.json.Encoder()


def old_outbox_row(
    seq: int, index: int, event: Event
) -> tuple[str, str, str, str, int, bytes, str, int] | None:
    """The outbox row of one engine event, or None for events nobody outside needs (rejections)."""
    if isinstance(event, Fill):
        topic, aggregate = "trades", f"pair:{event.pair}"
    elif isinstance(event, _ORDER_EVENTS):
        if isinstance(event, OrderAccepted) and event.validate_only:
            return None
        topic, aggregate = "orders", f"account:{event.account}"
    elif isinstance(event, _LEDGER_EVENTS):
        topic, aggregate = "ledger", f"account:{event.account}"
    else:
        return None
    event_type = type(event).__struct_config__.tag
    assert isinstance(event_type, str)
    body = b'{"seq":%d,"index":%d,"event":%s}' % (seq, index, _json.encode(event))
    ts_ns = int(getattr(event, "ts_ns", 0))
    return (f"e-{seq}-{index}", topic, aggregate, event_type, EVENT_SCHEMA_VERSION, body, "", ts_ns)


def bus_message_of(row: tuple[str, str, str, str, int, bytes, str, int]) -> BusMessage:
    """What ``outbox_store._row`` made of such a row (columns: topic, aggregate, event_id, ...)."""
    event_id, topic, aggregate, event_type, version, payload, trace_id, _ = row
    return BusMessage(topic, aggregate, event_id, event_type, version, payload, trace_id)


def expected_messages(stream: list[tuple[int, Command, list[Event]]]) -> list[BusMessage]:
    out = []
    for seq, _, events in stream:
        for index, event in enumerate(events):
            row = old_outbox_row(seq, index, event)
            if row is not None:
                out.append(bus_message_of(row))
    return out


# -- a command stream from a real engine ----------------------------------------------------------
class Stream:
    def __init__(self, seed: int) -> None:
        self.engine = Engine(INSTRUMENTS)
        self.rng = random.Random(seed)
        self.seq = 0
        self.ts = 1_700_000_000 * 10**9

    def apply(self, command: Command) -> tuple[int, Command, list[Event]]:
        self.seq += 1
        return self.seq, command, self.engine.apply(command)

    def _order(self, account: int, side: Side, **kw: Any) -> PlaceOrder:
        self.ts += 1_000
        fields: dict[str, Any] = {"ordertype": OrderType.limit, "volume_lots": 10**6, "price_ticks": MID}
        fields.update(kw)
        return PlaceOrder(ts_ns=self.ts, account=account, pair=PAIR.index, side=side, **fields)

    def funded(self) -> list[tuple[int, Command, list[Event]]]:
        return [
            self.apply(Deposit(ts_ns=1, account=a, asset=i, amount_minor=10**15, ref=f"d{a}-{i}"))
            for a in (1, 2)
            for i in (PAIR.base.index, PAIR.quote.index)
        ]

    def big(self, makers: int) -> list[tuple[int, Command, list[Event]]]:
        """``makers`` resting asks, then one buy sweeping them all: 2 * makers + 2 events or so."""
        out = [
            self.apply(self._order(2, Side.sell, price_ticks=MID + k, volume_lots=10**5))
            for k in range(makers)
        ]
        out.append(
            self.apply(self._order(1, Side.buy, ordertype=OrderType.market, volume_lots=makers * 10**5))
        )
        return out

    def resting(self) -> tuple[int, Command, list[Event]]:
        """An ask far from the bids: one OrderAccepted, one message."""
        return self.apply(self._order(2, Side.sell, price_ticks=MID + 1_000, volume_lots=10**5))

    def unpublishable(self) -> tuple[int, Command, list[Event]]:
        """A command whose events produce no message: a validate-only order, a refusal, a tick."""
        kind = self.rng.randrange(3)
        self.ts += 1_000
        if kind == 0:
            return self.apply(self._order(1, Side.buy, validate=True))
        if kind == 1:
            return self.apply(self._order(7, Side.buy))  # account 7 has no funds: Rejected
        return self.apply(Tick(ts_ns=self.ts))

    def random(self, n: int) -> list[tuple[int, Command, list[Event]]]:
        out = []
        for _ in range(n):
            roll = self.rng.random()
            if roll < 0.2:
                out.append(self.unpublishable())
            elif roll < 0.25:
                out.extend(self.big(self.rng.randint(3, 12)))
            else:
                side = self.rng.choice((Side.buy, Side.sell))
                out.append(self.apply(self._order(1 if side == Side.buy else 2, side,
                                                  price_ticks=MID + self.rng.randint(-20, 20),
                                                  volume_lots=self.rng.randint(10**4, 10**6))))  # fmt: skip
        return out


def write(store: Store, stream: list[tuple[int, Command, list[Event]]]) -> None:
    """One committed batch: the commands and events rows (the relay needs nothing else)."""
    commands = [(seq, 1, COMMAND_SCHEMA_VERSION, command_encoder.encode(c)) for seq, c, _ in stream]
    events = [(seq, EVENT_SCHEMA_VERSION, events_encoder.encode(e)) for seq, _, e in stream]
    store.write_batch(BatchRecord(stream[0][0], commands, events, Rows()))


def write_in_batches(
    store: Store, stream: list[tuple[int, Command, list[Event]]], rng: random.Random
) -> None:
    at = 0
    while at < len(stream):
        size = rng.randint(1, 20)
        write(store, stream[at : at + size])
        at += size


def cursor(store: Store) -> int:
    row = (
        store.conn().execute("SELECT seq FROM projection_offsets WHERE name = ?", (EVENTS_CURSOR,)).fetchone()
    )
    return int(row[0])


class Recorder:
    """A Publisher that keeps every message it acknowledged, in order; can fail on demand."""

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []
        self.fail_next = False

    async def publish(self, messages: list[BusMessage]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("bus down")
        await asyncio.sleep(0)
        self.messages.extend(messages)

    async def close(self) -> None:
        return None


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    """``blocking`` for tests that need no thread pool."""
    return fn(*args)


def chunks(messages: list[BusMessage], size: int) -> Iterator[list[BusMessage]]:
    for at in range(0, len(messages), size):
        yield messages[at : at + size]
