"""SQLite (WAL) system of record: command and event logs, snapshots and read models.

One writer connection (the batch writer's: a child process, adapters/sqlite_writer.py, or the
sequencer's writer thread) commits a whole batch (commands,
events, projected rows, nonces, optional snapshot) in one transaction: a command is
durable exactly when its batch commits. Readers use their own connections per thread. The
``events`` rows are also the outbox of engine events (adapters/event_log_outbox.py).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from abyssal.adapters.sqlite_schema import migrate
from abyssal.runtime.projector import Rows

BUSY_TIMEOUT_MS = 10_000
# a batch's order writes after ``coalesce_orders``: (inserts, fills, fills with their close, closes)
OrderRows = tuple[
    list[tuple[object, ...]], list[tuple[int, ...]], list[tuple[int, ...]], list[tuple[int, int, int, int]]
]


@dataclass(slots=True)
class BatchRecord:
    first_seq: int
    command_rows: list[tuple[int, int, int, bytes]]  # (seq, ts_ns, version, body)
    event_rows: list[tuple[int, int, bytes]]  # (seq, version, body)
    rows: Rows
    nonces: dict[int, int] = field(default_factory=dict)  # key_no -> last nonce
    snapshot: tuple[int, str, bytes] | None = None
    snapshot_due: int = 0  # > 0: the writer serialises the engine at this seq into ``snapshot``
    offsets: dict[str, int] = field(default_factory=dict)  # more projection_offsets rows (readers' positions)
    # ``coalesce_orders(rows)`` when the batch's sender did it (the writer process's pipe); then
    # ``rows`` holds no order inserts, fills or closes of its own
    orders: OrderRows | None = None


def connect(path: Path, *, synchronous: str = "FULL", readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class SqliteStore:
    """The embedded storage adapter. Thread-safe by construction: a connection per thread."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", multirow: bool = False) -> None:
        self.path = path
        self.synchronous = synchronous
        # the batch writer child's inserts: statements of many rows (``insert_rows``); a writer
        # thread keeps a step per row, between which the GIL can pass to the event loop
        self._insert: Inserter = insert_rows if multirow else _insert_each
        self._local = threading.local()
        # One writer at a time in this process: threads queue here and wake as soon as the lock is
        # free, instead of meeting SQLITE_BUSY and sleeping in SQLite's busy handler (1, 2, 5, 10 ms
        # ...), which measured 15-20 % of the sequencer's commits waiting a millisecond or more
        # behind the outbox relay. Other processes still meet the busy handler.
        self._write_lock = threading.RLock()
        # ... and one writer at a time across processes (the batch writer may be a child process,
        # adapters/sqlite_writer.py): an flock on a file beside the database, taken inside the
        # thread lock. Never on the database file itself: closing any descriptor of that file
        # would drop SQLite's own POSIX locks on it.
        self._lock_fd = -1
        self._lock_depth = 0
        with self._writer_conn() as conn:
            migrate(conn)

    # -- connections -------------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; use ``transaction()`` to write)."""
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            c = connect(self.path, synchronous=self.synchronous)
            self._local.conn = c
        return c

    @contextmanager
    def _writer_conn(self) -> Iterator[sqlite3.Connection]:
        yield self.conn()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        c = self.conn()
        with self._write_lock, self._process_lock():
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """The cross-process writer lock (held with ``_write_lock``, so ``_lock_depth`` is safe)."""
        if self._lock_fd < 0:
            self._lock_fd = os.open(f"{self.path}-writer-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if self._lock_depth == 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None
        with self._write_lock:
            if self._lock_fd >= 0 and self._lock_depth == 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    # -- small writes whose SQL differs by dialect (the PostgreSQL store has the same) ---------
    def bump_nonces(self, changed: list[tuple[int, int]]) -> None:
        """Raise each key's stored nonce to at least the given one: [(nonce, key_no)]."""
        with self.transaction() as c:
            c.executemany("UPDATE api_keys SET last_nonce = MAX(last_nonce, ?) WHERE key_no = ?", changed)

    def create_account(self, name: str, created_ns: int) -> int:
        with self.transaction() as c:
            cur = c.execute("INSERT INTO accounts (name, created_ns) VALUES (?, ?)", (name, created_ns))
            return int(cur.lastrowid or 0)

    def insert_api_key(
        self, api_key: str, account: int, sealed: bytes, permissions: int, nonce_window: int, created_ns: int
    ) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO api_keys (api_key, account, secret_sealed, permissions, nonce_window, "
                "created_ns) VALUES (?,?,?,?,?,?)",
                (api_key, account, sealed, permissions, nonce_window, created_ns),
            )
            return int(cur.lastrowid or 0)

    # -- the batch write ---------------------------------------------------------------------
    def write_batch(self, b: BatchRecord) -> None:
        with self.transaction() as c:
            self._insert(c, "INSERT INTO commands VALUES (?,?,?,?)", b.command_rows)
            self._insert(c, "INSERT INTO events VALUES (?,?,?)", b.event_rows)
            write_rows(c, b.rows, b.orders, self._insert)
            last_seq = b.command_rows[-1][0] if b.command_rows else b.first_seq - 1
            c.execute(
                "INSERT INTO projection_offsets VALUES ('ledger', ?) "
                "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                (last_seq,),
            )
            if b.offsets:
                c.executemany(
                    "INSERT INTO projection_offsets VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                    list(b.offsets.items()),
                )
            if b.nonces:
                c.executemany(
                    "UPDATE api_keys SET last_nonce = MAX(last_nonce, ?) WHERE key_no = ?",
                    [(n, k) for k, n in b.nonces.items()],
                )
            if b.snapshot is not None:
                c.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?)", b.snapshot)

    def write_snapshot(self, seq: int, state_hash: str, body: bytes) -> None:
        """A snapshot on its own (taken in the background): its seq must already be committed."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?)", (seq, state_hash, body))

    # -- recovery ----------------------------------------------------------------------------
    def latest_snapshot(self) -> tuple[int, str, bytes] | None:
        row = (
            self.conn()
            .execute("SELECT seq, state_hash, body FROM snapshots ORDER BY seq DESC LIMIT 1")
            .fetchone()
        )
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))

    def commands_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, bytes, bytes]]:
        """(seq, command body, events body) in order, at most ``limit`` rows."""
        rows = (
            self.conn()
            .execute(
                "SELECT c.seq, c.body, e.body FROM commands c JOIN events e ON e.seq = c.seq "
                "WHERE c.seq > ? ORDER BY c.seq LIMIT ?",
                (seq, limit),
            )
            .fetchall()
        )
        return [(int(r[0]), bytes(r[1]), bytes(r[2])) for r in rows]

    def last_seq(self) -> int:
        row = self.conn().execute("SELECT COALESCE(MAX(seq), 0) FROM commands").fetchone()
        return int(row[0])

    def load_balances(self) -> dict[tuple[int, int], list[int]]:
        rows = self.conn().execute("SELECT account, asset, total, held FROM balances").fetchall()
        return {(int(a), int(s)): [int(t), int(h)] for a, s, t, h in rows}


Inserter = Callable[[sqlite3.Connection, str, Sequence[tuple[object, ...]]], None]
# rows per statement: three shapes per table, each prepared once; 32 rows of the widest insert
# (orders, 28 columns) bind 896 values, under the 999 that SQLite before 3.32 allowed
MULTIROW_CHUNKS = (32, 8, 1)
_multirow_sql: dict[tuple[str, int], str] = {}


def _insert_each(c: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    c.executemany(sql, rows)


def insert_rows(c: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    """``c.executemany(sql, rows)`` for a one-row ``INSERT ... VALUES (?, ...)``, run as statements
    of up to 32 rows (``VALUES (...), (...), ...``): the same rows and the same conflicts (each row
    of an ``INSERT OR IGNORE`` is ignored on its own), with one ``sqlite3_step`` per statement
    instead of per row. Measured in the batch writer child: 1-3 µs less per command."""
    left, i = len(rows), 0
    for k in MULTIROW_CHUNKS:
        if left < k:
            continue
        shaped = _multirow_sql.get((sql, k))
        if shaped is None:
            head, values, one = sql.rpartition("VALUES")
            assert values and one.strip().startswith("(") and one.strip().endswith(")"), sql
            shaped = _multirow_sql[(sql, k)] = head + "VALUES " + ",".join([one.strip()] * k)
        while left >= k:
            c.execute(shaped, tuple(chain.from_iterable(rows[i : i + k])))
            i += k
            left -= k


def coalesce_orders(r: Rows) -> OrderRows:
    """The batch's order writes with one row write per order where the result is the same.

    An order inserted in this batch is inserted as the batch leaves it (its fills added, its
    close applied: a marketable IOC order is one INSERT, not an INSERT, an UPDATE per fill and
    one more for the close); an order filled several times gets one UPDATE with the sums (the
    last fill's fee asset), and one that also closes gets one UPDATE for both. An order that is
    started, triggered or amended in the batch keeps a statement per change, in order.
    Returns (inserts, fills, fills with their close, closes).
    """
    special = {row[0] for row in r.order_starts}
    special.update(row[2] for row in r.order_triggers)
    special.update(row[5] for row in r.order_amends)
    fills: dict[int, list[int]] = {}
    for lots, cost, fee, fee_asset, used, no in r.order_fills:
        acc = fills.get(no)
        if acc is None:
            fills[no] = [lots, cost, fee, fee_asset, used]
        else:
            acc[0] += lots
            acc[1] += cost
            acc[2] += fee
            acc[3] = fee_asset
            acc[4] += used
    closes = {row[3]: row for row in r.order_closes}  # an order closes once
    inserts: list[tuple[object, ...]] = []
    for row in r.order_inserts:
        order_no = row[0]
        assert isinstance(order_no, int) and isinstance(row[21], int)
        status: object = row[5]
        hold: int = row[21]
        filled = [0, 0, 0, -1]  # lots, cost, fee, fee asset: the columns' defaults
        reason: int | None = None
        closed_ns = 0
        if order_no not in special:
            f = fills.pop(order_no, None)
            if f is not None:
                filled, hold = f[:4], hold - f[4]
            closing = closes.pop(order_no, None)
            if closing is not None:
                status, reason, closed_ns, hold = closing[0], closing[1], closing[2], 0
        inserts.append((*row[:5], status, *row[6:21], hold, *filled, reason, closed_ns))
    fill_rows: list[tuple[int, ...]] = []
    fill_closes: list[tuple[int, ...]] = []
    for no, f in fills.items():
        closing = None if no in special else closes.pop(no, None)
        if closing is None:
            fill_rows.append((f[0], f[1], f[2], f[3], f[4], no))
        else:
            fill_closes.append((f[0], f[1], f[2], f[3], closing[0], closing[1], closing[2], no))
    return inserts, fill_rows, fill_closes, list(closes.values())


# OrderAmends' log, written before the batch's amend and fill UPDATEs: the order as entered, once
# (amend_no 0, copied while the row still holds what the first amend changes), then each amend. An
# amend's remaining quantity arrives less the lots the order filled earlier in this batch (the
# projector counts them); the row's filled_lots, not yet updated by this batch, takes off the rest
KEEP_ORIGINAL_SQL = (
    "INSERT OR IGNORE INTO order_amends (order_no, amend_no, volume_lots, display_lots, limit_ticks, "
    "stop_ticks, remaining_lots, ts_ns) SELECT order_no, 0, volume_lots, display_lots, "
    "CASE WHEN stop_ticks > 0 THEN price2_ticks ELSE limit_ticks END, stop_ticks, volume_lots, opened_ns "
    "FROM orders WHERE order_no = ?"
)
LOG_AMEND_SQL = (
    "INSERT OR IGNORE INTO order_amends (order_no, amend_no, volume_lots, display_lots, limit_ticks, "
    "stop_ticks, remaining_lots, ts_ns) SELECT order_no, ?, ?, ?, ?, ?, ? - filled_lots, ? "
    "FROM orders WHERE order_no = ?"
)


def write_rows(
    c: sqlite3.Connection, r: Rows, orders: OrderRows | None = None, insert: Inserter = _insert_each
) -> None:
    """The read-model rows of one batch, in the order that keeps each statement valid (``orders``:
    the batch's order writes already coalesced, else they are coalesced from ``r`` here; ``insert``
    runs the plain inserts)."""
    inserts, fills, fill_closes, closes = coalesce_orders(r) if orders is None else orders
    insert(
        c,
        "INSERT OR IGNORE INTO orders (order_no, account, pair, side, ordertype, status, volume_lots, "
        "display_lots, limit_ticks, stop_ticks, price2_ticks, flags, tif, start_ns, expire_ns, userref, "
        "cl_ord_id, opened_ns, price_text, price2_text, hold_asset, hold_minor, filled_lots, cost_minor, "
        "fee_minor, fee_asset, reason, closed_ns) VALUES (" + ",".join("?" * 28) + ")",
        inserts,
    )
    c.executemany("UPDATE orders SET status = 1 WHERE order_no = ?", r.order_starts)
    c.executemany(
        "UPDATE orders SET limit_ticks = CASE WHEN ? > 0 THEN ? ELSE limit_ticks END, "
        "triggered_ticks = ? WHERE order_no = ?",
        [(lim, lim, px, no) for lim, px, no in r.order_triggers],
    )
    if r.amend_log:
        c.executemany(KEEP_ORIGINAL_SQL, [(row[-1],) for row in r.amend_log])
        c.executemany(LOG_AMEND_SQL, r.amend_log)
    # amends before fills: an amend that raises a buy's price can cross the book, and its fill
    # then spends the hold the amend added (hold arithmetic is additive, so this order never
    # takes hold_minor below zero, where fills first would for that order)
    c.executemany(
        "UPDATE orders SET volume_lots = ?, display_lots = ?, "
        "limit_ticks = CASE WHEN ? > 0 AND stop_ticks = 0 THEN ? ELSE limit_ticks END, "
        "price2_ticks = CASE WHEN ? > 0 AND stop_ticks > 0 THEN ? ELSE price2_ticks END, "
        "stop_ticks = ?, hold_minor = hold_minor + ?, amended = 1 WHERE order_no = ?",
        [(v, d, p, p, p, p, s, h, no) for v, d, p, s, h, no in r.order_amends],
    )
    c.executemany(
        "UPDATE orders SET filled_lots = filled_lots + ?, cost_minor = cost_minor + ?, "
        "fee_minor = fee_minor + ?, fee_asset = ?, hold_minor = hold_minor - ? WHERE order_no = ?",
        fills,
    )
    c.executemany(
        "UPDATE orders SET filled_lots = filled_lots + ?, cost_minor = cost_minor + ?, "
        "fee_minor = fee_minor + ?, fee_asset = ?, status = ?, reason = ?, closed_ns = ?, hold_minor = 0 "
        "WHERE order_no = ?",
        fill_closes,
    )
    c.executemany(
        "UPDATE orders SET status = ?, reason = ?, closed_ns = ?, hold_minor = 0 WHERE order_no = ?",
        closes,
    )
    insert(c, "INSERT OR IGNORE INTO trades VALUES (?,?,?,?,?,?,?,?,?)", r.trades)
    insert(c, "INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", r.fills)
    insert(
        c,
        "INSERT OR IGNORE INTO ledger (seq, idx, leg, account, asset, type, subtype, refid, ts_ns, "
        "amount, fee, balance) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        r.ledger,
    )
    c.executemany(
        "INSERT INTO balances VALUES (?,?,?,?) ON CONFLICT(account, asset) "
        "DO UPDATE SET total = excluded.total, held = excluded.held",
        [(k[0], k[1], v[0], v[1]) for k, v in r.balances.items()],
    )
    if r.withdraw_holds:
        c.executemany("INSERT OR IGNORE INTO withdrawal_holds VALUES (?,?,?,?)", r.withdraw_holds)
    if r.withdraw_resolved:
        c.executemany("DELETE FROM withdrawal_holds WHERE ref = ?", r.withdraw_resolved)
