"""The admin API used by the CLI: accounts and keys, sandbox deposits, modes, status.

Authenticated by a bearer token (``ABYSSAL_ADMIN_TOKEN`` or the data directory's token file).
JSON in and out; amounts are decimal strings; errors are ``{"error": "..."}`` with 4xx codes.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

import msgspec

from abyssal.adapters import sqlite_reads as reads
from abyssal.core import engine_build
from abyssal.core.messages import Deposit, Mode, Rejected, SetMode
from abyssal.gateway.auth import Permission
from abyssal.gateway.params import parse_decimal

if TYPE_CHECKING:
    from abyssal.gateway.app import Receive, Scope, Send
    from abyssal.runtime.exchange import Exchange

ADMIN_BODY_BYTES_MAX = 16 * 1024
NAME_CHARS_MAX = 64
NONCE_WINDOW_MAX = 2**62  # a width in the client's nonce units; bounded so it fits the keys table
PERMISSION_NAMES = {p.name.lower(): p for p in Permission if p.name and p != Permission.ALL}


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def handle_admin(
    exchange: Exchange, path: str, method: str, scope: Scope, receive: Receive, send: Send
) -> None:
    from abyssal.gateway.app import read_body, send_json

    body = await read_body(receive, ADMIN_BODY_BYTES_MAX)
    try:
        token = ""
        for k, v in scope["headers"]:
            if k == b"authorization":
                token = v.decode("latin-1").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(token.encode(), exchange.admin_token.encode()):
            raise AdminError(401, "invalid admin token")
        if body is None:
            raise AdminError(413, "body too large")
        payload: dict[str, Any] = {}
        if body:
            try:
                decoded = msgspec.json.decode(body)
            except msgspec.DecodeError:
                raise AdminError(400, "body is not JSON") from None
            if not isinstance(decoded, dict):
                raise AdminError(400, "body must be a JSON object")
            payload = decoded
        result = await _route(exchange, path, method, payload)
    except AdminError as err:
        await send_json(send, err.status, {"error": err.message})
        return
    await send_json(send, 200, result)


async def _route(exchange: Exchange, path: str, method: str, payload: dict[str, Any]) -> Any:
    if path == "/admin/accounts" and method == "POST":
        return await create_account(exchange, payload)
    if path == "/admin/deposits" and method == "POST":
        return await deposit(exchange, payload)
    if path == "/admin/status" and method == "GET":
        return await status(exchange)
    if path == "/admin/mode" and method == "POST":
        return await set_mode(exchange, payload)
    if path.startswith("/admin/payments/"):
        from abyssal.gateway import payments_admin

        return await payments_admin.route(exchange, path, method, payload)
    if path == "/admin/reset-nonce" and method == "POST":
        ok = await exchange.read(exchange.keys.reset_nonce, _str(payload, "api_key"))
        if not ok:
            raise AdminError(404, "unknown api_key")
        return {"ok": True}
    raise AdminError(404, "unknown admin path")


def _str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= NAME_CHARS_MAX:
        raise AdminError(
            422, f"{name}: a non-empty string of at most {NAME_CHARS_MAX} characters is required"
        )
    return value


async def create_account(exchange: Exchange, payload: dict[str, Any]) -> Any:
    name = _str(payload, "name")
    perms = Permission.ALL
    names = payload.get("permissions")
    if names is not None:
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n in PERMISSION_NAMES for n in names
        ):
            raise AdminError(422, f"permissions: a list of {sorted(PERMISSION_NAMES)}")
        perms = Permission(0)
        for n in names:
            perms |= PERMISSION_NAMES[n]
    window = payload.get("nonce_window", 0)
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= NONCE_WINDOW_MAX:
        raise AdminError(422, f"nonce_window: an integer from 0 to {NONCE_WINDOW_MAX}")
    now = time.time_ns()

    def create() -> tuple[int, str, str]:
        store = exchange.store
        if reads.account_by_name(store, name) is not None:
            raise AdminError(409, f"account {name!r} exists")
        account = store.create_account(name, now)
        api_key, secret = exchange.keys.create(account, perms, now, nonce_window=window)
        return account, api_key, secret

    account, api_key, secret = await exchange.read(create)
    return {"account_id": account, "name": name, "api_key": api_key, "api_secret": secret,
            "permissions": sorted(n for n, p in PERMISSION_NAMES.items() if perms & p),
            "nonce_window": window}  # fmt: skip


async def deposit(exchange: Exchange, payload: dict[str, Any]) -> Any:
    """A sandbox faucet through the payments capture path (runtime/payments.py): idempotent by
    (account, "admin", idempotency_key) at the database's unique index, like every producer."""
    from abyssal.gateway.payments_api import V1Error, payments_of

    name = _str(payload, "account")
    asset = exchange.instruments.asset(_str(payload, "asset"))
    if asset is None:
        raise AdminError(422, "asset: unknown")
    raw = payload.get("amount")
    amount = parse_decimal(raw) if isinstance(raw, str) else None  # a JSON number is refused
    minor = None if amount is None else asset.minor_of(amount)
    if amount is None or minor is None:
        raise AdminError(
            422,
            f"amount: a positive decimal string with at most {asset.decimals} decimals, "
            "below 2**63 minor units",
        )
    key = payload.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 255):
        raise AdminError(422, "idempotency_key: a string of 1 to 255 characters")
    account = await exchange.read(reads.account_by_name, exchange.store, name)
    if account is None:
        raise AdminError(404, f"account {name!r} not found")
    key = key or f"admin-{time.time_ns()}-{secrets.token_hex(4)}"
    try:
        svc = payments_of(exchange)
    except V1Error:  # no payments adapter for this database yet: the engine's Deposit directly
        return await _direct_deposit(exchange, account, asset.index, minor, key, str(amount))
    answer = await svc.capture_deposit(account, "admin", key, asset.index, minor)
    body = msgspec.json.decode(answer.body)
    if answer.status >= 300:
        error = body.get("error", {})
        code = error.get("code")
        message = (
            "idempotency_key was used with different parameters"
            if code == "idempotency_key_mismatch"
            else str(error.get("message"))
        )
        raise AdminError(answer.status, message)
    return {"refid": body["id"], "asset": asset.id, "amount": str(amount), "replayed": answer.replayed}


