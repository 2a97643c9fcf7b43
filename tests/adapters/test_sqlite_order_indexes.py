"""The order indexes hold only what their readers ask for (sqlite_schema migration 6).

``orders_open`` holds pending and open orders by account, ``orders_closed`` the others by account
and close time. Readers must spell the indexes' own terms (``status < 2``, ``status >= 2``) for
SQLite to use them, and no statement of the batch write may build an ephemeral table (an ``IN``
list in a partial index's WHERE made every status UPDATE build two).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.runtime.test_projector_holds import INSTRUMENTS, events_of_a_busy_book

from abyssal.adapters import sqlite_reads as reads
from abyssal.adapters import sqlite_schema
from abyssal.adapters.sqlite import SqliteStore, write_rows
from abyssal.core.messages import Event, OrderStatus
from abyssal.runtime.projector import Projector, Rows

ACCOUNTS = (1, 2)
BATCH = 40


def _write(store: SqliteStore, events: list[list[Event]], first_seq: int = 1) -> None:
    """A busy book's events projected and written as the sequencer writes them, in batches."""
    projector = Projector(INSTRUMENTS, store.load_balances())
    for first in range(0, len(events), BATCH):
        rows = Rows()
        for seq, batch_events in enumerate(events[first : first + BATCH], start=first_seq + first):
            projector.project(seq, batch_events, rows)
        with store.transaction() as c:
            write_rows(c, rows)


def _answers(store: SqliteStore) -> dict[str, object]:
    """Every reader of the two indexes, as plain tuples."""
    out: dict[str, object] = {"audit": reads.audit(store)}
    for account in ACCOUNTS:
        out[f"open {account}"] = [tuple(r) for r in reads.open_orders(store, account, None, None)]
        for closetime in ("open", "close", "both"):
            for window in (reads.Window(), reads.Window(start_ns=500, end_ns=2_500), reads.Window(offset=50)):
                rows, count = reads.closed_orders(store, account, window, closetime, None, None)
                out[f"closed {account} {closetime} {window}"] = ([tuple(r) for r in rows], count)
    return out


def test_an_upgraded_database_answers_as_before_and_its_indexes_hold_only_their_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "abyssal.db"
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:5])
    old = SqliteStore(path)  # the schema before: every order in both indexes
    assert sqlite_schema.migrate(old.conn()) == 5
    events = events_of_a_busy_book(2_100, seed=3)
    upgrade_at = len(events) - 600
    _write(old, events[:upgrade_at])
    before = _answers(old)
    old.close()
    monkeypatch.undo()

    store = SqliteStore(path)
    c = store.conn()
    assert sqlite_schema.migrate(c) == len(sqlite_schema.MIGRATIONS) == 7
    assert _answers(store) == before
    assert before["audit"] == []
    statuses = dict(c.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
    assert statuses.get(OrderStatus.open, 0) > 10 and statuses.get(OrderStatus.closed, 0) > 100, statuses
    assert statuses.get(OrderStatus.canceled, 0) > 100, statuses  # IOC remainders
    open_count = statuses.get(OrderStatus.pending, 0) + statuses[OrderStatus.open]
    # INDEXED BY fails to prepare when the index cannot serve the query: usable, and exactly the open ones
    indexed = "SELECT COUNT(*) FROM orders INDEXED BY orders_open WHERE status < 2"
    assert c.execute(indexed).fetchone()[0] == open_count
    indexed = "SELECT COUNT(*) FROM orders INDEXED BY orders_closed WHERE status >= 2"
    assert c.execute(indexed).fetchone()[0] == sum(statuses.values()) - open_count
    assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    _write(store, events[upgrade_at:], upgrade_at + 1)  # the same book goes on: fills, closes of old orders
    assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    (tmp_path / "fresh").mkdir()
    fresh = SqliteStore(tmp_path / "fresh" / "abyssal.db")  # the new schema from the start
    _write(fresh, events)
    after = _answers(store)
    assert after == _answers(fresh) and after != before
    assert after["audit"] == []
    store.close()
    fresh.close()


def _traced(store: SqliteStore, action: object) -> list[str]:
    seen: list[str] = []
    conn = store.conn()
    conn.set_trace_callback(seen.append)
    try:
        action()  # type: ignore[operator]
    finally:
        conn.set_trace_callback(None)
    return [s for s in seen if " orders" in s]


def _explain(conn: sqlite3.Connection, sql: str, query_plan: bool) -> list[str]:
    args = (0,) * sql.count("?")
    column = 3 if query_plan else 1
    prefix = "EXPLAIN QUERY PLAN " if query_plan else "EXPLAIN "
    return [str(r[column]) for r in conn.execute(prefix + sql, args)]


def test_readers_use_the_order_indexes_and_the_batch_write_builds_no_ephemeral_table(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "abyssal.db")
    conn = store.conn()
    writes = _traced(store, lambda: _write(store, events_of_a_busy_book(400, seed=5)))
    assert any(s.startswith("UPDATE orders SET") and "status = " in s for s in writes), writes  # closes
    for sql in set(writes):
        opcodes = _explain(conn, sql, query_plan=False)
        assert not [op for op in opcodes if "Ephemeral" in op], sql

    queries = _traced(store, lambda: _answers(store))
    queries.append("SELECT COUNT(*) FROM orders WHERE status < 2")  # abyssal status (gateway/admin.py)
    status_readers = [s for s in set(queries) if "status" in s]
    assert len(status_readers) >= 4, queries
    for sql in status_readers:
        plan = " | ".join(_explain(conn, sql, query_plan=True))
        assert "USING INDEX orders_open" in plan or "USING INDEX orders_closed" in plan, (sql, plan)
    store.close()
