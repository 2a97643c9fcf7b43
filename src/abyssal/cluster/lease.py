"""The leader lease of a shard's engine, held in PostgreSQL (docs/scaled-out.md, "Leader").

A lease is a row: holder, epoch, expiry by the database's clock (no two hosts' clocks are
compared). The holder renews it every ``ttl / 4``; another node takes it only once it has
expired, and taking it raises the epoch. A holder that cannot renew steps down when its own
monotonic clock says the lease may have run out, counted from before its last successful
renewal was sent, so two nodes never both believe they lead. Even so, a paused old leader may
publish a record or two late; the records are identical by determinism and readers skip a seq
they have seen, so that costs nothing but a duplicate on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

ACQUIRE = """
INSERT INTO engine_leases (shard, holder, epoch, expires_at)
VALUES (%(shard)s, %(holder)s, 1, now() + %(ttl_ms)s * interval '1 millisecond')
ON CONFLICT (shard) DO UPDATE SET
    holder = excluded.holder,
    epoch = CASE WHEN engine_leases.holder = excluded.holder THEN engine_leases.epoch
                 ELSE engine_leases.epoch + 1 END,
    expires_at = excluded.expires_at
WHERE engine_leases.holder = excluded.holder OR engine_leases.expires_at < now()
RETURNING epoch
"""
RELEASE = "UPDATE engine_leases SET expires_at = now() WHERE shard = %s AND holder = %s"
SAFETY: Final = 0.8  # step down after this share of the TTL without a renewal


class Lease:
    def __init__(self, conn: Callable[[], Any], shard: int, holder: str, ttl_s: float) -> None:
        self.conn = conn  # this thread's psycopg connection (autocommit); called for every statement
        self.shard = shard
        self.holder = holder
        self.ttl_s = ttl_s
        self.epoch = 0
        self.valid_until = 0.0  # time.monotonic() after which this node must not act as leader

    def try_hold(self) -> bool:
        """Acquire or renew (blocking). True while this node holds the lease."""
        sent = time.monotonic()
        row = (
            self.conn()
            .execute(ACQUIRE, {"shard": self.shard, "holder": self.holder, "ttl_ms": int(self.ttl_s * 1000)})
            .fetchone()
        )
        if row is None:
            self.valid_until = 0.0
            return False
        self.epoch = int(row[0])
        self.valid_until = sent + self.ttl_s * SAFETY
        return True

    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    def release(self) -> None:
        self.valid_until = 0.0
        self.conn().execute(RELEASE, (self.shard, self.holder))
