"""The event log as the outbox of engine events: relays tail ``events`` behind a durable cursor.

Every command's events are committed once, in the batch transaction, as its ``events`` row: a
durable, ordered record of everything the engine did. The relay (runtime/outbox.py) publishes
them from there instead of from a second copy. Its position is one ``projection_offsets`` row,
``relay:events``: every event of the commands up to that seq has been published.

- A claim reads the rows after the cursor in seq order and **stops at the first gap in seq**
  (a seq is never skipped), decodes each with the decoder of its schema version, and returns at
  most ``limit`` messages (runtime/event_messages.py) with ids increasing in (seq, index).
- The cursor moves only past commands that are whole: a command with more messages than
  ``limit`` goes out over several claims, its position kept in memory. Commands without a
  message move the cursor too (a claim never returns [] with such commands ahead of it).
- Delivery is at least once: a relay that dies (or fails to publish) between claim and settle
  leaves the cursor where it was, and the events after it (including the first part of a
  command it was in the middle of) go out again. Consumers dedupe by event id.

``SerialEventClaims`` (SQLite, one relay per database) keeps its position in memory and writes
the cursor when it moves. ``CompetingEventClaims`` (PostgreSQL, any number of relays) takes the
cursor row ``FOR UPDATE SKIP LOCKED`` in a transaction on its own connection and holds it across
the publish, until a settle that leaves no command half sent commits the new cursor: relays take
turns, none sends an event another sent while both live, and the log goes out in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from abyssal.adapters.outbox_store import OutboxClaims, PgClaimsConnection
from abyssal.adapters.store import Store, is_postgres
from abyssal.ports import BusMessage, OutboxRow
from abyssal.runtime.event_messages import ENGINE_TOPICS, command_messages

EVENTS_CURSOR: Final = "relay:events"  # created by sqlite_schema migration 5 / postgres_schema 4
SCAN_ROWS = 256  # events rows (commands) read per query
AHEAD_COMMANDS_MAX = 4_096  # scanned commands held at most: a claim returns early past this
_INDEX_BITS = 32

Topics = Callable[[], frozenset[str]]  # the engine topics worth a message now
Scan = Callable[[int, int], list[Any]]  # (after seq, rows) -> [(seq, version, body)] in seq order


def message_id(seq: int, index: int) -> int:
    """The in-memory id of event ``index`` of command ``seq``: increases with (seq, index)."""
    assert 0 <= index < 1 << _INDEX_BITS
    return seq << _INDEX_BITS | index


class MissingCursor(RuntimeError):
    """The cursor row is gone: publishing from 0 or from the end would resend or lose events."""

    def __init__(self) -> None:
        super().__init__(f"projection_offsets has no {EVENTS_CURSOR!r} row (created by the migrations)")


@dataclass(slots=True)
class _Command:
    seq: int
    messages: list[tuple[int, BusMessage]]  # (index, message), publishable events only


class _Tail:
    """One relay's place in the event log (in memory).

    ``durable`` is the cursor as written; ``cursor`` may be ahead of it by commands known to be
    whole (not yet written); ``ahead`` holds the scanned commands after ``cursor``, contiguous,
    and ``sent`` how many messages of the first one are already settled.
    """

    def __init__(self, cursor: int, topics: Topics) -> None:
        self.topics = topics
        self.durable = cursor
        self.cursor = cursor
        self.ahead: deque[_Command] = deque()
        self.sent = 0
        self.scanned = cursor  # the last seq read into ``ahead``
        self.claimed: list[int] = []

    def take(self, limit: int, scan: Scan) -> list[OutboxRow]:
        assert limit > 0 and not self.claimed, "settle or release the previous batch first"
        out: list[OutboxRow] = []
        i, start = 0, self.sent
        while len(out) < limit:
            if i == len(self.ahead):
                if len(self.ahead) >= AHEAD_COMMANDS_MAX:
                    break
                try:
                    if not self._scan(scan):
                        break
                except Exception:  # a row this build cannot read: what is before it goes out first
                    if not out:
                        raise
                    break
                continue
            command = self.ahead[i]
            if not out and start >= len(command.messages):  # whole already (nothing to publish)
                self.ahead.popleft()
                self.cursor, self.sent, start = command.seq, 0, 0
                continue
            part = command.messages[start : start + limit - len(out)]
            out.extend(OutboxRow(message_id(command.seq, index), m) for index, m in part)
            i, start = i + 1, 0
        self.claimed = [r.id for r in out]
        return out

    def _scan(self, scan: Scan) -> bool:
        """Read the next commands into ``ahead``, up to the log's end or a gap; False: none."""
        added = False
        topics = self.topics()
        for seq, version, body in scan(self.scanned, SCAN_ROWS):
            if int(seq) != self.scanned + 1:  # a gap: never skipped, the claim stops before it
                break
            try:
                messages = command_messages(int(seq), int(version), bytes(body), topics)
            except Exception:  # unreadable (an unknown schema version): raised once it leads
                if added:
                    break
                raise
            self.ahead.append(_Command(int(seq), messages))
            self.scanned = int(seq)
            added = True
        return added

    def settling(self, ids: list[int]) -> tuple[int, int, int]:
        """After the claimed batch: (whole commands to drop, sent of the next one, new cursor)."""
        assert ids == self.claimed, "settle exactly the batch claimed"
        left, done, sent, cursor = len(ids), 0, self.sent, self.cursor
        while done < len(self.ahead):
            command = self.ahead[done]
            rest = len(command.messages) - sent
            if left < rest:
                break
            left -= rest
            done, sent, cursor = done + 1, 0, command.seq
        return done, sent + left, cursor

    def settled(self, done: int, sent: int, cursor: int) -> None:
        for _ in range(done):
            self.ahead.popleft()
        self.sent, self.cursor, self.claimed = sent, cursor, []
        self.durable = max(self.durable, cursor)


