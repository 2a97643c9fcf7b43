"""The idempotency gate's table: claim a key (first write wins), store its answer, reap old keys.

Runs on the Store port (SQLite and PostgreSQL alike, see sqlite_payments.py). A key row is
``in_flight`` from its claim until the answer is stored with the transition that produced it
(``done``); only ``done`` rows are ever reaped, so a request still running keeps its key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from abyssal.adapters.store import DbConnection, Store
from abyssal.ports import IdempotencyClaim

T = TypeVar("T")

CLAIM_ATTEMPTS_MAX = 3  # a key reaped between our INSERT and our SELECT: insert again


def insert_key(
    c: DbConnection, tenant: int, source: str, key: str, fingerprint: str, owner: str, now_ns: int
) -> int | None:
    """The gate itself: the new key's id, or None when (tenant, source, key) exists."""
    row = c.execute(
        "INSERT INTO idempotency_keys (tenant, source, key, fingerprint, state, owner, locked_ns, "
        "created_ns) VALUES (?,?,?,?,'in_flight',?,?,?) "
        "ON CONFLICT (tenant, source, key) DO NOTHING RETURNING id",
        (tenant, source, key, fingerprint, owner, now_ns, now_ns),
    ).fetchone()
    return None if row is None else int(row[0])


class IdempotencyKeys:
    """The idempotency part of SqlitePaymentStore (a mixin: ``store`` is set by the store)."""

    store: Store
    # True when this process is the only one serving payments on the database (embedded): a key
    # another owner holds belongs to a process that is gone, and is resumed at once. False for
    # scaled-out gateways: another owner may be a live gateway, so only a stale lock is taken over.
    exclusive: bool = True

    def claim(
        self, tenant: int, source: str, key: str, fingerprint: str, owner: str, now_ns: int, stale_ns: int
    ) -> IdempotencyClaim:
        seen = self.existing_key(tenant, source, key, fingerprint)  # replays need no write lock
        if seen is not None:
            return seen
        return self.until_claimed(
            key, lambda c: self.claim_in(c, tenant, source, key, fingerprint, owner, now_ns, stale_ns)
        )

    def until_claimed(self, key: str, attempt: Callable[[DbConnection], T | None]) -> T:
        """Run ``attempt`` in a transaction of its own until the key stops vanishing under the reaper."""
        for _ in range(CLAIM_ATTEMPTS_MAX):
            with self.store.transaction() as c:
                got = attempt(c)
            if got is not None:
                return got
        raise RuntimeError(f"idempotency key {key!r} kept vanishing under the reaper")

    def claim_in(
        self,
        c: DbConnection,
        tenant: int,
        source: str,
        key: str,
        fingerprint: str,
        owner: str,
        now_ns: int,
        stale_ns: int,
    ) -> IdempotencyClaim | None:
        """The claim inside the caller's transaction; None if the key vanished (reaped) meanwhile."""
        kid = insert_key(c, tenant, source, key, fingerprint, owner, now_ns)
        if kid is not None:
            return IdempotencyClaim("new", kid)
        row = c.execute(
            "SELECT id, fingerprint, state, owner, locked_ns, payment_id, response_code, response_body "
            "FROM idempotency_keys WHERE tenant = ? AND source = ? AND key = ?",
            (tenant, source, key),
        ).fetchone()
        if row is None:  # PostgreSQL: the reaper deleted it between our INSERT and this SELECT
            return None
        kid, fp, state, holder, locked, pid, code, body = row
        payment_id = None if pid is None else int(pid)
        if fp != fingerprint:
            return IdempotencyClaim("mismatch", int(kid), payment_id)
        if state == "done":
            return IdempotencyClaim("replay", int(kid), payment_id, int(code), bytes(body))
        if now_ns - int(locked) < stale_ns and (holder == owner or not self.exclusive):
            return IdempotencyClaim("in_flight", int(kid), payment_id)
        # the holder crashed (another process instance) or its lock went stale: take it over
        c.execute("UPDATE idempotency_keys SET owner = ?, locked_ns = ? WHERE id = ?", (owner, now_ns, kid))
        return IdempotencyClaim("resume", int(kid), payment_id)

    def existing_key(self, tenant: int, source: str, key: str, fingerprint: str) -> IdempotencyClaim | None:
        """A finished key's answer (or a mismatch) from a plain read; None when a write must decide."""
        row = (
            self.store.conn()
            .execute(
                "SELECT id, fingerprint, state, payment_id, response_code, response_body "
                "FROM idempotency_keys WHERE tenant = ? AND source = ? AND key = ?",
                (tenant, source, key),
            )
            .fetchone()
        )
        if row is None:
            return None
        kid, fp, state, pid, code, body = row
        payment_id = None if pid is None else int(pid)
        if fp != fingerprint:
            return IdempotencyClaim("mismatch", int(kid), payment_id)
        if state == "done":
            return IdempotencyClaim("replay", int(kid), payment_id, int(code), bytes(body))
        return None

    def key_created_ns(self, key_id: int) -> int:
        """When the key was claimed: it salts the refid, so a key reused after reaping is new."""
        row = (
            self.store.conn()
            .execute("SELECT created_ns FROM idempotency_keys WHERE id = ?", (key_id,))
            .fetchone()
        )
        assert row is not None, "an in-flight key is never reaped"
        return int(row[0])

    def key_of_payment(self, payment_id: int) -> int | None:
        row = (
            self.store.conn()
            .execute("SELECT id FROM idempotency_keys WHERE payment_id = ?", (payment_id,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def finish_key(self, key_id: int, code: int, body: bytes, now_ns: int) -> None:
        with self.store.transaction() as c:
            finish_in(c, key_id, code, body, now_ns)

    def unlock_key(self, key_id: int) -> None:
        """Mark an in-flight key stale at once (its work failed): the next retry resumes it."""
        with self.store.transaction() as c:
            c.execute(
                "UPDATE idempotency_keys SET locked_ns = 0 WHERE id = ? AND state = 'in_flight'", (key_id,)
            )

    def release_key(self, key_id: int) -> None:
        with self.store.transaction() as c:
            c.execute("DELETE FROM idempotency_keys WHERE id = ? AND state = 'in_flight'", (key_id,))

    def reap_keys(self, before_ns: int, batch_rows_max: int) -> int:
        """Delete up to ``batch_rows_max`` finished keys claimed before ``before_ns``; returns how many.

        Only ``done`` rows go: a request in flight (or one a crash left in flight, which a retry
        resumes) keeps its key. Payments do not reference keys, so nothing else is touched.
        """
        assert batch_rows_max > 0
        with self.store.transaction() as c:
            cur = c.execute(
                "DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys "
                "WHERE state = 'done' AND created_ns < ? ORDER BY created_ns LIMIT ?)",
                (before_ns, batch_rows_max),
            )
            reaped = int(cur.rowcount)
        assert 0 <= reaped <= batch_rows_max
        return reaped


def finish_in(c: DbConnection, key_id: int, code: int, body: bytes, now_ns: int) -> None:
    """Store a key's answer (status and exact bytes) in the caller's transaction."""
    c.execute(
        "UPDATE idempotency_keys SET state = 'done', response_code = ?, response_body = ?, "
        "locked_ns = ? WHERE id = ? AND state = 'in_flight'",
        (code, body, now_ns, key_id),
    )
