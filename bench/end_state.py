"""End state: what a benchmark asserts after its load, that every acknowledged order is durable and found."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from abyssal_server import Server
from signed_orders import FORMAT_CHECK_ORDERS, Signer

from abyssal.adapters import sqlite_reads
from abyssal.adapters.sqlite import SqliteStore
from abyssal.core import ids
from abyssal.core.instruments import Instruments
from abyssal.core.snapshot import state_hash
from abyssal.runtime.recovery import recover, verify_from_genesis

if TYPE_CHECKING:
    from sequencer_run import LiveState

QUERY_SAMPLE = 500  # acknowledged txids checked through QueryOrders (50 per call)
QUERY_ORDERS_MAX = 50


def missing_orders(conn: sqlite3.Connection, order_nos: Iterable[int]) -> int:
    """How many of ``order_nos`` have no row in ``orders``."""
    conn.execute("CREATE TEMP TABLE acked (order_no INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO acked VALUES (?)", ((n,) for n in order_nos))
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM acked a LEFT JOIN orders o ON o.order_no = a.order_no "
            "WHERE o.order_no IS NULL"
        ).fetchone()[0]
    )


def open_order_rows(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM orders WHERE status IN (0, 1)").fetchone()[0])


def check_query_orders(server: Server, signer: Signer, txids: list[str], rng: random.Random) -> int:
    """QueryOrders finds each sampled txid with exactly one of the two keys (its owner's)."""
    sample = rng.sample(txids, min(QUERY_SAMPLE, len(txids)))
    found_total = 0
    for i in range(0, len(sample), QUERY_ORDERS_MAX):
        chunk = sample[i : i + QUERY_ORDERS_MAX]
        seen: dict[str, int] = {}
        for key in signer.keys.values():
            answer = signer.private(server, key, "QueryOrders", {"txid": ",".join(chunk)})
            if answer["error"] == ["EOrder:Invalid order"]:
                continue  # none of this chunk belongs to this key
            assert answer["error"] == [], answer["error"]
            for txid, info in answer["result"].items():
                assert info["status"] in ("open", "closed", "canceled"), info
                seen[txid] = seen.get(txid, 0) + 1
        missing = [t for t in chunk if seen.get(t) != 1]
        assert not missing, f"QueryOrders does not find {len(missing)} acknowledged txids, e.g. {missing[:3]}"
        found_total += len(chunk)
    return found_total


def check_database(db: Path, txids: list[str]) -> tuple[int, int, int]:
    """Every acknowledged txid is a row of ``orders``: (acknowledged, rows, open rows)."""
    numbers = [ids.decode("O", t) for t in txids]
    assert all(n is not None for n in numbers), "a txid that is not an order id"
    assert len(set(numbers)) == len(numbers), "a txid acknowledged twice"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        missing = missing_orders(conn, (n for n in numbers if n is not None))
        rows = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        open_rows = open_order_rows(conn)
    finally:
        conn.close()
    assert missing == 0, f"{missing} acknowledged orders are not in abyssal.db"
    # wrk stops its clock with requests in flight: the server may have accepted a few more
    assert rows >= len(numbers) + FORMAT_CHECK_ORDERS, (rows, len(numbers))
    return len(numbers), rows, open_rows


def check_end_state(db: Path, instruments: Instruments, live: LiveState) -> None:
    """The disk holds exactly what was acknowledged, balanced, and replays to the live engine's state."""
    sequenced = live.sequenced
    store = SqliteStore(db)
    try:
        c = store.conn()
        assert store.last_seq() == sequenced, (store.last_seq(), sequenced)
        assert c.execute("SELECT COUNT(*) FROM events").fetchone()[0] == sequenced
        missing = missing_orders(c, live.accepted)
        assert missing == 0, f"{missing} acknowledged orders are not in the orders table"
        audit = sqlite_reads.audit(store)
        assert audit == [], audit
        open_rows = open_order_rows(c)
        assert open_rows == live.resting, (open_rows, live.resting)
        replayed, replayed_hash = verify_from_genesis(store, instruments)  # every event compared
        assert replayed == sequenced, (replayed, sequenced)
        assert replayed_hash == live.state_hash, "replaying the log gives another engine state"
        recovered = recover(store, instruments)  # the restart path: snapshot, if any, then the log
        assert recovered.next_seq == sequenced + 1
        assert state_hash(recovered.engine) == live.state_hash, "recovery gives another engine state"
    finally:
        store.close()
