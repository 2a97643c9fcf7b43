"""The PostgreSQL store at the database level: parity with SQLite, recovery, and the ledger guards.

Parity: the same engine-made batches written through both adapters leave identical tables, and
both recover to the same state hash. Guards: an unbalanced ledger insert is accepted by its
INSERT and refused at COMMIT (the deferred constraint trigger); UPDATE, DELETE and TRUNCATE on
the ledger raise; migrations are versioned and idempotent.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import psycopg
import pytest

from abyssal.adapters import sqlite_reads
from abyssal.adapters.postgres import PostgresStore, translate
from abyssal.adapters.postgres_schema import MIGRATIONS, migrate
from abyssal.adapters.sqlite import BatchRecord, SqliteStore
from abyssal.adapters.store import Store, open_store
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.instruments import Instruments
from abyssal.core.messages import (
    COMMAND_SCHEMA_VERSION,
    EVENT_SCHEMA_VERSION,
    AmendOrder,
    Command,
    Deposit,
    OrderType,
    PlaceOrder,
    TimeInForce,
    command_encoder,
    events_encoder,
)
from abyssal.core.snapshot import snapshot, state_hash
from abyssal.runtime.projector import Projector, Rows
from abyssal.runtime.recovery import recover, verify_from_genesis

pytestmark = pytest.mark.slow

TS0_NS = 1_700_000_000_000_000_000
TABLES = {
    "commands": "seq", "events": "seq", "snapshots": "seq", "projection_offsets": "name",
    "orders": "order_no", "trades": "pair, trade_no", "fills": "pair, trade_no, account",
    "ledger": "entry_no", "balances": "account, asset",
}  # fmt: skip


def commands(instruments: Instruments, count: int, seed: int = 7) -> list[Command]:
    """Deposits for four accounts, then crossing and resting XBT/USD limit orders."""
    rng = random.Random(seed)
    usd, xbt, pair = instruments.asset("ZUSD"), instruments.asset("XXBT"), instruments.pair("XBTUSD")
    assert usd is not None and xbt is not None and pair is not None
    out: list[Command] = []
    for account in range(1, 5):
        out.append(Deposit(ts_ns=0, account=account, asset=usd.index, amount_minor=10**12, ref=f"u{account}"))
        out.append(Deposit(ts_ns=0, account=account, asset=xbt.index, amount_minor=10**11, ref=f"x{account}"))
    for _ in range(count):
        side = rng.randrange(2)
        price = 300_000 + rng.randint(-30, 30) * (1 if side else -1)
        ioc = rng.random() < 0.2
        out.append(PlaceOrder(
            ts_ns=0, account=rng.randint(1, 4), pair=pair.index, side=side, ordertype=int(OrderType.limit),
            volume_lots=rng.choice((100_000, 250_000, 1_000_000)), price_ticks=price,
            tif=int(TimeInForce.ioc if ioc else TimeInForce.gtc), price_text=f"{price // 10}.{price % 10}",
        ))  # fmt: skip
    return out


def batches(
    instruments: Instruments, cmds: list[Command], size: int, snapshot_every: int
) -> list[BatchRecord]:
    """What the sequencer would hand the writer, with deterministic times."""
    engine, projector = Engine(instruments), Projector(instruments, {})
    out: list[BatchRecord] = []
    seq = 0
    for start in range(0, len(cmds), size):
        record = BatchRecord(seq + 1, [], [], Rows())
        for cmd in cmds[start : start + size]:
            seq += 1
            cmd = type(cmd)(**{**{f: getattr(cmd, f) for f in cmd.__struct_fields__}, "ts_ns": TS0_NS + seq})
            events = engine.apply(cmd)
            record.command_rows.append((seq, cmd.ts_ns, COMMAND_SCHEMA_VERSION, command_encoder.encode(cmd)))
            record.event_rows.append((seq, EVENT_SCHEMA_VERSION, events_encoder.encode(events)))
            projector.project(seq, events, record.rows)
        if seq % snapshot_every < size:
            blob = snapshot(engine)
            record.snapshot = (seq, hashlib.sha256(blob).hexdigest(), blob)
        out.append(record)
    return out


def both_stores(
    pg_store: PostgresStore, tmp_path: Path, n: int, size: int
) -> tuple[Instruments, SqliteStore]:
    """The same ``n`` commands, in batches of ``size`` without snapshots, written to both stores."""
    instruments = load_config(None).instruments
    lite = SqliteStore(tmp_path / "abyssal.db")
    for record in batches(instruments, commands(instruments, n), size=size, snapshot_every=10**9):
        lite.write_batch(record)
        pg_store.write_batch(record)
    return instruments, lite


def dump(store: Store) -> dict[str, list[tuple[object, ...]]]:
    c = store.conn()
    return {
        t: [tuple(r) for r in c.execute(f"SELECT * FROM {t} ORDER BY {k}").fetchall()]
        for t, k in TABLES.items()
    }


def test_same_batches_leave_identical_tables_and_recover_to_the_same_state(
    pg_store: PostgresStore, tmp_path: Path
) -> None:
    instruments = load_config(None).instruments
    records = batches(instruments, commands(instruments, 600), size=37, snapshot_every=200)
    lite = SqliteStore(tmp_path / "abyssal.db")
    for record in records:
        lite.write_batch(record)
        pg_store.write_batch(record)
    expected, got = dump(lite), dump(pg_store)
    assert len(expected["trades"]) > 20 and len(expected["ledger"]) > 100, "the workload traded"
    for table in TABLES:
        assert got[table] == expected[table], table
    assert sqlite_reads.audit(pg_store) == [] and sqlite_reads.audit(lite) == []
    assert pg_store.last_seq() == lite.last_seq() == records[-1].command_rows[-1][0]
    assert pg_store.load_balances() == lite.load_balances()
    r_pg, r_lite = recover(pg_store, instruments), recover(lite, instruments)
    assert r_pg.next_seq == r_lite.next_seq and r_pg.last_snapshot_seq == r_lite.last_snapshot_seq > 0
    assert state_hash(r_pg.engine) == state_hash(r_lite.engine)
    assert verify_from_genesis(pg_store, instruments) == verify_from_genesis(lite, instruments)
    lite.close()


def test_an_amend_that_crosses_the_book_commits_as_in_sqlite(pg_store: PostgresStore, tmp_path: Path) -> None:
    """An amend that raises a buy through the best ask: the amend (more hold) then a fill that spends
    it, in one batch. Both stores apply amends before fills, so the row's hold never dips below 0."""
    instruments = load_config(None).instruments
    pair = instruments.pair("XBTUSD")
    assert pair is not None
    cmds: list[Command] = list(commands(instruments, 0))  # the deposits

    def limit(account: int, side: int, price: int) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=0, account=account, pair=pair.index, side=side, ordertype=int(OrderType.limit),
            volume_lots=1_000_000, price_ticks=price, price_text=f"{price // 10}.{price % 10}",
        )  # fmt: skip

    cmds += [limit(2, 1, 300_010), limit(1, 0, 299_900)]
    buy_no = 2  # order numbers count from 1
    cmds.append(AmendOrder(ts_ns=0, account=1, order_no=buy_no, cl_ord_id="", order_qty_lots=-1,
                           display_lots=-1, limit_price_ticks=300_010, trigger_price_ticks=-1,
                           post_only=False))  # fmt: skip
    lite = SqliteStore(tmp_path / "abyssal.db")
    for record in batches(instruments, cmds, size=len(cmds), snapshot_every=10**9):
        lite.write_batch(record)
        pg_store.write_batch(record)
    expected, got = dump(lite), dump(pg_store)
    assert len(expected["trades"]) == 1
    assert [(r[0], r[5]) for r in expected["orders"]] == [(1, 2), (2, 2)]  # both filled
    for table in TABLES:
        assert got[table] == expected[table], table
    assert sqlite_reads.audit(pg_store) == [] and sqlite_reads.audit(lite) == []
    lite.close()


