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
    # 2: payments (idempotency gate, state machine, transitions), withdrawal holds, outbox,
    #    business calendar and limits, webhooks with their dedupe and delivery records
    """
    CREATE TABLE idempotency_keys (
        id INTEGER PRIMARY KEY,
        tenant INTEGER NOT NULL,
        source TEXT NOT NULL,
        key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
        owner TEXT NOT NULL,
        locked_ns INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        payment_id INTEGER,
        response_code INTEGER,
        response_body BLOB
    );
    CREATE UNIQUE INDEX idempotency_keys_gate ON idempotency_keys (tenant, source, key);
    CREATE TABLE payments (
        id INTEGER PRIMARY KEY,
        refid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
        account INTEGER NOT NULL,
        asset INTEGER NOT NULL,
        amount_minor INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
        fee_minor INTEGER NOT NULL DEFAULT 0 CHECK (typeof(fee_minor) = 'integer'),
        status TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1,
        method TEXT NOT NULL DEFAULT '',
        withdraw_key TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '',
        reference TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        trace_id TEXT NOT NULL DEFAULT '',
        created_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL
    );
    CREATE INDEX payments_account ON payments (account, kind, created_ns);
    CREATE INDEX payments_status ON payments (kind, status);
    CREATE TABLE payment_transitions (
        payment_id INTEGER NOT NULL REFERENCES payments(id),
        version INTEGER NOT NULL,
        from_status TEXT NOT NULL,
        to_status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        ts_ns INTEGER NOT NULL,
        PRIMARY KEY (payment_id, version)
    );
    CREATE TRIGGER payment_transitions_append_only BEFORE UPDATE ON payment_transitions
        BEGIN SELECT RAISE(ABORT, 'payment transitions are append-only'); END;
    CREATE TABLE withdraw_keys (
        account INTEGER NOT NULL,
        asset INTEGER NOT NULL,
        name TEXT NOT NULL,
        method TEXT NOT NULL,
        address TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        PRIMARY KEY (account, asset, name)
    );
    CREATE TABLE withdrawal_holds (
        ref TEXT PRIMARY KEY,
        account INTEGER NOT NULL,
        asset INTEGER NOT NULL,
        amount_minor INTEGER NOT NULL CHECK (amount_minor > 0)
    );
    CREATE TABLE payment_tokens (
        token_sha256 TEXT PRIMARY KEY,
        account INTEGER NOT NULL REFERENCES accounts(id),
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE business_calendar (
        calendar TEXT NOT NULL,
        day TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
        is_business INTEGER NOT NULL CHECK (is_business IN (0, 1)),
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (calendar, day)
    );
    CREATE TABLE funding_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        zone TEXT NOT NULL,
        cutoff_minute INTEGER NOT NULL CHECK (cutoff_minute BETWEEN 0 AND 1439),
        calendar TEXT NOT NULL,
        auto_settle_ms INTEGER NOT NULL CHECK (auto_settle_ms >= 0)
    );
    INSERT INTO funding_settings VALUES (1, 'UTC', 0, 'default', 0);
    CREATE TABLE withdrawal_limits (
        tier TEXT NOT NULL,
        asset INTEGER NOT NULL,
        daily_limit_minor INTEGER NOT NULL CHECK (typeof(daily_limit_minor) = 'integer'),
        PRIMARY KEY (tier, asset)
    );
    CREATE TABLE account_tiers (
        account INTEGER PRIMARY KEY,
        tier TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        aggregate TEXT NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        trace_id TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        published_ns INTEGER
    );
    CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_ns IS NULL;
    CREATE TABLE webhooks (
        id INTEGER PRIMARY KEY,
        account INTEGER NOT NULL,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_ns INTEGER NOT NULL
    );
    CREATE INDEX webhooks_account ON webhooks (account);
    CREATE TABLE consumed_events (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        consumed_ns INTEGER NOT NULL,
        PRIMARY KEY (consumer, event_id)
    );
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        webhook_id INTEGER NOT NULL REFERENCES webhooks(id),
        account INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ns INTEGER NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        created_ns INTEGER NOT NULL,
        delivered_ns INTEGER,
        UNIQUE (webhook_id, event_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ns) WHERE status = 'pending';
    """,
    # 3: people on the web page (gateway/web_session.py): users with argon2id password hashes,
    # sessions stored by the SHA-256 of their cookie, and the API keys a user made on the page
    """
    CREATE TABLE web_users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        account INTEGER NOT NULL UNIQUE REFERENCES accounts(id),
        session_key_no INTEGER NOT NULL,
        faucet_uses INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE web_sessions (
        token_sha256 BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES web_users(id),
        csrf TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        expires_ns INTEGER NOT NULL
    );
    CREATE INDEX web_sessions_user ON web_sessions (user_id);
    CREATE TABLE web_api_keys (
        key_no INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES web_users(id),
        api_key TEXT NOT NULL,
        label TEXT NOT NULL,
        permissions INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        revoked_ns INTEGER
    );
    CREATE INDEX web_api_keys_user ON web_api_keys (user_id);
    """,
    # 4: payments, additive: the key reaper's index (finished keys by claim time), the outbox's
    #    per-aggregate index (a relay's head-of-aggregate check), events a consumer parked
    #    because it does not know their schema version (runtime/notifications.py)
    """
    CREATE INDEX idempotency_keys_reap ON idempotency_keys (created_ns) WHERE state = 'done';
    CREATE INDEX outbox_unpublished_aggregate ON outbox (aggregate, id) WHERE published_ns IS NULL;
    CREATE TABLE parked_events (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        aggregate TEXT NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        trace_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        parked_ns INTEGER NOT NULL,
        PRIMARY KEY (consumer, event_id)
    );
    """,
    # 5: the event log is the outbox of engine events (adapters/event_log_outbox.py): the
    #    event-log relay's cursor ("every event of commands <= seq is published"), created at the
    #    log's end, so an upgraded database does not publish its history again (its engine rows
    #    already in ``outbox`` still go out through the table relay)
    """
    INSERT OR IGNORE INTO projection_offsets (name, seq)
        SELECT 'relay:events', COALESCE(MAX(seq), 0) FROM events;
    """,
    # 6: the two order indexes hold only the orders their readers ask for (partial indexes):
    #    open ones (pending 0, open 1) by account for OpenOrders, the audit and status; closed
    #    ones (closed 2, canceled 3, expired 4) by account and close time for ClosedOrders. Before,
    #    every order sat in both, so an accepted order wrote an entry in each and a close moved one
    #    in each: index pages every commit rewrote for nothing (bench/README_http.md, "Fewer pages
    #    per commit"). Readers must spell the same terms (``status < 2``, ``status >= 2``) for
    #    SQLite to use these indexes; an ``IN`` list here would make every status UPDATE build
    #    two ephemeral tables
    """
    DROP INDEX orders_open;
    DROP INDEX orders_closed;
    CREATE INDEX orders_open ON orders(account) WHERE status < 2;
    CREATE INDEX orders_closed ON orders(account, closed_ns) WHERE status >= 2;
    """,
    # 7: each order's amends for OrderAmends (gateway/kraken_account.py): written only when an
    #    order is amended, the order as entered (amend_no 0) copied from its row before the first
    #    amend overwrites it; an order never amended has no rows here (its row is its original)
    """
    CREATE TABLE order_amends (
        order_no INTEGER NOT NULL,
        amend_no INTEGER NOT NULL CHECK (amend_no >= 0),
        volume_lots INTEGER NOT NULL CHECK (volume_lots > 0),
        display_lots INTEGER NOT NULL,
        limit_ticks INTEGER NOT NULL,
        stop_ticks INTEGER NOT NULL,
        remaining_lots INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        PRIMARY KEY (order_no, amend_no)
    ) WITHOUT ROWID;
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
