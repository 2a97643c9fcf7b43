"""The notifications consumer's adapter: webhooks, dedupe by event id, delivery records.
It runs on the Store port, so on SQLite and PostgreSQL alike.

``record`` is the consumer's one durable write per message: the dedupe row and the delivery rows
commit together, so a redelivered event finds its dedupe row and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from abyssal.adapters.store import Store
from abyssal.ports import BusMessage
from abyssal.runtime import faults

IN_FLIGHT = "attempt in flight"  # last_error while a call is under way


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    payload: bytes
    attempts: int


class SqliteWebhookStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add_webhook(self, account: int, url: str, secret: str, now_ns: int) -> int:
        with self.store.transaction() as c:
            row = c.execute(
                "INSERT INTO webhooks (account, url, secret, created_ns) VALUES (?,?,?,?) RETURNING id",
                (account, url, secret, now_ns),
            ).fetchone()
            return int(row[0])

    def webhooks(self, account: int) -> list[tuple[int, str, int]]:
        """(id, url, created_ns); secrets are shown once, at registration."""
        return [
            (int(i), str(u), int(t))
            for i, u, t in self.store.conn().execute(
                "SELECT id, url, created_ns FROM webhooks WHERE account = ? ORDER BY id", (account,)
            )
        ]

    def record(self, consumer: str, message: BusMessage, account: int, now_ns: int) -> int:
        """Dedupe and fan out in one transaction; returns the deliveries created (0: seen before).

        An account without webhooks costs no write (a read decides): there is nothing to fan
        out, so nothing a redelivery could duplicate.
        """
        conn = self.store.conn()
        hooked = conn.execute("SELECT 1 FROM webhooks WHERE account = ? LIMIT 1", (account,)).fetchone()
        if hooked is None:
            return 0
        with self.store.transaction() as c:
            fresh = c.execute(
                "INSERT INTO consumed_events VALUES (?,?,?) ON CONFLICT DO NOTHING RETURNING 1",
                (consumer, message.event_id, now_ns),
            ).fetchone()
            if fresh is None:
                return 0
            cur = c.execute(
                "INSERT INTO webhook_deliveries (webhook_id, account, event_id, event_type, payload, status, "
                "next_attempt_ns, created_ns) SELECT id, account, ?, ?, ?, 'pending', ?, ? FROM webhooks "
                "WHERE account = ?",
                (message.event_id, message.event_type, message.payload, now_ns, now_ns, account),
            )
            faults.point("notifications.before_commit")
            return int(cur.rowcount)

    # -- the version gate's park -------------------------------------------------------------
    def park(self, consumer: str, message: BusMessage, reason: str, now_ns: int) -> bool:
        """Keep an event the consumer cannot read yet; False if it was parked already."""
        m = message
        with self.store.transaction() as c:
            row = c.execute(
                "INSERT INTO parked_events VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING 1",
                (consumer, m.event_id, m.topic, m.key, m.event_type, m.schema_version, m.payload, m.trace_id,
                 reason[:500], now_ns),
            ).fetchone()  # fmt: skip
        return row is not None

    def parked(self, consumer: str, limit: int) -> list[BusMessage]:
        rows = self.store.conn().execute(
            "SELECT topic, aggregate, event_id, event_type, schema_version, payload, trace_id "
            "FROM parked_events WHERE consumer = ? ORDER BY parked_ns, event_id LIMIT ?",
            (consumer, limit),
        )
        return [BusMessage(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), bytes(r[5]), str(r[6]))
                for r in rows]  # fmt: skip

    def parked_reasons(self, consumer: str) -> dict[str, str]:
        """event id -> why it is parked (operators' view)."""
        rows = self.store.conn().execute(
            "SELECT event_id, reason FROM parked_events WHERE consumer = ?", (consumer,)
        )
        return {str(e): str(r) for e, r in rows}

    def unpark(self, consumer: str, event_id: str) -> None:
        with self.store.transaction() as c:
            c.execute("DELETE FROM parked_events WHERE consumer = ? AND event_id = ?", (consumer, event_id))

    def due(self, now_ns: int, limit: int, exclude: set[int]) -> list[Delivery]:
        rows = self.store.conn().execute(
            "SELECT d.id, d.webhook_id, w.url, w.secret, d.event_id, d.event_type, d.payload, d.attempts "
            "FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
            "WHERE d.status = 'pending' AND d.next_attempt_ns <= ? ORDER BY d.next_attempt_ns, d.id LIMIT ?",
            (now_ns, limit + len(exclude)),
        )
        out = [
            Delivery(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), bytes(r[6]), int(r[7]))
            for r in rows
        ]
        return [d for d in out if d.id not in exclude][:limit]

    def begin_attempt(self, delivery_id: int, retry_at_ns: int) -> None:
        """Recorded before the call: a crash mid-call retries at ``retry_at_ns``, never loses it."""
        with self.store.transaction() as c:
            c.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_ns = ?, last_error = ? "
                "WHERE id = ? AND status = 'pending'",
                (retry_at_ns, IN_FLIGHT, delivery_id),
            )

    def resume_interrupted(self, now_ns: int) -> int:
        """Calls cut short by a crash of the previous process are due again at once.

        One notifier runs per database, so at its start no call can still be in flight.
        """
        with self.store.transaction() as c:
            cur = c.execute(
                "UPDATE webhook_deliveries SET next_attempt_ns = ? "
                "WHERE status = 'pending' AND last_error = ? AND next_attempt_ns > ?",
                (now_ns, IN_FLIGHT, now_ns),
            )
            return int(cur.rowcount)

    def delivered(self, delivery_id: int, now_ns: int) -> None:
        with self.store.transaction() as c:
            c.execute(
                "UPDATE webhook_deliveries SET status = 'delivered', delivered_ns = ?, last_error = '' "
                "WHERE id = ? AND status = 'pending'",
                (now_ns, delivery_id),
            )

    def failed(self, delivery_id: int, error: str, retry_at_ns: int | None) -> None:
        """Another try at ``retry_at_ns``, or the dead-letter state when it is None."""
        with self.store.transaction() as c:
            if retry_at_ns is None:
                c.execute(
                    "UPDATE webhook_deliveries SET status = 'dead', last_error = ? "
                    "WHERE id = ? AND status = 'pending'",
                    (error[:500], delivery_id),
                )
            else:
                c.execute(
                    "UPDATE webhook_deliveries SET next_attempt_ns = ?, last_error = ? "
                    "WHERE id = ? AND status = 'pending'",
                    (retry_at_ns, error[:500], delivery_id),
                )

    def deliveries(self, account: int, status: str | None, limit: int) -> list[dict[str, object]]:
        sql = (
            "SELECT id, webhook_id, event_id, event_type, status, attempts, last_error, created_ns, "
            "delivered_ns FROM webhook_deliveries WHERE account = ?"
        )
        args: list[object] = [account]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        names = (
            "id",
            "webhook_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_error",
            "created_ns",
            "delivered_ns",
        )
        rows = self.store.conn().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(names, r, strict=True)) for r in rows]
