"""What travels on the two logs of a shard, and the topic names.

The command topic (``abyssal.<shard>.commands``, one partition) holds commands exactly as the
gateways sent them; its offsets are the shard's sequence: the command at offset ``o`` is
``seq = o + 1``. An engine stamps the time deterministically (``max(ts_ns, last + 1)``), so
every replica that applies the topic in order reaches the same state and the same events.

The event topic (``abyssal.<shard>.events``, one partition) holds one ``LogRecord`` per
sequence number: the stamped command, its events and the request id that lets the gateway
which sent it answer its client. A sequence number may appear twice after a failover (the old
leader's last records and the new leader's); the two are identical, and every reader skips a
seq it has already seen.
"""

from __future__ import annotations

from typing import Final

import msgspec

COMMAND_PARTITION: Final = 0
EVENT_PARTITION: Final = 0
HEADER_REQUEST: Final = "rid"
HEADER_TRACE: Final = "trace_id"
HEADER_EPOCH: Final = "epoch"


def commands_topic(shard: int) -> str:
    return f"abyssal.{shard}.commands"


def events_topic(shard: int) -> str:
    return f"abyssal.{shard}.events"


class LogRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One applied command: ``command`` is its msgpack with the stamped time, ``events`` the
    encoded event list (``core.messages.events_encoder``), byte for byte what the embedded
    sequencer stores for the same seq."""

    seq: int
    rid: str  # "<gateway>:<n>"; empty for commands no client waits for (ticks)
    command: bytes
    events: bytes


record_encoder: Final = msgspec.msgpack.Encoder()
record_decoder: Final = msgspec.msgpack.Decoder(LogRecord)


def seq_of_offset(offset: int) -> int:
    return offset + 1


def offset_of_seq(seq: int) -> int:
    return seq - 1
