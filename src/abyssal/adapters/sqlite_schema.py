"""Versioned SQLite migrations for the embedded system of record, applied on start."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: command log, event log, snapshots, read models
    """
    CREATE TABLE commands (
        seq INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        version INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        version INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY,
        state_hash TEXT NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE projection_offsets (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        key_no INTEGER PRIMARY KEY,
        api_key TEXT NOT NULL UNIQUE,
        account INTEGER NOT NULL REFERENCES accounts(id),
        secret_sealed BLOB NOT NULL,
        permissions INTEGER NOT NULL,
        nonce_window INTEGER NOT NULL DEFAULT 0,
        last_nonce INTEGER NOT NULL DEFAULT 0,
        otp TEXT,
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE orders (
        order_no INTEGER PRIMARY KEY,
        account INTEGER NOT NULL,
        pair INTEGER NOT NULL,
        side INTEGER NOT NULL,
        ordertype INTEGER NOT NULL,
        status INTEGER NOT NULL,
        reason INTEGER,
        volume_lots INTEGER NOT NULL,
        display_lots INTEGER NOT NULL,
        limit_ticks INTEGER NOT NULL,
        stop_ticks INTEGER NOT NULL,
        price2_ticks INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        tif INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        expire_ns INTEGER NOT NULL,
        userref INTEGER NOT NULL,
        cl_ord_id TEXT NOT NULL,
        opened_ns INTEGER NOT NULL,
        closed_ns INTEGER NOT NULL DEFAULT 0,
        price_text TEXT NOT NULL,
        price2_text TEXT NOT NULL,
        hold_asset INTEGER NOT NULL,
        hold_minor INTEGER NOT NULL CHECK (hold_minor >= 0),
        filled_lots INTEGER NOT NULL DEFAULT 0,
        cost_minor INTEGER NOT NULL DEFAULT 0,
        fee_minor INTEGER NOT NULL DEFAULT 0,
        fee_asset INTEGER NOT NULL DEFAULT -1,
        triggered_ticks INTEGER NOT NULL DEFAULT 0,
        amended INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX orders_open ON orders(account, status);
    CREATE INDEX orders_closed ON orders(account, closed_ns);
    CREATE TABLE trades (
        pair INTEGER NOT NULL,
        trade_no INTEGER NOT NULL,
        price_ticks INTEGER NOT NULL,
        volume_lots INTEGER NOT NULL,
        taker_side INTEGER NOT NULL,
        taker_market INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        taker_order INTEGER NOT NULL,
        maker_order INTEGER NOT NULL,
        PRIMARY KEY (pair, trade_no)
    );
    CREATE TABLE fills (
        pair INTEGER NOT NULL,
        trade_no INTEGER NOT NULL,
        account INTEGER NOT NULL,
        order_no INTEGER NOT NULL,
        side INTEGER NOT NULL,
        price_ticks INTEGER NOT NULL,
        volume_lots INTEGER NOT NULL,
        cost_minor INTEGER NOT NULL,
        fee_asset INTEGER NOT NULL,
        fee_minor INTEGER NOT NULL,
        maker INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        PRIMARY KEY (pair, trade_no, account)
    );
    CREATE INDEX fills_account ON fills(account, ts_ns);
    CREATE INDEX fills_order ON fills(order_no);
    CREATE TABLE ledger (
        entry_no INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        leg INTEGER NOT NULL,
        account INTEGER NOT NULL,
        asset INTEGER NOT NULL,
        type TEXT NOT NULL,
        subtype TEXT NOT NULL,
        refid TEXT NOT NULL,
        ts_ns INTEGER NOT NULL,
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer'),
        fee INTEGER NOT NULL CHECK (typeof(fee) = 'integer' AND fee >= 0),
        balance INTEGER NOT NULL,
        UNIQUE (seq, idx, leg)
    );
    CREATE INDEX ledger_account ON ledger(account, ts_ns);
    CREATE TRIGGER ledger_append_only_update BEFORE UPDATE ON ledger
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    CREATE TRIGGER ledger_append_only_delete BEFORE DELETE ON ledger
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    CREATE TABLE balances (
        account INTEGER NOT NULL,
        asset INTEGER NOT NULL,
        total INTEGER NOT NULL,
        held INTEGER NOT NULL CHECK (held >= 0),
        PRIMARY KEY (account, asset),
        CHECK (account < 0 OR (total >= held))
    );
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration not yet applied; returns the schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ns INTEGER)"
    )
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0])
    for version, script in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        conn.executescript(
            "BEGIN;\n" + script + f"\nINSERT INTO schema_migrations VALUES ({version}, 0);\nCOMMIT;"
        )
        current = version
    return current