_direct_lock = asyncio.Lock()


async def _direct_deposit(
    exchange: Exchange, account: int, asset: int, amount_minor: int, key: str, text: str
) -> Any:
    """The faucet for stores without a payments adapter: idempotent through the ledger's refid."""
    from abyssal.runtime.payment_records import make_refid

    refid = make_refid(account, "admin", key)
    asset_id = exchange.instruments.assets[asset].id

    def existing() -> tuple[int, int, int] | None:
        row = (
            exchange.store.conn()
            .execute(
                "SELECT account, asset, amount FROM ledger "
                "WHERE refid = ? AND type = 'deposit' AND account >= 0",
                (refid,),
            )
            .fetchone()
        )
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    async with _direct_lock:  # one check-then-act at a time: the refid check cannot race
        seen = await exchange.read(existing)
        if seen is not None:
            if seen != (account, asset, amount_minor):
                raise AdminError(422, "idempotency_key was used with different parameters")
            return {"refid": refid, "asset": asset_id, "amount": text, "replayed": True}
        events = await exchange.execute(Deposit(time.time_ns(), account, asset, amount_minor, refid))
    if any(isinstance(e, Rejected) for e in events):
        raise AdminError(422, "deposit refused")
    return {"refid": refid, "asset": asset_id, "amount": text, "replayed": False}


async def set_mode(exchange: Exchange, payload: dict[str, Any]) -> Any:
    target = _str(payload, "pair")
    mode_name = _str(payload, "mode")
    if mode_name not in Mode.__members__:
        raise AdminError(422, f"mode: one of {sorted(Mode.__members__)}")
    pair_index = -1
    if target != "system":
        pair = exchange.instruments.pair(target)
        if pair is None:
            raise AdminError(422, "pair: unknown")
        pair_index = pair.index
    events = await exchange.execute(SetMode(ts_ns=time.time_ns(), pair=pair_index, mode=int(Mode[mode_name])))
    if any(isinstance(e, Rejected) for e in events):
        raise AdminError(422, "mode change refused")
    return {"pair": target, "mode": mode_name}


async def status(exchange: Exchange) -> Any:
    def gather() -> dict[str, Any]:
        c = exchange.store.conn()
        last = exchange.store.last_seq()
        offsets = dict(c.execute("SELECT name, seq FROM projection_offsets").fetchall())
        open_orders = c.execute("SELECT COUNT(*) FROM orders WHERE status < 2").fetchone()[0]  # orders_open
        totals = c.execute(
            "SELECT asset, SUM(total), SUM(held) FROM balances WHERE account >= 0 GROUP BY asset"
        ).fetchall()
        return {
            "seq": last,
            "projections": {n: {"seq": s, "lag": last - s} for n, s in offsets.items()},
            "open_orders": open_orders,
            "balances": {
                exchange.instruments.assets[a].id: {
                    "total": exchange.instruments.assets[a].fmt(t),  # plain digits, never 0E-10
                    "held": exchange.instruments.assets[a].fmt(h),
                }
                for a, t, h in totals
            },
            "audit": reads.audit(exchange.store),
        }

    result = await exchange.read(gather)
    result["intake_queue_depth"] = exchange.sequencer.queue_depth
    result["engine_build"] = engine_build()
    result["uptime_s"] = (time.time_ns() - exchange.started_ns) // 10**9
    return result
