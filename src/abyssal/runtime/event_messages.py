"""Engine events as bus messages: what the event-log relay publishes (adapters/event_log_outbox.py).

Orders, trades and ledger movements become one ``BusMessage`` each; events nobody outside needs
(rejections, timers, mode changes, validate-only acceptances) become none. The message of event
``index`` of command ``seq`` is a pure function of the stored event, so a relay that sends it
again after a crash sends the same bytes under the same id (``e-{seq}-{index}``), and consumers
dedupe by that id. The events row of a command is read back with the decoder of the schema
version it was stored with; a version this build has no decoder for stops the relay there
rather than being misread or skipped.
"""

from __future__ import annotations

import msgspec

from abyssal.core.messages import (
    EVENT_SCHEMA_VERSION,
    AnyEvent,
    Deposited,
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    OrderStarted,
    OrderTriggered,
    WithdrawHeld,
    Withdrawn,
    WithdrawPosted,
    WithdrawVoided,
    events_decoder,
)
from abyssal.ports import BusMessage

# schema version of an events row -> the decoder of its body (a msgpack list of events)
EVENTS_DECODERS: dict[int, msgspec.msgpack.Decoder[list[AnyEvent]]] = {EVENT_SCHEMA_VERSION: events_decoder}

_ORDER_EVENTS = (OrderAccepted, OrderClosed, OrderStarted, OrderTriggered, OrderAmended)
_LEDGER_EVENTS = (Deposited, Withdrawn, WithdrawHeld, WithdrawPosted, WithdrawVoided)
_json = msgspec.json.Encoder()


# every topic engine events go to; a relay told that none of them has a reader decodes nothing
ENGINE_TOPICS: frozenset[str] = frozenset({"trades", "orders", "ledger"})


def _route(event: Event) -> tuple[str, str] | None:
    """(topic, aggregate) of an engine event, or None for events nobody outside needs."""
    if isinstance(event, Fill):
        return "trades", f"pair:{event.pair}"
    if isinstance(event, _ORDER_EVENTS):
        if isinstance(event, OrderAccepted) and event.validate_only:
            return None
        return "orders", f"account:{event.account}"
    if isinstance(event, _LEDGER_EVENTS):
        return "ledger", f"account:{event.account}"
    return None


def _message(
    seq: int, index: int, event: Event, topic: str, aggregate: str, schema_version: int
) -> BusMessage:
    event_type = type(event).__struct_config__.tag
    assert isinstance(event_type, str)
    body = b'{"seq":%d,"index":%d,"event":%s}' % (seq, index, _json.encode(event))
    return BusMessage(topic, aggregate, f"e-{seq}-{index}", event_type, schema_version, body, "")


def event_message(
    seq: int, index: int, event: Event, schema_version: int = EVENT_SCHEMA_VERSION
) -> BusMessage | None:
    """The bus message of one engine event, or None for events nobody outside needs."""
    route = _route(event)
    return None if route is None else _message(seq, index, event, *route, schema_version)


def decode_events(schema_version: int, body: bytes) -> list[Event]:
    """The events of one stored events row; an unknown schema version raises (never misread)."""
    decoder = EVENTS_DECODERS.get(schema_version)
    if decoder is None:
        raise ValueError(f"no decoder for events schema version {schema_version}")
    return list(decoder.decode(body))


def command_messages(
    seq: int, schema_version: int, body: bytes, topics: frozenset[str] = ENGINE_TOPICS
) -> list[tuple[int, BusMessage]]:
    """(index, message) of every publishable event of one stored events row, in index order,
    for the given topics only (a message for a topic nobody reads would be dropped by the bus
    anyway)."""
    if not topics:
        return []
    out: list[tuple[int, BusMessage]] = []
    for index, event in enumerate(decode_events(schema_version, body)):
        route = _route(event)
        if route is not None and route[0] in topics:
            out.append((index, _message(seq, index, event, *route, schema_version)))
    return out
