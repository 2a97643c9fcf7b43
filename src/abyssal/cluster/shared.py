"""What stateless gateways share through PostgreSQL: nonces, keys, WebSocket tokens, call counters.

Every check is one statement (or one short transaction) on the gateway's read pool, so a
nonce accepted by one gateway is refused by all others, a key or token made on one works on
all, and a client's REST call counter is one counter whichever gateway it reaches
(docs/scaled-out.md, "Stateless gateways", has the measurements behind choosing PostgreSQL).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from abyssal.adapters.store import Store

STRICT_NONCE: Final = "UPDATE api_keys SET last_nonce = %s WHERE key_no = %s AND last_nonce < %s"
LAST_NONCE: Final = "SELECT last_nonce FROM api_keys WHERE key_no = %s FOR UPDATE"
# Kraken's call counter (gateway/ratelimit.py), decayed by elapsed time: a call that would take it
# over the maximum is refused and pins it at the maximum
_DECAYED = "GREATEST(0, r.level_micro - GREATEST(0, %(now)s - r.at_ns) / 1000 * %(decay)s / 1000000)"
SPEND: Final = f"""
INSERT INTO shared_rate AS r (name, level_micro, at_ns, refused) VALUES (%(name)s, %(cost)s, %(now)s, false)
ON CONFLICT (name) DO UPDATE SET
    level_micro = CASE WHEN {_DECAYED} + %(cost)s <= %(max)s THEN {_DECAYED} + %(cost)s
                       ELSE GREATEST({_DECAYED}, %(max)s) END,
    refused = {_DECAYED} + %(cost)s > %(max)s,
    at_ns = GREATEST(r.at_ns, %(now)s)
RETURNING r.refused
"""

# Kraken's trading counter (gateway/ratelimit.py TradingCounter): the fixed cost is paid even when
# the action is refused; the age cost only when it is allowed
CHARGE: Final = f"""
INSERT INTO shared_rate AS r (name, level_micro, at_ns, refused)
VALUES (%(name)s, CASE WHEN %(fixed)s + %(age)s <= %(max)s THEN %(fixed)s + %(age)s ELSE %(fixed)s END,
        %(now)s, %(fixed)s + %(age)s > %(max)s)
ON CONFLICT (name) DO UPDATE SET
    level_micro = CASE WHEN {_DECAYED} + %(fixed)s + %(age)s <= %(max)s THEN {_DECAYED} + %(fixed)s + %(age)s
                       ELSE {_DECAYED} + %(fixed)s END,
    refused = {_DECAYED} + %(fixed)s + %(age)s > %(max)s,
    at_ns = GREATEST(r.at_ns, %(now)s)
RETURNING r.refused
"""


class SharedState:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _raw(self) -> Any:
        return self.store.conn().raw  # type: ignore[attr-defined]

    def check_nonce(self, key_no: int, nonce: int, window: int) -> bool:
        """Kraken's nonce rule across gateways (blocking): above the last, or, with a window,
        within it and never seen before. Exactly one of two concurrent equal nonces passes."""
        raw = self._raw()
        if window <= 0:
            return bool(raw.execute(STRICT_NONCE, (nonce, key_no, nonce)).rowcount == 1)
        with raw.transaction():
            row = raw.execute(LAST_NONCE, (key_no,)).fetchone()
            if row is None:
                return False
            last = int(row[0])
            if nonce <= last - window:
                return False
            fresh = raw.execute(
                "INSERT INTO shared_nonces VALUES (%s, %s) ON CONFLICT DO NOTHING", (key_no, nonce)
            ).rowcount == 1  # fmt: skip
            if fresh and nonce > last:
                raw.execute("UPDATE api_keys SET last_nonce = %s WHERE key_no = %s", (nonce, key_no))
                raw.execute("DELETE FROM shared_nonces WHERE key_no = %s AND nonce <= %s",
                            (key_no, nonce - window))  # fmt: skip
            return bool(fresh)

    def reset_nonces(self, key_no: int) -> None:
        self._raw().execute("DELETE FROM shared_nonces WHERE key_no = %s", (key_no,))

    def put_ws_token(self, token: str, key_no: int, expires_ns: int) -> None:
        self._raw().execute(
            "INSERT INTO shared_ws_tokens VALUES (%s, %s, %s) ON CONFLICT (token_sha256) DO UPDATE "
            "SET expires_ns = excluded.expires_ns",
            (hashlib.sha256(token.encode()).digest(), key_no, expires_ns),
        )

    def ws_token(self, token: str) -> tuple[int, int] | None:
        row = (
            self._raw()
            .execute(
                "SELECT key_no, expires_ns FROM shared_ws_tokens WHERE token_sha256 = %s",
                (hashlib.sha256(token.encode()).digest(),),
            )
            .fetchone()
        )
        return None if row is None else (int(row[0]), int(row[1]))

    def spend(self, name: str, cost_micro: int, max_micro: int, decay_micro_per_s: int, now_ns: int) -> bool:
        """Spend from a shared decaying counter (blocking); False when it would exceed ``max``."""
        row = (
            self._raw()
            .execute(
                SPEND,
                {
                    "name": name,
                    "cost": cost_micro,
                    "now": now_ns,
                    "decay": decay_micro_per_s,
                    "max": max_micro,
                },
            )
            .fetchone()
        )
        return row is not None and not bool(row[0])

    def charge(self, name: str, fixed_micro: int, age_micro: int, max_micro: int, decay_micro_per_s: int,
               now_ns: int) -> bool:  # fmt: skip
        """A trading-counter charge (blocking); False when refused (the fixed part is paid anyway)."""
        params = {"name": name, "fixed": fixed_micro, "age": age_micro, "max": max_micro,
                  "decay": decay_micro_per_s, "now": now_ns}  # fmt: skip
        row = self._raw().execute(CHARGE, params).fetchone()
        return row is not None and not bool(row[0])

    def projected_seq(self) -> int:
        row = self._raw().execute("SELECT seq FROM projection_offsets WHERE name = 'ledger'").fetchone()
        return 0 if row is None else int(row[0])
