"""PostgreSQL system of record: the same store as ``sqlite`` (logs, snapshots, read models, keys).

psycopg 3, synchronous and binary (docs/adr/0006-postgres-driver.md): the sequencer's writer
thread commits a whole batch in one transaction, sent as one pipeline (array ``unnest``
inserts for the bulk rows); readers use one connection per thread, as with SQLite. Raw SQL
written for SQLite elsewhere (``?`` placeholders, ``INSERT OR IGNORE``) runs through
``PgConnection``, which translates that small dialect and refuses what it cannot translate.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import Buffer
from psycopg.types.numeric import NumericBinaryLoader, NumericLoader

from abyssal.adapters.postgres_batch import BUMP_NONCES, UPSERT_SNAPSHOT, batch_statements
from abyssal.adapters.postgres_schema import migrate
from abyssal.adapters.sqlite import BatchRecord

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 30_000  # a runaway read or a stuck lock fails rather than hangs a thread
_UNSUPPORTED = re.compile(r"\bINSERT\s+OR\s+REPLACE\b|\bMAX\s*\([^()]*,", re.IGNORECASE)
_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\b", re.IGNORECASE)


class IntegralNumericLoader(NumericLoader):
    """NUMERIC values without a fraction (``SUM`` of BIGINT) come back as ``int``, as in SQLite."""

    def load(self, data: Buffer) -> Any:
        value = super().load(data)
        return int(value) if isinstance(value, Decimal) and value == value.to_integral_value() else value


class IntegralNumericBinaryLoader(NumericBinaryLoader):
    def load(self, data: Buffer) -> Any:
        value = super().load(data)
        return int(value) if isinstance(value, Decimal) and value == value.to_integral_value() else value


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's dialect, as used by the shared read SQL, to PostgreSQL's."""
    if _UNSUPPORTED.search(sql):
        raise NotImplementedError(f"SQLite-only SQL; add a store method instead: {sql[:80]}")
    out = sql.replace("%", "%%").replace("?", "%s")
    if _OR_IGNORE.search(out):
        out = _OR_IGNORE.sub("INSERT", out).rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return out


class Row:
    """A result row readable by index and by column name, like ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    index = {d.name: i for i, d in enumerate(cursor.description or ())}
    return lambda values: Row(index, values)


class PgCursor:
    """The slice of ``sqlite3.Cursor`` the callers use."""

    def __init__(self, cursor: psycopg.Cursor[Any], inserted: bool = False) -> None:
        self._cursor = cursor
        self._inserted = inserted

    @property
    def lastrowid(self) -> int | None:
        """After an INSERT into a table with an identity key: that key (``lastval()`` is per session,
        and nothing else on this connection draws from a sequence in between)."""
        if not self._inserted:
            return None
        row = self._cursor.connection.execute("SELECT lastval()").fetchone()
        return None if row is None else int(row[0])

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class PgConnection:
    """The slice of ``sqlite3.Connection`` the callers use, over a psycopg connection."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.row_factory: Any = None  # set to anything (sqlite3.Row) for name-addressable rows

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        cursor = (
            self.raw.cursor(row_factory=_row_factory) if self.row_factory is not None else self.raw.cursor()
        )
        cursor.execute(translate(sql), parameters)
        return PgCursor(cursor, inserted=sql.lstrip()[:6].upper() == "INSERT")

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> PgCursor:
        cursor = self.raw.cursor()
        cursor.executemany(translate(sql), list(seq_of_parameters))
        return PgCursor(cursor)

    def close(self) -> None:
        self.raw.close()


def connect(url: str) -> psycopg.Connection[Any]:
    raw = psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )
    raw.adapters.register_loader("numeric", IntegralNumericLoader)
    raw.adapters.register_loader("numeric", IntegralNumericBinaryLoader)
    return raw


