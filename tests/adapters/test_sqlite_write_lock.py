"""Writers queue on a lock instead of meeting SQLITE_BUSY: threads of one process on a mutex, and
stores of different processes (the exchange and its batch writer process) on an flock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from abyssal.adapters.sqlite import SqliteStore


@pytest.mark.parametrize("stores", ["one store", "two stores"])
def test_a_second_writer_waits_for_the_first_instead_of_failing_busy(tmp_path: Path, stores: str) -> None:
    """Two stores on one database stand for two processes: their locks are separate descriptions
    of the lock file, exactly as across processes."""
    store = SqliteStore(tmp_path / "a.db")
    other = store if stores == "one store" else SqliteStore(tmp_path / "a.db")
    holding, release = threading.Event(), threading.Event()
    results: list[object] = []

    def first() -> None:
        with store.transaction() as c:
            c.execute("INSERT INTO accounts (name, created_ns) VALUES ('first', 1)")
            holding.set()
            release.wait(10)

    def second() -> None:
        # no busy handler at all on this connection: without the lock, BEGIN IMMEDIATE here would
        # fail at once with "database is locked"
        other.conn().execute("PRAGMA busy_timeout=0")
        try:
            with other.transaction() as c:
                c.execute("INSERT INTO accounts (name, created_ns) VALUES ('second', 2)")
            results.append("ok")
        except Exception as exc:
            results.append(exc)

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.2)
    assert b.is_alive() and results == [], "the second writer waits while the first holds the lock"
    release.set()
    a.join(10)
    b.join(10)
    assert results == ["ok"]
    names = [r[0] for r in store.conn().execute("SELECT name FROM accounts ORDER BY id")]
    assert names == ["first", "second"]
    store.close()


def test_a_rolled_back_transaction_releases_the_lock(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    try:
        with store.transaction() as c:
            c.execute("INSERT INTO accounts (name, created_ns) VALUES ('gone', 1)")
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    done: list[bool] = []

    def other() -> None:
        with store.transaction() as c:
            c.execute("INSERT INTO accounts (name, created_ns) VALUES ('kept', 2)")
        done.append(True)

    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert done == [True]
    assert [r[0] for r in store.conn().execute("SELECT name FROM accounts")] == ["kept"]
    store.close()
