"""Operator routes for payments under /admin/payments: tokens, withdrawal keys, settling
withdrawals, business calendar, cutoff settings, limits and tiers. JSON in and out."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from abyssal.adapters import sqlite_reads as reads
from abyssal.gateway.admin import AdminError
from abyssal.gateway.payments_api import V1Error, amount_minor, payments_of
from abyssal.runtime import calendar
from abyssal.runtime import payment_records as records

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

CALENDAR_ROWS_MAX = 20_000
_RESOLVE = re.compile(r"/admin/payments/withdrawals/([A-Z0-9]{1,40})/(sent|completed|failed)")
_CUTOFF = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _s(p: dict[str, Any], name: str, chars_max: int = 64) -> str:
    value = p.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= chars_max:
        raise AdminError(422, f"{name}: a string of 1 to {chars_max} characters is required")
    return value


async def _account(exchange: Exchange, p: dict[str, Any]) -> int:
    name = _s(p, "account")
    account = await exchange.read(reads.account_by_name, exchange.store, name)
    if account is None:
        raise AdminError(404, f"account {name!r} not found")
    return int(account)


async def route(exchange: Exchange, path: str, method: str, p: dict[str, Any]) -> Any:
    try:
        svc = payments_of(exchange)
    except V1Error as err:
        raise AdminError(err.status, err.message) from None
    store, io, ins = svc.store, exchange.payment_io, exchange.instruments
    if method != "POST":
        raise AdminError(404, "unknown admin path")
    if path == "/admin/payments/tokens":
        account = await _account(exchange, p)
        token = "pay_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        await io(store.put_token, digest, account, time.time_ns())
        exchange.payment_tokens[digest] = account
        return {"account_id": account, "token": token}
    if path == "/admin/payments/withdraw-keys":
        account = await _account(exchange, p)
        asset = ins.asset(_s(p, "asset"))
        if asset is None:
            raise AdminError(422, "asset: unknown")
        wmethod = p.get("method") if isinstance(p.get("method"), str) else records.method_of(asset)
        await io(
            store.put_withdraw_key,
            account,
            asset.index,
            _s(p, "key"),
            wmethod,
            _s(p, "address", 128),
            time.time_ns(),
        )
        return {"ok": True}
    match = _RESOLVE.fullmatch(path)
    if match is not None:
        result = await svc.resolve(
            None, match.group(1), match.group(2), str(p.get("reason") or match.group(2))
        )
        if isinstance(result, str):
            raise AdminError(records.REFUSALS[result][0], records.REFUSALS[result][1])
        return records.resource(ins, result)
    if path == "/admin/payments/settings":
        return await _settings(exchange, p)
    if path == "/admin/payments/calendar":
        return await _calendar(exchange, p)
    if path == "/admin/payments/limits":
        asset = ins.asset(_s(p, "asset"))
        if asset is None:
            raise AdminError(422, "asset: unknown")
        try:
            limit = amount_minor(asset, p.get("daily_limit"))
        except V1Error as err:
            raise AdminError(422, "daily_limit: " + err.message) from None
        await io(store.set_limit, _s(p, "tier"), asset.index, limit)
        return {"ok": True}
    if path == "/admin/payments/tiers":
        await io(store.set_tier, await _account(exchange, p), _s(p, "tier"))
        return {"ok": True}
    raise AdminError(404, "unknown admin path")


async def _settings(exchange: Exchange, p: dict[str, Any]) -> Any:
    store = payments_of(exchange).store
    zone, minute, cal, auto_ms = await exchange.payment_io(store.settings)
    if "zone" in p:
        zone = _s(p, "zone")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise AdminError(422, "zone: not a known IANA time zone") from None
    if "cutoff" in p:
        m = _CUTOFF.fullmatch(_s(p, "cutoff"))
        if m is None:
            raise AdminError(422, "cutoff: HH:MM, 24-hour")
        minute = int(m.group(1)) * 60 + int(m.group(2))
    if "calendar" in p:
        cal = _s(p, "calendar")
    if "auto_settle_ms" in p:
        value = p["auto_settle_ms"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 86_400_000:
            raise AdminError(422, "auto_settle_ms: an integer from 0 (off) to 86400000")
        auto_ms = value
    await exchange.payment_io(store.set_settings, zone, minute, cal, auto_ms)
    return {
        "zone": zone,
        "cutoff": f"{minute // 60:02d}:{minute % 60:02d}",
        "calendar": cal,
        "auto_settle_ms": auto_ms,
    }


async def _calendar(exchange: Exchange, p: dict[str, Any]) -> Any:
    """{"calendar", "days": [{"day", "business", "note"}]} upserts days; {"seed_weekends":
    {"from", "to"}} adds missing days (weekends closed); {"delete": "YYYY-MM-DD"} removes one."""
    store = payments_of(exchange).store
    cal = _s(p, "calendar")
    try:
        if isinstance(p.get("delete"), str):
            await exchange.payment_io(
                store.delete_calendar_day, cal, date.fromisoformat(p["delete"]).isoformat()
            )
            return {"deleted": 1}
        rows: list[tuple[str, int, str]] = []
        seed = p.get("seed_weekends")
        if isinstance(seed, dict):
            first, last = date.fromisoformat(str(seed.get("from"))), date.fromisoformat(str(seed.get("to")))
            rows = calendar.weekend_rows(first, last)
        days = p.get("days")
        explicit = (
            [
                (
                    date.fromisoformat(str(d["day"])).isoformat(),
                    1 if d.get("business") else 0,
                    str(d.get("note", "")),
                )
                for d in days
            ]
            if isinstance(days, list)
            else []
        )
    except (ValueError, TypeError, KeyError):
        raise AdminError(422, "calendar days: ISO dates (YYYY-MM-DD)") from None
    if len(rows) + len(explicit) > CALENDAR_ROWS_MAX:
        raise AdminError(422, f"at most {CALENDAR_ROWS_MAX} days per call")
    added = await exchange.payment_io(store.put_calendar, cal, rows, False) if rows else 0
    added += await exchange.payment_io(store.put_calendar, cal, explicit, True) if explicit else 0
    return {"calendar": cal, "days": added}
