"""The payments adapter: the idempotency gate, the payment state machine, the outbox,
funding settings (calendar, limits, withdraw keys, tokens) and webhook delivery records.

It runs on the Store port (adapters/store.py), so on SQLite and on PostgreSQL alike: the SQL is
the shared dialect (``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``) that
``PgConnection`` translates. Every public method is one write transaction on the calling
thread's connection (``BEGIN IMMEDIATE`` on SQLite; callers run them on the payments pool,
never on the event loop). Guarded writes are single
conditional statements: ``INSERT ... ON CONFLICT DO NOTHING`` for the gate, ``UPDATE ... WHERE
status = ?`` for transitions. The outbox row is always the last statement of its transaction.
"""

from __future__ import annotations

from datetime import date

from abyssal.adapters.sqlite import SqliteStore
from abyssal.adapters.store import DbConnection, Store
from abyssal.ports import (
    BusMessage,
    IdempotencyClaim,
    LimitWindow,
    NewPayment,
    OutboxEvent,
    OutboxRow,
    PaymentRecord,
)
from abyssal.runtime import faults

_PAYMENT_COLUMNS = (
    "id, refid, kind, account, asset, amount_minor, fee_minor, status, version, method, withdraw_key, "
    "address, reference, error, trace_id, created_ns, updated_ns"
)
ACTIVE_WITHDRAWAL = ("requested", "held", "sent", "completed")  # statuses that count against limits
LIMIT_LOCK_CLASS = 0x4C494D  # pg_advisory_xact_lock(class, account): the daily-limit check's lock


def _payment(row: tuple[object, ...]) -> PaymentRecord:
    return PaymentRecord(*row)  # type: ignore[arg-type]


def _outbox(c: DbConnection, e: OutboxEvent, now_ns: int) -> None:
    c.execute(
        "INSERT INTO outbox (event_id, topic, aggregate, event_type, schema_version, payload, trace_id, "
        "created_ns) VALUES (?,?,?,?,?,?,?,?)",
        (e.event_id, e.topic, e.aggregate, e.event_type, e.schema_version, e.payload, e.trace_id, now_ns),
    )