class PostgresStore:
    """The PostgreSQL storage adapter: a connection per thread, one transaction per batch."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[PgConnection] = []  # every thread's connection, for close()
        migrate(self.conn().raw)

    # -- connections -------------------------------------------------------------------------
    def conn(self) -> PgConnection:
        """This thread's connection (autocommit; use ``transaction()`` to write)."""
        c: PgConnection | None = getattr(self._local, "conn", None)
        if c is None or c.raw.closed or c.raw.broken:
            if c is not None:
                c.close()
            c = PgConnection(connect(self.url))
            self._local.conn = c
            with self._lock:
                self._all = [x for x in self._all if not x.raw.closed] + [c]
        return c

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        c = self.conn()
        with c.raw.transaction():
            yield c

    def close(self) -> None:
        """Close every thread's connection (call once no thread uses the store any more)."""
        with self._lock:
            connections, self._all = self._all, []
        for c in connections:
            c.close()
        self._local.conn = None

    # -- the batch write ---------------------------------------------------------------------
    def write_batch(self, b: BatchRecord) -> None:
        """The whole batch in one transaction, sent as one pipeline (one round trip to the sync)."""
        c = self.conn().raw
        with c.transaction(), c.pipeline(), c.cursor(binary=True) as cur:
            for sql, params, many in batch_statements(b):
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)

    def write_snapshot(self, seq: int, state_hash: str, body: bytes) -> None:
        """A snapshot on its own (taken in the background): its seq must already be committed."""
        c = self.conn().raw
        with c.transaction(), c.cursor(binary=True) as cur:
            cur.execute(UPSERT_SNAPSHOT, (seq, state_hash, body))

    # -- small writes the gateway makes ------------------------------------------------------
    def bump_nonces(self, changed: list[tuple[int, int]]) -> None:
        """Raise each key's stored nonce to at least the given one: [(nonce, key_no)]."""
        c = self.conn().raw
        with c.transaction(), c.cursor() as cur:
            cur.executemany(BUMP_NONCES, changed)

    def create_account(self, name: str, created_ns: int) -> int:
        row = (
            self.conn()
            .raw.execute(
                "INSERT INTO accounts (name, created_ns) VALUES (%s, %s) RETURNING id", (name, created_ns)
            )
            .fetchone()
        )
        assert row is not None
        return int(row[0])

    def insert_api_key(
        self, api_key: str, account: int, sealed: bytes, permissions: int, nonce_window: int, created_ns: int
    ) -> int:
        row = (
            self.conn()
            .raw.execute(
                "INSERT INTO api_keys (api_key, account, secret_sealed, permissions, nonce_window, "
                "created_ns) VALUES (%s, %s, %s, %s, %s, %s) RETURNING key_no",
                (api_key, account, sealed, permissions, nonce_window, created_ns),
            )
            .fetchone()
        )
        assert row is not None
        return int(row[0])

    # -- recovery ----------------------------------------------------------------------------
    def latest_snapshot(self) -> tuple[int, str, bytes] | None:
        row = (
            self.conn()
            .raw.execute("SELECT seq, state_hash, body FROM snapshots ORDER BY seq DESC LIMIT 1")
            .fetchone()
        )
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))

    def commands_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, bytes, bytes]]:
        """(seq, command body, events body) in order, at most ``limit`` rows."""
        rows = (
            self.conn()
            .raw.execute(
                "SELECT c.seq, c.body, e.body FROM commands c JOIN events e ON e.seq = c.seq "
                "WHERE c.seq > %s ORDER BY c.seq LIMIT %s",
                (seq, limit),
            )
            .fetchall()
        )
        return [(int(r[0]), bytes(r[1]), bytes(r[2])) for r in rows]

    def last_seq(self) -> int:
        row = self.conn().raw.execute("SELECT COALESCE(MAX(seq), 0) FROM commands").fetchone()
        assert row is not None
        return int(row[0])

    def load_balances(self) -> dict[tuple[int, int], list[int]]:
        rows = self.conn().raw.execute("SELECT account, asset, total, held FROM balances").fetchall()
        return {(int(a), int(s)): [int(t), int(h)] for a, s, t, h in rows}
