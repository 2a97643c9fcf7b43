"""Recovery and verification: newest snapshot plus replay of the command log after it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from abyssal.adapters.store import Store
from abyssal.core.engine import Engine
from abyssal.core.instruments import Instruments
from abyssal.core.messages import command_decoder, events_encoder

REPLAY_PAGE_ROWS = 5_000


class ReplayMismatch(Exception):
    """Replaying the log produced different events or state: the log and engine disagree."""


@dataclass(slots=True)
class Recovered:
    engine: Engine
    next_seq: int
    last_snapshot_seq: int
    replayed: int


def recover(store: Store, instruments: Instruments) -> Recovered:
    """Restore the newest snapshot, then re-apply every later command, checking its events."""
    snap = store.latest_snapshot()
    if snap is None:
        engine, seq, snap_seq = Engine(instruments), 0, 0
    else:
        from abyssal.core import snapshot as snapshots

        snap_seq, stored_hash, blob = snap
        if hashlib.sha256(blob).hexdigest() != stored_hash:
            raise ReplayMismatch(f"snapshot at seq {snap_seq} does not match its recorded hash")
        engine, seq = snapshots.restore(instruments, blob), snap_seq
    seq, replayed = replay(store, engine, seq)
    return Recovered(engine, seq + 1, snap_seq, replayed)


def verify_from_genesis(store: Store, instruments: Instruments) -> tuple[int, str]:
    """Re-run the whole log from an empty engine; check every event and every snapshot hash.

    Returns (commands replayed, final state hash); raises ReplayMismatch on any difference.
    """
    from abyssal.core import snapshot as snapshots

    engine = Engine(instruments)
    snaps = {
        int(seq): str(h)
        for seq, h in store.conn().execute("SELECT seq, state_hash FROM snapshots").fetchall()
    }

    def check(at_seq: int) -> None:
        expected = snaps.get(at_seq)
        if expected is not None and snapshots.state_hash(engine) != expected:
            raise ReplayMismatch(f"state hash differs from the snapshot at seq {at_seq}")

    seq, _ = replay(store, engine, 0, check)
    return seq, snapshots.state_hash(engine)


def replay(
    store: Store, engine: Engine, seq: int, after_each: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Apply every logged command after ``seq``, comparing its events with the stored ones.

    Returns (last seq applied, commands applied); raises ReplayMismatch on a gap or a difference.
    """
    applied = 0
    while True:
        page = store.commands_after(seq, REPLAY_PAGE_ROWS)
        if not page:
            return seq, applied
        for row_seq, command_body, events_body in page:
            if row_seq != seq + 1:
                raise ReplayMismatch(f"command log has a gap before seq {row_seq}")
            events = engine.apply(command_decoder.decode(command_body))
            if events_encoder.encode(events) != events_body:
                raise ReplayMismatch(f"events differ at seq {row_seq}")
            seq = row_seq
            applied += 1
            if after_each is not None:
                after_each(seq)