class SqlitePaymentStore:
    """PaymentStore and OutboxStore (ports.py) over any Store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._sqlite = isinstance(store, SqliteStore)

    def _lock_account(self, c: DbConnection, account: int) -> None:
        """Serialize read-then-insert checks per account until the transaction ends.

        SQLite's ``BEGIN IMMEDIATE`` already holds the one write lock; PostgreSQL's READ COMMITTED
        would let two transactions read the same sum, so they take a transaction advisory lock.
        """
        if not self._sqlite:
            c.execute(
                "SELECT pg_advisory_xact_lock(CAST(? AS integer), CAST(? AS integer))",
                (LIMIT_LOCK_CLASS, account),
            ).fetchone()

    # -- the idempotency gate ----------------------------------------------------------------
    def claim(
        self, tenant: int, source: str, key: str, fingerprint: str, owner: str, now_ns: int, stale_ns: int
    ) -> IdempotencyClaim:
        seen = self._existing_key(tenant, source, key, fingerprint)  # replays need no write lock
        if seen is not None:
            return seen
        with self.store.transaction() as c:
            row = c.execute(
                "INSERT INTO idempotency_keys (tenant, source, key, fingerprint, state, owner, locked_ns, "
                "created_ns) VALUES (?,?,?,?,'in_flight',?,?,?) "
                "ON CONFLICT (tenant, source, key) DO NOTHING RETURNING id",
                (tenant, source, key, fingerprint, owner, now_ns, now_ns),
            ).fetchone()
            if row is not None:
                return IdempotencyClaim("new", int(row[0]))
            kid, fp, state, holder, locked, pid, code, body = c.execute(
                "SELECT id, fingerprint, state, owner, locked_ns, payment_id, response_code, response_body "
                "FROM idempotency_keys WHERE tenant = ? AND source = ? AND key = ?",
                (tenant, source, key),
            ).fetchone()
            payment_id = None if pid is None else int(pid)
            if fp != fingerprint:
                return IdempotencyClaim("mismatch", int(kid), payment_id)
            if state == "done":
                return IdempotencyClaim("replay", int(kid), payment_id, int(code), bytes(body))
            if holder == owner and now_ns - int(locked) < stale_ns:
                return IdempotencyClaim("in_flight", int(kid), payment_id)
            # the holder crashed (another process instance) or its lock went stale: take it over
            c.execute(
                "UPDATE idempotency_keys SET owner = ?, locked_ns = ? WHERE id = ?", (owner, now_ns, kid)
            )
            return IdempotencyClaim("resume", int(kid), payment_id)

    def _existing_key(self, tenant: int, source: str, key: str, fingerprint: str) -> IdempotencyClaim | None:
        """A finished key's answer (or a mismatch) from a plain read; None when a write must decide."""
        row = (
            self.store.conn()
            .execute(
                "SELECT id, fingerprint, state, payment_id, response_code, response_body "
                "FROM idempotency_keys "
                "WHERE tenant = ? AND source = ? AND key = ?",
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

    def finish_key(self, key_id: int, code: int, body: bytes, now_ns: int) -> None:
        with self.store.transaction() as c:
            c.execute(
                "UPDATE idempotency_keys SET state = 'done', response_code = ?, response_body = ?, "
                "locked_ns = ? WHERE id = ? AND state = 'in_flight'",
                (code, body, now_ns, key_id),
            )

    def unlock_key(self, key_id: int) -> None:
        """Mark an in-flight key stale at once (its work failed): the next retry resumes it."""
        with self.store.transaction() as c:
            c.execute(
                "UPDATE idempotency_keys SET locked_ns = 0 WHERE id = ? AND state = 'in_flight'", (key_id,)
            )

    def release_key(self, key_id: int) -> None:
        with self.store.transaction() as c:
            c.execute("DELETE FROM idempotency_keys WHERE id = ? AND state = 'in_flight'", (key_id,))

    # -- the state machine -------------------------------------------------------------------
    def open_payment(
        self, key_id: int, new: NewPayment, limit: LimitWindow | None, event: OutboxEvent, now_ns: int
    ) -> PaymentRecord | str:
        with self.store.transaction() as c:
            if limit is not None:
                self._lock_account(c, new.account)
                marks = ",".join("?" * len(ACTIVE_WITHDRAWAL))
                used = c.execute(
                    "SELECT COALESCE(SUM(amount_minor), 0) FROM payments WHERE account = ? AND asset = ? "
                    f"AND kind = 'withdrawal' AND status IN ({marks}) AND created_ns >= ? AND created_ns < ?",
                    (new.account, new.asset, *ACTIVE_WITHDRAWAL, limit.start_ns, limit.end_ns),
                ).fetchone()[0]
                if int(used) + new.amount_minor > limit.limit_minor:
                    return "daily_limit_exceeded"
            inserted = c.execute(
                "INSERT INTO payments (refid, kind, account, asset, amount_minor, status, method, "
                "withdraw_key, address, reference, trace_id, created_ns, updated_ns) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (
                    new.refid,
                    new.kind,
                    new.account,
                    new.asset,
                    new.amount_minor,
                    new.status,
                    new.method,
                    new.withdraw_key,
                    new.address,
                    new.reference,
                    new.trace_id,
                    now_ns,
                    now_ns,
                ),
            ).fetchone()
            pid = int(inserted[0])
            c.execute(
                "INSERT INTO payment_transitions VALUES (?, 1, '', ?, 'opened', ?)", (pid, new.status, now_ns)
            )
            c.execute("UPDATE idempotency_keys SET payment_id = ? WHERE id = ?", (pid, key_id))
            _outbox(c, event, now_ns)
            row = c.execute(f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = ?", (pid,)).fetchone()
        return _payment(row)

    def transition(
        self,
        payment_id: int,
        from_status: str,
        to_status: str,
        reason: str,
        event: OutboxEvent,
        now_ns: int,
        finish: tuple[int, int, bytes] | None = None,
    ) -> PaymentRecord | None:
        with self.store.transaction() as c:
            row = c.execute(
                "UPDATE payments SET status = ?, version = version + 1, updated_ns = ?, "
                "error = CASE WHEN ? IN ('failed', 'canceled') THEN ? ELSE error END "
                f"WHERE id = ? AND status = ? RETURNING {_PAYMENT_COLUMNS}",
                (to_status, now_ns, to_status, reason, payment_id, from_status),
            ).fetchone()
            if row is None:
                return None
            p = _payment(row)
            c.execute(
                "INSERT INTO payment_transitions VALUES (?,?,?,?,?,?)",
                (payment_id, p.version, from_status, to_status, reason, now_ns),
            )
            if finish is not None:
                key_id, code, body = finish
                c.execute(
                    "UPDATE idempotency_keys SET state = 'done', response_code = ?, response_body = ? "
                    "WHERE id = ? AND state = 'in_flight'",
                    (code, body, key_id),
                )
            _outbox(c, event, now_ns)
            faults.point("payments.before_transition_commit")
        return p

    # -- reads -------------------------------------------------------------------------------
    def payment(self, payment_id: int) -> PaymentRecord | None:
        row = (
            self.store.conn()
            .execute(f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = ?", (payment_id,))
            .fetchone()
        )
        return None if row is None else _payment(row)

    def payment_by_refid(self, account: int, refid: str) -> PaymentRecord | None:
        row = (
            self.store.conn()
            .execute(
                f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE refid = ? AND account = ?", (refid, account)
            )
            .fetchone()
        )
        return None if row is None else _payment(row)

    def payment_any(self, refid: str) -> PaymentRecord | None:
        """By refid alone (the operator's view: any account)."""
        row = (
            self.store.conn()
            .execute(f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE refid = ?", (refid,))
            .fetchone()
        )
        return None if row is None else _payment(row)

    def payments(self, account: int, kind: str, asset: int | None, limit: int) -> list[PaymentRecord]:
        sql = f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE account = ? AND kind = ?"
        args: list[object] = [account, kind]
        if asset is not None:
            sql += " AND asset = ?"
            args.append(asset)
        rows = self.store.conn().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_payment(r) for r in rows]

    def transitions(self, payment_id: int) -> list[tuple[int, str, str, str, int]]:
        return [
            (int(v), str(f), str(t), str(r), int(ts))
            for v, f, t, r, ts in self.store.conn().execute(
                "SELECT version, from_status, to_status, reason, ts_ns FROM payment_transitions "
                "WHERE payment_id = ? ORDER BY version",
                (payment_id,),
            )
        ]

    def unsettled(self) -> list[PaymentRecord]:
        rows = (
            self.store.conn()
            .execute(
                f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE status IN ('pending', 'requested') "
                "OR (kind = 'withdrawal' AND status IN ('completed', 'failed', 'canceled') AND refid IN "
                "(SELECT ref FROM withdrawal_holds)) ORDER BY id"
            )
            .fetchall()
        )
        return [_payment(r) for r in rows]

    def held_before(self, before_ns: int, limit: int) -> list[PaymentRecord]:
        """Withdrawals waiting in held or sent since before ``before_ns`` (for auto-settle)."""
        rows = (
            self.store.conn()
            .execute(
                f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE kind = 'withdrawal' "
                "AND status IN ('held', 'sent') AND updated_ns < ? ORDER BY id LIMIT ?",
                (before_ns, limit),
            )
            .fetchall()
        )
        return [_payment(r) for r in rows]

    def ledger_has_deposit(self, refid: str) -> bool:
        row = (
            self.store.conn()
            .execute("SELECT 1 FROM ledger WHERE refid = ? AND type = 'deposit' LIMIT 1", (refid,))
            .fetchone()
        )
        return row is not None

    def hold_pending(self, refid: str) -> bool:
        row = self.store.conn().execute("SELECT 1 FROM withdrawal_holds WHERE ref = ?", (refid,)).fetchone()
        return row is not None

    # -- funding settings --------------------------------------------------------------------
    def settings(self) -> tuple[str, int, str, int]:
        """(zone, cutoff_minute, calendar, auto_settle_ms)."""
        z, m, cal, ms = (
            self.store.conn()
            .execute("SELECT zone, cutoff_minute, calendar, auto_settle_ms FROM funding_settings")
            .fetchone()
        )
        return str(z), int(m), str(cal), int(ms)

    def set_settings(self, zone: str, cutoff_minute: int, calendar: str, auto_settle_ms: int) -> None:
        with self.store.transaction() as c:
            c.execute(
                "UPDATE funding_settings SET zone = ?, cutoff_minute = ?, calendar = ?, auto_settle_ms = ?",
                (zone, cutoff_minute, calendar, auto_settle_ms),
            )

    def calendar_days(self, calendar: str, first: date, last: date) -> dict[date, bool]:
        rows = self.store.conn().execute(
            "SELECT day, is_business FROM business_calendar WHERE calendar = ? AND day BETWEEN ? AND ?",
            (calendar, first.isoformat(), last.isoformat()),
        )
        return {date.fromisoformat(str(d)): bool(b) for d, b in rows}

    def put_calendar(self, calendar: str, rows: list[tuple[str, int, str]], replace: bool) -> int:
        clash = (
            "DO UPDATE SET is_business = excluded.is_business, note = excluded.note"
            if replace
            else "DO NOTHING"
        )
        with self.store.transaction() as c:
            c.executemany(
                f"INSERT INTO business_calendar VALUES (?,?,?,?) ON CONFLICT (calendar, day) {clash}",
                [(calendar, *r) for r in rows],
            )
        return len(rows)

    def delete_calendar_day(self, calendar: str, day: str) -> None:
        with self.store.transaction() as c:
            c.execute("DELETE FROM business_calendar WHERE calendar = ? AND day = ?", (calendar, day))

    def daily_limit(self, account: int, asset: int) -> int | None:
        row = (
            self.store.conn()
            .execute(
                "SELECT l.daily_limit_minor FROM withdrawal_limits l WHERE l.asset = ? AND l.tier = "
                "COALESCE((SELECT tier FROM account_tiers WHERE account = ?), 'default')",
                (asset, account),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    def set_limit(self, tier: str, asset: int, daily_limit_minor: int) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO withdrawal_limits VALUES (?,?,?) ON CONFLICT (tier, asset) "
                "DO UPDATE SET daily_limit_minor = excluded.daily_limit_minor",
                (tier, asset, daily_limit_minor),
            )

    def set_tier(self, account: int, tier: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO account_tiers VALUES (?,?) "
                "ON CONFLICT (account) DO UPDATE SET tier = excluded.tier",
                (account, tier),
            )

    def put_withdraw_key(
        self, account: int, asset: int, name: str, method: str, address: str, now_ns: int
    ) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO withdraw_keys VALUES (?,?,?,?,?,?) ON CONFLICT (account, asset, name) "
                "DO UPDATE SET method = excluded.method, address = excluded.address, "
                "created_ns = excluded.created_ns",
                (account, asset, name, method, address, now_ns),
            )

    def withdraw_keys(self, account: int) -> list[tuple[int, str, str, str]]:
        """(asset, name, method, address) of an account's withdrawal keys."""
        return [
            (int(a), str(n), str(m), str(ad))
            for a, n, m, ad in self.store.conn().execute(
                "SELECT asset, name, method, address FROM withdraw_keys WHERE account = ? "
                "ORDER BY asset, name",
                (account,),
            )
        ]

    def put_token(self, token_sha256: str, account: int, now_ns: int) -> None:
        with self.store.transaction() as c:
            c.execute("INSERT INTO payment_tokens VALUES (?,?,?)", (token_sha256, account, now_ns))

    def tokens(self) -> dict[str, int]:
        return {
            str(t): int(a)
            for t, a in self.store.conn().execute("SELECT token_sha256, account FROM payment_tokens")
        }

    # -- the outbox (OutboxStore) ------------------------------------------------------------
    def unpublished(self, limit: int) -> list[OutboxRow]:
        rows = (
            self.store.conn()
            .execute(
                "SELECT id, topic, aggregate, event_id, event_type, schema_version, payload, trace_id "
                "FROM outbox WHERE published_ns IS NULL ORDER BY id LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [
            OutboxRow(
                int(r[0]),
                BusMessage(str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), bytes(r[6]), str(r[7])),
            )
            for r in rows
        ]

    def mark_published(self, ids: list[int], now_ns: int) -> None:
        with self.store.transaction() as c:
            c.executemany("UPDATE outbox SET published_ns = ? WHERE id = ?", [(now_ns, i) for i in ids])

    def purge_published(self, before_ns: int, limit: int) -> int:
        with self.store.transaction() as c:
            cur = c.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_ns IS NOT NULL "
                "AND published_ns < ? LIMIT ?)",
                (before_ns, limit),
            )
            return int(cur.rowcount)

    def outbox_backlog(self) -> int:
        return int(
            self.store.conn().execute("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL").fetchone()[0]
        )