def test_a_snapshot_written_on_its_own_touches_nothing_else(pg_store: PostgresStore, tmp_path: Path) -> None:
    """``write_snapshot`` (the sequencer's background snapshots): same row on both, offsets unchanged."""
    instruments, lite = both_stores(pg_store, tmp_path, 120, size=40)
    last = lite.last_seq()
    blob = snapshot(recover(lite, instruments).engine)
    digest = hashlib.sha256(blob).hexdigest()
    for store in (lite, pg_store):
        before = dump(store)
        store.write_snapshot(last, digest, blob)
        after = dump(store)
        assert after["snapshots"] == [(last, digest, blob)]
        assert {t: rows for t, rows in after.items() if t != "snapshots"} == {
            t: rows for t, rows in before.items() if t != "snapshots"
        }
        recovered = recover(store, instruments)
        assert recovered.last_snapshot_seq == last and recovered.replayed == 0
    lite.close()


def test_shared_read_sql_returns_the_same_rows(pg_store: PostgresStore, tmp_path: Path) -> None:
    _, lite = both_stores(pg_store, tmp_path, 200, size=50)
    window = sqlite_reads.Window()
    for account in (1, 2, 3):
        for fn, args in (
            (sqlite_reads.open_orders, (account, None, None)),
            (sqlite_reads.closed_orders, (account, window, "both", None, None)),
            (sqlite_reads.fills, (account, window)),
            (sqlite_reads.ledger, (account, [0, 1], "trade", window)),
            (sqlite_reads.balances, (account,)),
        ):
            a, b = fn(lite, *args), fn(pg_store, *args)  # type: ignore[operator]
            rows_a, rows_b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
            assert [tuple(r) for r in rows_b] == [tuple(r) for r in rows_a], fn.__name__
            assert [dict(zip(r.keys(), r, strict=True)) for r in rows_b][:1] == [
                dict(zip(r.keys(), r, strict=True)) for r in rows_a
            ][:1]
    lite.close()


