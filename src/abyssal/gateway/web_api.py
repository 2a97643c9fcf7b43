"""The web page's own JSON API under /api/: sign-up, log-in, log-out, me, faucet and API keys.

Trading and account data go through the Kraken endpoints (/0/private/* with the session cookie and
the CSRF header, see web_session.py); this module only covers what Kraken's API has no call for.
Errors are ``{"error": {"field": "...", "message": "..."}}`` so the page can show them by the field.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

import msgspec

from abyssal.gateway import admin
from abyssal.gateway.auth import Permission
from abyssal.gateway.web_session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    Session,
    WebAccounts,
    WebError,
    accounts_of,
    cookie,
    header,
)

if TYPE_CHECKING:
    from abyssal.gateway.app import Receive, Scope, Send
    from abyssal.runtime.exchange import Exchange

API_BODY_BYTES_MAX = 16 * 1024
LABEL_CHARS_MAX = 64
KEYS_PER_USER_MAX = 20
FAUCET_USES_MAX = 3
# Sandbox faucet: what one press credits, by asset altname (assets the config lacks are skipped).
FAUCET = {"USD": "10000", "EUR": "10000", "XBT": "1", "ETH": "10", "SOL": "100", "USDT": "10000"}
PERMISSION_NAMES = admin.PERMISSION_NAMES  # the same names as `abyssal account create` and /admin/accounts


def faucet_enabled() -> bool:
    """The faucet is on in the sandbox (the default); ABYSSAL_WEB_FAUCET=off turns it off."""
    return os.environ.get("ABYSSAL_WEB_FAUCET", "on").lower() not in ("off", "0", "false", "no")


def _cookie_headers(scope: Scope, session_token: str, csrf: str, max_age_s: int) -> list[tuple[bytes, bytes]]:
    # Secure always: browsers treat http://localhost and 127.0.0.1 as secure contexts, so the cookie
    # still works on the loopback development server, and it never travels over plain HTTP elsewhere.
    common = f"Path=/; Max-Age={max_age_s}; Secure; SameSite=Strict"
    return [
        (b"set-cookie", f"{SESSION_COOKIE}={session_token}; {common}; HttpOnly".encode()),
        (b"set-cookie", f"{CSRF_COOKIE}={csrf}; {common}".encode()),
    ]


def _me(session: Session, faucet_uses: int) -> dict[str, Any]:
    return {
        "email": session.email,
        "account": session.account_name,
        "csrf": session.csrf,
        "faucet": faucet_enabled(),
        "faucet_uses_left": max(0, FAUCET_USES_MAX - faucet_uses),
    }


def _same_origin(scope: Scope) -> bool:
    """A state-changing call from another site is refused even before the cookie is looked at."""
    origin = header(scope, b"origin")
    if origin is None:
        return True
    host = header(scope, b"host") or ""
    return origin.split("://", 1)[-1] == host


async def handle_api(
    exchange: Exchange, path: str, method: str, scope: Scope, receive: Receive, send: Send
) -> None:
    from abyssal.gateway.app import read_body, send_json

    body = await read_body(receive, API_BODY_BYTES_MAX)
    extra: list[tuple[bytes, bytes]] = []
    try:
        if not exchange.opened:
            raise WebError(503, "", "The exchange is starting: try again in a moment.")
        if body is None:
            raise WebError(413, "", "The request is too large.")
        if method not in ("GET", "HEAD") and not _same_origin(scope):
            raise WebError(403, "", "Cross-site request refused.")
        payload: dict[str, Any] = {}
        if body:
            try:
                decoded = msgspec.json.decode(body)
            except msgspec.DecodeError:
                raise WebError(400, "", "The body is not JSON.") from None
            if not isinstance(decoded, dict):
                raise WebError(400, "", "The body must be a JSON object.")
            payload = decoded
        result = await _route(exchange, path, method, scope, payload, extra)
    except WebError as err:
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        if err.retry_after_s:
            headers.append((b"retry-after", str(err.retry_after_s).encode()))
        await send_json(send, err.status, {"error": {"field": err.field, "message": err.message}}, headers)
        return
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), *extra]
    await send_json(send, 200, result, headers)


async def _route(
    exchange: Exchange,
    path: str,
    method: str,
    scope: Scope,
    payload: dict[str, Any],
    extra: list[tuple[bytes, bytes]],
) -> Any:
    web = accounts_of(exchange)
    if path == "/api/signup" and method == "POST":
        token, session = await web.signup(payload.get("email"), payload.get("password"))
        extra += _cookie_headers(scope, token, session.csrf, SESSION_TTL_S)
        return _me(session, 0)
    if path == "/api/login" and method == "POST":
        client = (scope.get("client") or ("?", 0))[0]
        token, session = await web.login(payload.get("email"), payload.get("password"), str(client))
        extra += _cookie_headers(scope, token, session.csrf, SESSION_TTL_S)
        return _me(session, await _faucet_uses(web, session))
    if path == "/api/me" and method == "GET":
        session = await web.require(scope, csrf=False)
        return _me(session, await _faucet_uses(web, session))
    if path == "/api/logout" and method == "POST":
        await web.require(scope, csrf=True)
        await web.logout(cookie(scope, SESSION_COOKIE) or "")
        extra += _cookie_headers(scope, "", "", 0)
        return {"ok": True}
    if path == "/api/faucet" and method == "POST":
        return await faucet(exchange, web, await web.require(scope, csrf=True))
    if path == "/api/keys" and method == "GET":
        return await list_keys(web, await web.require(scope, csrf=False))
    if path == "/api/keys" and method == "POST":
        return await create_key(web, await web.require(scope, csrf=True), payload)
    if path.startswith("/api/keys/") and method == "DELETE":
        return await revoke_key(web, await web.require(scope, csrf=True), path[len("/api/keys/") :])
    raise WebError(404, "", "Unknown API path.")


async def _faucet_uses(web: WebAccounts, session: Session) -> int:
    def read() -> int:
        row = web.store.conn().execute("SELECT faucet_uses FROM web_users WHERE id = ?", (session.user_id,))
        return int(row.fetchone()[0])

    uses: int = await web.exchange.read(read)
    return uses


async def faucet(exchange: Exchange, web: WebAccounts, session: Session) -> Any:
    """Credit sandbox funds through the same deposit path as POST /admin/deposits."""
    if not faucet_enabled():
        raise WebError(403, "", "The faucet is off on this exchange.")

    def take() -> int:
        with web.store.transaction() as t:
            cur = t.execute(
                "UPDATE web_users SET faucet_uses = faucet_uses + 1 WHERE id = ? AND faucet_uses < ? "
                "RETURNING faucet_uses",
                (session.user_id, FAUCET_USES_MAX),
            )
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    use = await exchange.read(take)
    if use == 0:
        raise WebError(429, "", f"The faucet gives at most {FAUCET_USES_MAX} times per account.")
    credited: dict[str, str] = {}
    for altname, amount in FAUCET.items():
        asset = exchange.instruments.asset(altname)
        if asset is None:
            continue
        payload = {"account": session.account_name, "asset": altname, "amount": amount,
                   "idempotency_key": f"web-faucet-{session.user_id}-{use}-{altname}"}  # fmt: skip
        try:
            await admin.deposit(exchange, payload)
        except admin.AdminError as err:
            raise WebError(err.status, "", f"Deposit of {altname} failed: {err.message}") from None
        credited[asset.id] = amount
    return {"credited": credited, "faucet_uses_left": FAUCET_USES_MAX - use}


def _permission_names(perms: Permission) -> list[str]:
    return sorted(n for n, p in PERMISSION_NAMES.items() if perms & p)


async def list_keys(web: WebAccounts, session: Session) -> Any:
    def read() -> list[Any]:
        return list(
            web.store.conn()
            .execute(
                "SELECT key_no, api_key, label, permissions, created_ns FROM web_api_keys "
                "WHERE user_id = ? AND revoked_ns IS NULL ORDER BY key_no",
                (session.user_id,),
            )
            .fetchall()
        )

    rows = await web.exchange.read(read)
    return {"keys": [{"id": int(r[0]), "api_key": str(r[1]), "label": str(r[2]),
                      "permissions": _permission_names(Permission(int(r[3]))),
                      "created": int(r[4]) // 10**9} for r in rows]}  # fmt: skip


async def create_key(web: WebAccounts, session: Session, payload: dict[str, Any]) -> Any:
    label = payload.get("label", "")
    if not isinstance(label, str) or not 0 < len(label.strip()) <= LABEL_CHARS_MAX:
        raise WebError(422, "label", f"Name the key (1 to {LABEL_CHARS_MAX} characters).")
    names = payload.get("permissions")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n in PERMISSION_NAMES for n in names)
    ):
        raise WebError(422, "permissions", "Choose at least one permission.")
    perms = Permission(0)
    for n in names:
        perms |= PERMISSION_NAMES[n]
    now_ns = time.time_ns()

    def create() -> tuple[int, str, str]:
        c = web.store.conn()
        count = c.execute(
            "SELECT COUNT(*) FROM web_api_keys WHERE user_id = ? AND revoked_ns IS NULL", (session.user_id,)
        ).fetchone()[0]
        if int(count) >= KEYS_PER_USER_MAX:
            raise WebError(422, "label", f"At most {KEYS_PER_USER_MAX} keys per account: revoke one first.")
        api_key, secret = web.exchange.keys.create(session.account, perms, now_ns)
        key_no = web.exchange.keys.by_key[api_key].key_no
        with web.store.transaction() as t:
            t.execute(
                "INSERT INTO web_api_keys (key_no, user_id, api_key, label, permissions, created_ns) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_no, session.user_id, api_key, label.strip(), perms.value, now_ns),
            )
        return key_no, api_key, secret

    key_no, api_key, secret = await web.exchange.read(create)
    return {"id": key_no, "api_key": api_key, "api_secret": secret, "label": label.strip(),
            "permissions": _permission_names(perms), "created": now_ns // 10**9}  # fmt: skip


async def revoke_key(web: WebAccounts, session: Session, key_id: str) -> Any:
    """Revoke a page-made key: its row keeps its number (never reused) under a name nobody knows."""
    if not (key_id.isascii() and key_id.isdigit()) or len(key_id) > 18:
        raise WebError(404, "", "Unknown key.")
    key_no = int(key_id)
    now_ns = time.time_ns()
    keys = web.exchange.keys

    def revoke() -> str:
        c = web.store.conn()
        row = c.execute(
            "SELECT api_key FROM web_api_keys WHERE key_no = ? AND user_id = ? AND revoked_ns IS NULL",
            (key_no, session.user_id),
        ).fetchone()
        if row is None:
            raise WebError(404, "", "Unknown key.")
        api_key = str(row[0])
        tombstone = f"revoked-{key_no}-{secrets.token_urlsafe(24)}"
        sealed = keys.box.seal(base64.b64encode(secrets.token_bytes(64)), tombstone.encode())
        with web.store.transaction() as t:
            t.execute(
                "UPDATE api_keys SET api_key = ?, secret_sealed = ?, permissions = 0 WHERE key_no = ?",
                (tombstone, sealed, key_no),
            )
            t.execute("UPDATE web_api_keys SET revoked_ns = ? WHERE key_no = ?", (now_ns, key_no))
        return api_key

    api_key = await web.exchange.read(revoke)
    keys.by_key.pop(api_key, None)
    for token, (owner, _expires) in list(web.exchange.ws_tokens.items()):
        if owner == key_no:
            web.exchange.ws_tokens.pop(token, None)
    return {"revoked": key_no}