SCAN_SQL = "SELECT seq, version, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
CURSOR_SQL = "SELECT seq FROM projection_offsets WHERE name = ?"
# never backwards: while no engine topic has a reader, batches move the cursor themselves
WRITE_CURSOR_SQL = "UPDATE projection_offsets SET seq = MAX(seq, ?) WHERE name = ?"


class EventLogOutbox:
    """The event log as ``OutboxRelay`` sees a store: its claims, a backlog, nothing to purge."""

    def __init__(self, store: Store, audience: Callable[[], frozenset[str] | None] | None = None) -> None:
        """``audience``: the topics the bus has readers for, None when it cannot know (Kafka's
        readers are other processes): messages for the others are not built (the in-process bus
        would drop them); with none at all, claims return nothing and leave the cursor alone (the
        embedded exchange then moves it in each batch's transaction: ``Sequencer.follows``)."""
        self.store = store
        self.audience = audience

    def topics(self) -> frozenset[str]:
        readers = None if self.audience is None else self.audience()
        return ENGINE_TOPICS if readers is None else ENGINE_TOPICS & readers

    def outbox_claims(self) -> OutboxClaims:
        """Competing claims on PostgreSQL (any number of relays), serial ones on SQLite."""
        url = getattr(self.store, "url", None)
        if isinstance(url, str) and is_postgres(url):
            return CompetingEventClaims(url, self.topics)
        return SerialEventClaims(self.store, self.topics)

    def purge_published(self, before_ns: int, limit: int) -> int:
        return 0  # the event log is the system of record: published or not, it stays

    def outbox_backlog(self) -> int:
        """Commands after the cursor (with or without a message to publish)."""
        row = (
            self.store.conn()
            .execute(
                "SELECT COUNT(*) FROM events WHERE seq > (SELECT seq FROM projection_offsets WHERE name = ?)",
                (EVENTS_CURSOR,),
            )
            .fetchone()
        )
        return int(row[0])


