"""The batch writer child's SQLite settings (``sqlite_writer.sqlite_for_one_thread``): no mutexes,
no memory statistics. They are global to a process and SQLite takes them only while no connection
is open, so each check runs in a fresh interpreter: this one has connections open."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import ctypes, ctypes.util, json, sqlite3, sys
    from abyssal.adapters.sqlite_writer import sqlite_for_one_thread

    took = sqlite_for_one_thread() if sys.argv[1] == "1" else None
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    lib.sqlite3_db_mutex.restype = ctypes.c_void_p
    conn = sqlite3.connect(sys.argv[2], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i) * 20) for i in range(5000)])
    conn.execute("COMMIT")
    db = ctypes.c_void_p()
    assert lib.sqlite3_open_v2(sys.argv[2].encode(), ctypes.byref(db), 2, None) == 0  # READWRITE
    print(json.dumps({
        "took": took,
        "memory_used": lib.sqlite3_memory_used(),
        "connection_mutex": lib.sqlite3_db_mutex(db) is not None,
        "rows": conn.execute("SELECT count(*), sum(length(b)) FROM t").fetchone(),
    }))
    """
)


def _run(configure: bool, db: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if configure else "0", str(db)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_writer_child_runs_sqlite_without_mutexes_or_memory_statistics(tmp_path: Path) -> None:
    configured = _run(True, tmp_path / "one.db")
    assert configured["took"] is True
    assert configured["memory_used"] == 0  # statistics off: nothing counted, no mutex per malloc
    assert configured["connection_mutex"] is False  # a connection opened afterwards has none
    assert configured["rows"] == [5000, sum(len(str(i) * 20) for i in range(5000))]


def test_without_it_sqlite_keeps_its_defaults(tmp_path: Path) -> None:
    """The control: the same script, the settings not asked for (so the checks above can fail)."""
    default = _run(False, tmp_path / "default.db")
    assert isinstance(default["memory_used"], int) and default["memory_used"] > 0
    assert default["connection_mutex"] is True
    assert default["rows"] == [5000, sum(len(str(i) * 20) for i in range(5000))]