def test_store_methods_and_the_factory(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url, tmp_path)
    assert isinstance(store, PostgresStore)
    account = store.create_account("alice", 1)
    assert store.create_account("bob", 2) == account + 1
    key_no = store.insert_api_key("k1", account, b"sealed", 7, 0, 3)
    store.bump_nonces([(50, key_no)])
    store.bump_nonces([(40, key_no)])  # never lowers
    assert store.conn().execute("SELECT last_nonce FROM api_keys WHERE key_no = ?", (key_no,)).fetchone() == (
        50,
    )
    assert sqlite_reads.account_by_name(store, "bob") == account + 1
    store.close()
    for url in (None, f"sqlite://{tmp_path}/other.db"):
        lite = open_store(url, tmp_path)
        assert isinstance(lite, SqliteStore)
        lite.close()
    assert (tmp_path / "abyssal.db").exists() and (tmp_path / "other.db").exists()
    with pytest.raises(NotImplementedError):
        translate("INSERT OR REPLACE INTO snapshots VALUES (?,?,?)")
    assert (
        translate("INSERT OR IGNORE INTO t VALUES (?, '%')")
        == "INSERT INTO t VALUES (%s, '%%') ON CONFLICT DO NOTHING"
    )


def test_migrations_are_versioned_and_idempotent(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    PostgresStore(pg_url).close()  # a second start applies nothing
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate(conn) == len(MIGRATIONS)
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


INTO_LEDGER = (
    "INSERT INTO ledger (seq, idx, leg, account, asset, type, subtype, refid, ts_ns, amount, fee, balance)"
)
LINE = INTO_LEDGER + " VALUES (%s, 0, %s, %s, 0, 'deposit', '', 'r', 1, %s, 0, 0)"


def test_an_unbalanced_ledger_insert_fails_at_commit_not_at_insert(pg_store: PostgresStore) -> None:
    with psycopg.connect(pg_store.url) as conn:
        conn.execute(LINE, (1, 0, 5, 100))  # accepted: the check is deferred
        conn.execute(LINE, (1, 1, -1, -99))
        with pytest.raises(psycopg.errors.CheckViolation, match="do not balance"):
            conn.commit()
    with psycopg.connect(pg_store.url) as conn:
        conn.execute("SET CONSTRAINTS ledger_balanced IMMEDIATE")
        conn.execute(  # balanced at the end of this statement: checked (and the group marked) then
            INTO_LEDGER + " VALUES (2, 0, 0, 5, 0, 'deposit', '', 'r', 1, 100, 0, 0), "
            "(2, 0, 1, -1, 0, 'deposit', '', 'r', 1, -100, 0, 0)"
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(LINE, (2, 2, 6, 1))  # a later line of the same group is still checked
        conn.rollback()
    with psycopg.connect(pg_store.url) as conn:
        conn.execute(LINE, (3, 0, 5, 100))
        conn.execute(LINE, (3, 1, -1, -100))
        conn.commit()
    assert pg_store.conn().execute("SELECT seq, amount FROM ledger ORDER BY entry_no").fetchall() == [
        (3, 100), (3, -100),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger SET amount = 0", "DELETE FROM ledger", "TRUNCATE ledger"],
)
def test_ledger_is_append_only(pg_store: PostgresStore, statement: str) -> None:
    with psycopg.connect(pg_store.url) as conn:
        conn.execute(LINE, (1, 0, 5, 100))
        conn.execute(LINE, (1, 1, -1, -100))
        conn.commit()
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            conn.execute(statement.encode())
        conn.rollback()
    assert pg_store.conn().execute("SELECT COUNT(*) FROM ledger").fetchone() == (2,)


def test_a_failed_commit_raises_from_write_batch_and_leaves_nothing(pg_store: PostgresStore) -> None:
    rows = Rows()
    rows.ledger.append((1, 0, 0, 5, 0, "deposit", "", "r", 1, 100, 0, 100))  # no counter-line
    record = BatchRecord(1, [(1, 1, 1, b"c")], [(1, 1, b"e")], rows)
    with pytest.raises(psycopg.errors.CheckViolation):
        pg_store.write_batch(record)
    assert pg_store.last_seq() == 0
    assert pg_store.conn().execute("SELECT COUNT(*) FROM ledger").fetchone() == (0,)