class SerialEventClaims:
    """One relay per database: the position lives here, the cursor is written when it moves."""

    def __init__(self, store: Store, topics: Topics = lambda: ENGINE_TOPICS) -> None:
        self.store = store
        self.topics = topics
        self._tail: _Tail | None = None

    def _scan(self, after: int, rows: int) -> list[Any]:
        return self.store.conn().execute(SCAN_SQL, (after, rows)).fetchall()

    def _write(self, cursor: int) -> None:
        with self.store.transaction() as c:
            assert c.execute(WRITE_CURSOR_SQL, (cursor, EVENTS_CURSOR)).rowcount == 1

    def idle(self) -> bool:
        """Nothing to send, known without the database, so the relay skips its thread hop: no topic
        has a reader, and batches move the cursor themselves (Sequencer.follows)."""
        if self.topics():
            return False
        self._tail = None  # the cursor moves meanwhile: start from the stored one next time
        return True

    def claim(self, limit: int) -> list[OutboxRow]:
        if self.idle():
            return []
        try:
            if self._tail is None:
                row = self.store.conn().execute(CURSOR_SQL, (EVENTS_CURSOR,)).fetchone()
                if row is None:
                    raise MissingCursor()
                self._tail = _Tail(int(row[0]), self.topics)
            tail = self._tail
            rows = tail.take(limit, self._scan)
            if not rows and tail.cursor > tail.durable:  # passed commands without a message
                self._write(tail.cursor)
                tail.durable = tail.cursor
        except BaseException:
            self._tail = None
            raise
        return rows

    def settle(self, ids: list[int], now_ns: int) -> None:
        tail = self._tail
        assert tail is not None, "nothing claimed"
        done, sent, cursor = tail.settling(ids)
        if cursor > tail.durable:
            self._write(cursor)
        tail.settled(done, sent, cursor)

    def release(self) -> None:
        """Forget the position: the next claim starts again from the stored cursor."""
        self._tail = None

    def close(self) -> None:
        self._tail = None


PG_SCAN_SQL = SCAN_SQL.replace("?", "%s")
PG_LOCK_SQL = "SELECT seq FROM projection_offsets WHERE name = %s FOR UPDATE SKIP LOCKED"
PG_WRITE_CURSOR_SQL = "UPDATE projection_offsets SET seq = GREATEST(seq, %s) WHERE name = %s"


class CompetingEventClaims(PgClaimsConnection):
    """PostgreSQL: the cursor row is locked from a claim to the settle that leaves no command half
    sent (see module doc); calls must come one at a time (one relay owns this object)."""

    def __init__(self, url: str, topics: Topics = lambda: ENGINE_TOPICS) -> None:
        self.url = url
        self.topics = topics
        self._tail: _Tail | None = None
        self._locked = False  # a transaction holding the cursor row is open

    def _opened(self, raw: Any) -> None:
        if raw.execute(CURSOR_SQL.replace("?", "%s"), (EVENTS_CURSOR,)).fetchone() is None:
            raise MissingCursor()
        self._locked, self._tail = False, None

    def claim(self, limit: int) -> list[OutboxRow]:
        if not self.topics():  # nothing to send (batches move the cursor: Sequencer.follows)
            self.release()
            return []
        try:
            raw = self._conn()
            if not self._locked:
                row = raw.execute(PG_LOCK_SQL, (EVENTS_CURSOR,)).fetchone()
                if row is None:  # another relay holds the cursor
                    raw.rollback()
                    return []
                self._locked = True
                cursor = int(row[0])
                if self._tail is None or self._tail.durable != cursor:  # another relay moved it
                    self._tail = _Tail(cursor, self.topics)
            tail = self._tail
            assert tail is not None
            rows = tail.take(limit, lambda after, n: raw.execute(PG_SCAN_SQL, (after, n)).fetchall())
            if not rows:
                if tail.cursor > tail.durable:  # passed commands without a message
                    self._write(raw, tail.cursor)
                    tail.durable = tail.cursor
                raw.commit()
                self._locked = False
        except BaseException:
            self.release()
            raise
        return rows

    def _write(self, raw: Any, cursor: int) -> None:
        assert raw.execute(PG_WRITE_CURSOR_SQL, (cursor, EVENTS_CURSOR)).rowcount == 1

    def settle(self, ids: list[int], now_ns: int) -> None:
        tail = self._tail
        assert tail is not None and self._locked, "nothing claimed"
        done, sent, cursor = tail.settling(ids)
        try:
            raw = self._raw  # never a new connection here: the lock lives on this one
            if cursor > tail.durable:
                self._write(raw, cursor)
            if sent == 0:  # no command half sent: commit, and let the other relays have a turn
                raw.commit()
                self._locked = False
        except BaseException:
            self.release()
            raise
        tail.settled(done, sent, cursor)

    def release(self) -> None:
        """Roll back and forget the position: the stored cursor is where anyone starts again."""
        self._locked, self._tail = False, None
        self._rollback()
