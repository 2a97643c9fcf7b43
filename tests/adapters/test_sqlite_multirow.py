"""``sqlite.insert_rows``, the batch writer child's inserts of many rows per statement: the same
table as ``executemany`` leaves, whatever the count, and the same conflicts."""

from __future__ import annotations

import sqlite3

import pytest

from abyssal.adapters.sqlite import MULTIROW_CHUNKS, insert_rows

TABLE = "CREATE TABLE t (k INTEGER PRIMARY KEY, a INTEGER NOT NULL, b TEXT, c BLOB)"
IGNORE = "INSERT OR IGNORE INTO t (k, a, b, c) VALUES (?,?,?,?)"
PLAIN = "INSERT INTO t VALUES (?, ?, ?, ?)"


def _rows(keys: list[int]) -> list[tuple[object, ...]]:
    return [(k, k * 7 - 3, None if k % 5 == 0 else f"row {k}", bytes([k % 256]) * (k % 3)) for k in keys]


def _table(insert: str, batches: list[list[tuple[object, ...]]], multirow: bool) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(TABLE)
    for rows in batches:
        if multirow:
            insert_rows(conn, insert, rows)
        else:
            conn.executemany(insert, rows)
    return conn.execute("SELECT k, a, b, c FROM t ORDER BY k").fetchall()


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 31, 32, 33, 41, 77, 300])
def test_any_count_leaves_the_rows_executemany_leaves(count: int) -> None:
    rows = _rows(list(range(1, count + 1)))
    assert _table(IGNORE, [rows], True) == _table(IGNORE, [rows], False)
    assert len(_table(PLAIN, [rows], True)) == count


def test_or_ignore_drops_each_duplicate_alone_inside_one_statement_and_against_the_table() -> None:
    first = _rows(list(range(1, 41)))
    again = _rows([5, 50, 5, 51, 39, 52, *range(60, 90), 60])  # duplicates in one chunk and of the table
    again = [(k, -1, "second", b"") for k, *_ in again]
    multi = _table(IGNORE, [first, again], True)
    assert multi == _table(IGNORE, [first, again], False)
    by_key = {row[0]: row for row in multi}
    assert by_key[5][1] == 5 * 7 - 3 and by_key[50][1] == -1 and by_key[60][2] == "second"


def test_a_plain_insert_refuses_a_duplicate_and_the_transaction_keeps_nothing() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(TABLE)
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError):
        insert_rows(conn, PLAIN, _rows([*range(1, 20), 3]))
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_the_chunks_end_at_one_row() -> None:
    """Any count is made of the chunk sizes: the last size is one row."""
    assert MULTIROW_CHUNKS[-1] == 1 and list(MULTIROW_CHUNKS) == sorted(MULTIROW_CHUNKS, reverse=True)
