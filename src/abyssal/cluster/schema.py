"""Tables only the scaled-out roles use, created if missing (PostgreSQL).

``engine_leases``: which engine process leads each shard, until when (the database's clock),
and the epoch, raised at every change of holder. ``engine_clocks``: the engine's clock at each
snapshot (commands are stamped ``max(ts_ns, last + 1)``, so a replica restored from a snapshot
needs the last stamp too). ``shared_nonces``: nonces accepted inside a
key's nonce window, so that every gateway refuses a replay. ``shared_ws_tokens``: WebSocket
tokens by their SHA-256, so a token from one gateway opens private feeds on any other.
``shared_rate``: the REST call counters every gateway spends from.
"""

from __future__ import annotations

from typing import Any

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS engine_leases (shard INTEGER PRIMARY KEY, holder TEXT NOT NULL, "
    "epoch BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS engine_clocks (seq BIGINT PRIMARY KEY, last_ts_ns BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shared_nonces (key_no BIGINT NOT NULL, nonce NUMERIC(20) NOT NULL, "
    "PRIMARY KEY (key_no, nonce))",
    "CREATE TABLE IF NOT EXISTS shared_ws_tokens (token_sha256 BYTEA PRIMARY KEY, key_no BIGINT NOT NULL, "
    "expires_ns BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shared_rate (name TEXT PRIMARY KEY, level_micro BIGINT NOT NULL, "
    "at_ns BIGINT NOT NULL, refused BOOLEAN NOT NULL DEFAULT false)",
)
LOCK_ID = 0x61627973  # serialises concurrent creators (CREATE TABLE IF NOT EXISTS can race)


def ensure(raw: Any) -> None:
    """Create the cluster tables on a psycopg connection (blocking)."""
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        for sql in SCHEMA:
            raw.execute(sql)
