"""The payments adapter: the payment state machine and its reads, assembled with the
idempotency gate (idempotency_store.py), funding settings (payments_settings.py) and the outbox
(outbox_store.py) into one ``SqlitePaymentStore``.

It runs on the Store port (adapters/store.py), so on SQLite and on PostgreSQL alike: the SQL is
the shared dialect (``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``) that
``PgConnection`` translates. Every public method is one write transaction on the calling
thread's connection (``BEGIN IMMEDIATE`` on SQLite; callers run them on the payments pool,
never on the event loop); the ``*_in`` variants run inside the caller's transaction (the group
commit's savepoints, runtime/payments_group_commit.py). Guarded writes are single
conditional statements: ``INSERT ... ON CONFLICT DO NOTHING`` for the gate, ``UPDATE ... WHERE
status = ?`` for transitions. The outbox row is always the last statement of its transaction.
"""

from __future__ import annotations

import dataclasses

from abyssal.adapters.idempotency_store import IdempotencyKeys, finish_in
from abyssal.adapters.outbox_store import OutboxTable, write_event
from abyssal.adapters.payments_settings import FundingSettings
from abyssal.adapters.sqlite import SqliteStore
from abyssal.adapters.store import DbConnection, Store
from abyssal.ports import IdempotencyClaim, LimitWindow, NewPayment, OutboxEvent, PaymentRecord
from abyssal.runtime import faults

_PAYMENT_COLUMNS = (
    "id, refid, kind, account, asset, amount_minor, fee_minor, status, version, method, withdraw_key, "
    "address, reference, error, trace_id, created_ns, updated_ns"
)
ACTIVE_WITHDRAWAL = ("requested", "held", "sent", "completed")  # statuses that count against limits
LIMIT_LOCK_CLASS = 0x4C494D  # pg_advisory_xact_lock(class, account): the daily-limit check's lock


def _payment(row: tuple[object, ...]) -> PaymentRecord:
    return PaymentRecord(*row)  # type: ignore[arg-type]


class SqlitePaymentStore(IdempotencyKeys, FundingSettings, OutboxTable):
    """PaymentStore and OutboxStore (ports.py) over any Store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._sqlite = isinstance(store, SqliteStore)

    @property
    def one_writer(self) -> bool:
        """True on SQLite: one write lock serializes every transaction (group commit is safe)."""
        return self._sqlite

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

    # -- the state machine -------------------------------------------------------------------
    def open_payment(
        self, key_id: int, new: NewPayment, limit: LimitWindow | None, event: OutboxEvent, now_ns: int
    ) -> PaymentRecord | str:
        with self.store.transaction() as c:
            return self._open_in(c, key_id, new, limit, event, now_ns)

    def claim_and_open(
        self,
        tenant: int,
        source: str,
        key: str,
        fingerprint: str,
        owner: str,
        now_ns: int,
        stale_ns: int,
        new: NewPayment,
        event: OutboxEvent,
    ) -> tuple[IdempotencyClaim, PaymentRecord | None]:
        """Claim the key and, if the claim is new, open its payment in the same transaction.

        One commit instead of two for a first request (a deposit: no limit to check); ``new``
        must carry the refid of a key claimed at ``now_ns``. Any other outcome opens nothing.
        """
        seen = self.existing_key(tenant, source, key, fingerprint)
        if seen is not None:
            return seen, None
        args = (tenant, source, key, fingerprint, owner, now_ns, stale_ns, new, event)
        return self.until_claimed(key, lambda c: self.claim_and_open_in(c, *args))

    def claim_and_open_in(
        self,
        c: DbConnection,
        tenant: int,
        source: str,
        key: str,
        fingerprint: str,
        owner: str,
        now_ns: int,
        stale_ns: int,
        new: NewPayment,
        event: OutboxEvent,
    ) -> tuple[IdempotencyClaim, PaymentRecord | None] | None:
        """``claim_and_open`` in the caller's transaction; None if the key vanished meanwhile."""
        claim = self.claim_in(c, tenant, source, key, fingerprint, owner, now_ns, stale_ns)
        if claim is None or claim.outcome != "new":
            return None if claim is None else (claim, None)
        opened = self._open_in(c, claim.key_id, new, None, event, now_ns)
        assert isinstance(opened, PaymentRecord) and opened.refid == new.refid
        return dataclasses.replace(claim, payment_id=opened.id), opened

    def _open_in(
        self,
        c: DbConnection,
        key_id: int,
        new: NewPayment,
        limit: LimitWindow | None,
        event: OutboxEvent,
        now_ns: int,
    ) -> PaymentRecord | str:
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
        row = c.execute(
            "INSERT INTO payments (refid, kind, account, asset, amount_minor, status, method, "
            "withdraw_key, address, reference, trace_id, created_ns, updated_ns) "
            f"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING {_PAYMENT_COLUMNS}",
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
        p = _payment(row)
        c.execute(
            "INSERT INTO payment_transitions VALUES (?, 1, '', ?, 'opened', ?)", (p.id, new.status, now_ns)
        )
        c.execute("UPDATE idempotency_keys SET payment_id = ? WHERE id = ?", (p.id, key_id))
        write_event(c, event, now_ns)
        assert p.version == 1 and p.status == new.status
        return p

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
            return self.transition_in(c, payment_id, from_status, to_status, reason, event, now_ns, finish)

    def transition_in(
        self,
        c: DbConnection,
        payment_id: int,
        from_status: str,
        to_status: str,
        reason: str,
        event: OutboxEvent,
        now_ns: int,
        finish: tuple[int, int, bytes] | None = None,
    ) -> PaymentRecord | None:
        """``transition`` in the caller's transaction (the group commit's savepoint)."""
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
            finish_in(c, key_id, code, body, now_ns)
        write_event(c, event, now_ns)
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
