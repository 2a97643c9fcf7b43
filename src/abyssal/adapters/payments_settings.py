"""Funding settings on the Store port: business calendar, cutoff and zone, daily limits and
tiers, withdrawal keys and /v1 tokens. Every write is one transaction; reads use the thread's
connection. A mixin of SqlitePaymentStore (sqlite_payments.py), split out by concern.
"""

from __future__ import annotations

from datetime import date

from abyssal.adapters.store import Store


class FundingSettings:
    """The funding-settings part of SqlitePaymentStore (``store`` is set by the store)."""

    store: Store

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

    def token_account(self, token_sha256: str) -> int | None:
        row = (
            self.store.conn()
            .execute("SELECT account FROM payment_tokens WHERE token_sha256 = ?", (token_sha256,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def tokens(self) -> dict[str, int]:
        return {
            str(t): int(a)
            for t, a in self.store.conn().execute("SELECT token_sha256, account FROM payment_tokens")
        }
