"""The outbox table: written last in each producer's transaction, read and marked by relays.

Two ways to claim rows, one per deployment:

- ``SerialClaims`` (SQLite, or one relay per database): read ``WHERE published_ns IS NULL ORDER
  BY id``, publish, then mark in a second transaction. No watermark, so a late commit is never
  skipped.
- ``CompetingClaims`` (PostgreSQL, several relay processes on one database): one transaction
  per batch on the relay's own connection. It locks the *head* row of each aggregate (the oldest
  unpublished row of that key) ``FOR UPDATE SKIP LOCKED``, takes the rest of those aggregates'
  unpublished rows behind them, publishes, marks and commits. A row that is not its aggregate's
  head is never claimed, and a head is claimable only once every earlier row of its aggregate
  committed as published, so two relays never interleave one aggregate (ledger-notes D7) and
  rows of one aggregate reach the bus in id order. A relay that dies between publish and
  commit leaves its rows unpublished: another relay sends them again (at least once; consumers
  dedupe by event id, ledger-notes 4.2 and D3).
"""

from __future__ import annotations

from typing import Any, Protocol

from abyssal.adapters.store import DbConnection, Store, is_postgres
from abyssal.ports import BusMessage, OutboxEvent, OutboxRow

_ROW_COLUMNS = "id, topic, aggregate, event_id, event_type, schema_version, payload, trace_id"
HEADS_SQL = (
    "SELECT o.id, o.aggregate FROM outbox o WHERE o.published_ns IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM outbox p WHERE p.published_ns IS NULL AND p.aggregate = o.aggregate AND p.id < o.id) "
    "ORDER BY o.id LIMIT %s FOR UPDATE SKIP LOCKED"
)
FOLLOWERS_SQL = (
    f"SELECT {_ROW_COLUMNS} FROM outbox WHERE published_ns IS NULL AND aggregate = ANY(%s) "
    "ORDER BY id LIMIT %s"
)


def write_event(c: DbConnection, e: OutboxEvent, now_ns: int) -> None:
    """The outbox row of a state change, in the caller's transaction (always its last statement)."""
    c.execute(
        "INSERT INTO outbox (event_id, topic, aggregate, event_type, schema_version, payload, trace_id, "
        "created_ns) VALUES (?,?,?,?,?,?,?,?)",
        (e.event_id, e.topic, e.aggregate, e.event_type, e.schema_version, e.payload, e.trace_id, now_ns),
    )


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        int(r[0]), BusMessage(str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), bytes(r[6]), str(r[7]))
    )


class OutboxClaims(Protocol):
    """What a relay needs: claim a batch, then settle (mark published) or release it."""

    def claim(self, limit: int) -> list[OutboxRow]: ...

    def settle(self, ids: list[int], now_ns: int) -> None: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class OutboxTable:
    """The outbox part of SqlitePaymentStore (a mixin: ``store`` is set by the store)."""

    store: Store

    def unpublished(self, limit: int) -> list[OutboxRow]:
        rows = (
            self.store.conn()
            .execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE published_ns IS NULL ORDER BY id LIMIT ?", (limit,)
            )
            .fetchall()
        )
        return [_row(r) for r in rows]

    def mark_published(self, ids: list[int], now_ns: int) -> None:
        with self.store.transaction() as c:
            c.executemany("UPDATE outbox SET published_ns = ? WHERE id = ?", [(now_ns, i) for i in ids])

    def purge_published(self, before_ns: int, limit: int) -> int:
        with self.store.transaction() as c:
            cur = c.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_ns IS NOT NULL "
                "AND published_ns < ? LIMIT ?)",
                (before_ns, limit),
            )
            return int(cur.rowcount)

    def outbox_backlog(self) -> int:
        return int(
            self.store.conn().execute("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL").fetchone()[0]
        )

    def outbox_claims(self) -> OutboxClaims:
        """Competing claims on PostgreSQL (any number of relays), serial ones on SQLite."""
        url = getattr(self.store, "url", None)
        if isinstance(url, str) and is_postgres(url):
            return CompetingClaims(url)
        return SerialClaims(self)


class SerialClaims:
    """One relay per database: read, publish, mark (two short transactions)."""

    def __init__(self, table: OutboxTable) -> None:
        self.table = table

    def claim(self, limit: int) -> list[OutboxRow]:
        return self.table.unpublished(limit)

    def settle(self, ids: list[int], now_ns: int) -> None:
        self.table.mark_published(ids, now_ns)

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class PgClaimsConnection:
    """A relay's own PostgreSQL connection, for claims whose transaction stays open across the
    publish (bounded by the bus's ack timeout and the connection's statement timeout)."""

    url: str
    _raw: Any = None

    def _conn(self) -> Any:
        from abyssal.adapters.postgres import connect

        if self._raw is None or self._raw.closed or self._raw.broken:
            if self._raw is not None:
                self._raw.close()
            self._raw = None
            raw = connect(self.url)
            try:
                self._opened(raw)
            except BaseException:  # never kept: a later call would get it still in autocommit
                raw.close()
                raise
            raw.autocommit = False
            self._raw = raw
        return self._raw

    def _opened(self, raw: Any) -> None:
        """A new connection (still in autocommit): nothing of the old one's transaction is left."""

    def _rollback(self) -> None:
        if self._raw is not None and not self._raw.closed:
            try:
                self._raw.rollback()
            except Exception:  # a broken connection rolled back on the server already
                self._raw.close()

    def release(self) -> None:
        self._rollback()

    def close(self) -> None:
        self.release()
        if self._raw is not None:
            self._raw.close()
            self._raw = None


class CompetingClaims(PgClaimsConnection):
    """PostgreSQL: a batch is one transaction on this relay's own connection (see module doc);
    calls must come one at a time (one relay owns this object)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._open = False

    def _opened(self, raw: Any) -> None:
        self._open = False

    def claim(self, limit: int) -> list[OutboxRow]:
        assert limit > 0 and not self._open, "settle or release the previous batch first"
        raw = self._conn()
        self._open = True
        try:
            heads = raw.execute(HEADS_SQL, (limit,)).fetchall()
            if not heads:
                self.release()
                return []
            aggregates = sorted({str(a) for _, a in heads})
            rows = [_row(r) for r in raw.execute(FOLLOWERS_SQL, (aggregates, limit)).fetchall()]
        except BaseException:
            self.release()
            raise
        assert rows and rows[0].id == min(int(i) for i, _ in heads), "the oldest head leads the batch"
        return rows

    def settle(self, ids: list[int], now_ns: int) -> None:
        assert self._open, "nothing claimed"
        raw = self._conn()
        try:
            cur = raw.execute(
                "UPDATE outbox SET published_ns = %s WHERE id = ANY(%s) AND published_ns IS NULL",
                (now_ns, ids),
            )
            assert cur.rowcount == len(ids), "a claimed row was published by someone else"
            raw.commit()
        except BaseException:
            self.release()
            raise
        self._open = False

    def release(self) -> None:
        """Roll back: the rows are claimable again (by this relay or another)."""
        self._open = False
        self._rollback()
