"""People on the web page: sign-up, log-in with argon2id, cookie sessions, CSRF and login throttling.

A session stands in for an API key on ``/0/private/*`` (docs/adr/0007-web-sessions.md): each user has
one hidden *session key* in ``api_keys`` (its secret is never shown), and a request that carries the
session cookie and the matching ``X-CSRF-Token`` header runs the same handler as a signed one, with a
``Ctx`` built on that key. Users, sessions and page-made keys live in SQLite (migration 3).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from abyssal.adapters.sqlite import SqliteStore
from abyssal.gateway.auth import PERMISSION_DENIED, Permission, is_permitted
from abyssal.gateway.bodies import parse_body
from abyssal.gateway.context import Ctx
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.params import ParamError, Params

if TYPE_CHECKING:
    from abyssal.gateway.app import Scope
    from abyssal.runtime.exchange import Exchange

SESSION_COOKIE = "abyssal_session"
CSRF_COOKIE = "abyssal_csrf"
CSRF_HEADER = b"x-csrf-token"
SESSION_TTL_S = 7 * 24 * 3600
SESSIONS_CACHED_MAX = 10_000
EMAIL_CHARS_MAX = 254
PASSWORD_CHARS_MIN = 10
PASSWORD_CHARS_MAX = 256
LOGIN_FAILURES_MAX = 5  # per email and per client address, within the window
LOGIN_WINDOW_S = 15 * 60
THROTTLE_ENTRIES_MAX = 50_000
SESSION_INVALID = "ESession:Invalid session"
CSRF_INVALID = "ESession:Invalid CSRF token"
# What a browser session may do on /0/private: everything but moving money out of the exchange.
SESSION_PERMISSIONS = Permission.ALL & ~Permission.WITHDRAW & ~Permission.DEPOSIT
# Funding calls a session may make on top of its key's permissions (ADR 0007, "Funding"): reading
# addresses, methods, limits and statuses, and cancelling (which only returns money). ``Withdraw``
# is granted too, but only with the account password re-entered in the ``password`` field.
SESSION_FUNDING = frozenset(
    {
        "DepositMethods", "DepositAddresses", "DepositStatus", "WithdrawMethods", "WithdrawAddresses",
        "WithdrawInfo", "WithdrawStatus", "WithdrawCancel", "Withdraw",
    }
)  # fmt: skip
STEP_UP_ENDPOINTS = frozenset({"Withdraw"})
PASSWORD_INVALID = "ESession:Invalid password"
PASSWORD_THROTTLED = "ESession:Too many password attempts"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class WebError(Exception):
    """A refusal shown to a person: an HTTP status, the form field it concerns ("" for none), text."""

    def __init__(self, status: int, field: str, message: str, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    email: str
    account: int
    account_name: str
    csrf: str
    expires_ns: int
    key: ApiKey  # the hidden session key: what /0/private handlers see as ``ctx.key``


class LoginThrottle:
    """Failed log-ins per email and per client address in a sliding window, with a bounded table."""

    def __init__(self, failures_max: int, window_s: int, entries_max: int) -> None:
        assert failures_max > 0 and window_s > 0 and entries_max > 0
        self.failures_max = failures_max
        self.window_ns = window_s * 10**9
        self.entries_max = entries_max
        self._failures: OrderedDict[str, deque[int]] = OrderedDict()

    def retry_after_s(self, names: list[str], now_ns: int) -> int:
        """0 when a try is allowed; else the seconds until the oldest failure leaves the window."""
        wait_ns = 0
        for name in names:
            times = self._failures.get(name)
            while times and times[0] <= now_ns - self.window_ns:
                times.popleft()
            if times is not None and len(times) >= self.failures_max:
                wait_ns = max(wait_ns, times[0] + self.window_ns - now_ns)
        assert wait_ns >= 0
        return -(-wait_ns // 10**9)

    def failed(self, names: list[str], now_ns: int) -> None:
        for name in names:
            times = self._failures.setdefault(name, deque(maxlen=self.failures_max))
            times.append(now_ns)
            self._failures.move_to_end(name)
        while len(self._failures) > self.entries_max:
            self._failures.popitem(last=False)

    def succeeded(self, names: list[str]) -> None:
        for name in names:
            self._failures.pop(name, None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def cookie(scope: Scope, name: str) -> str | None:
    """One cookie's value from the request's Cookie header(s)."""
    for k, v in scope["headers"]:
        if k != b"cookie":
            continue
        for part in v.decode("latin-1").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return str(value)
    return None


def header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


def check_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()) or len(email) > EMAIL_CHARS_MAX:
        raise WebError(422, "email", "Enter an email address such as name@example.com.")
    return email.strip().lower()


def check_password(password: object) -> str:
    if not isinstance(password, str) or not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise WebError(
            422, "password", f"Use {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters for the password."
        )
    return password


class WebAccounts:
    """Users and sessions of one exchange; blocking work runs on the exchange's reader pool."""

    def __init__(self, exchange: Exchange) -> None:
        if not isinstance(exchange.store, SqliteStore):
            raise WebError(503, "", "Web accounts need the SQLite store.")
        self.exchange = exchange
        self.store: SqliteStore = exchange.store
        self.hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
        self.throttle = LoginThrottle(LOGIN_FAILURES_MAX, LOGIN_WINDOW_S, THROTTLE_ENTRIES_MAX)
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()
        self._dummy_hash = ""  # made on first use, off the event loop (see _verify)

    # -- sign-up and log-in --------------------------------------------------------------------

    async def signup(self, email: object, password: object) -> tuple[str, Session]:
        address, secret = check_email(email), check_password(password)
        password_hash = await self.exchange.read(self.hasher.hash, secret)
        user_id = await self.exchange.read(self._create_user, address, password_hash, time.time_ns())
        opened: tuple[str, Session] = await self.exchange.read(self._open_session, user_id, time.time_ns())
        return opened

    def _create_user(self, email: str, password_hash: str, now_ns: int) -> int:
        c = self.store.conn()
        if c.execute("SELECT 1 FROM web_users WHERE email = ?", (email,)).fetchone() is not None:
            raise WebError(409, "email", "An account with this email exists: log in instead.")
        name = f"web-{secrets.token_hex(8)}"
        account = self.store.create_account(name, now_ns)
        api_key, _secret = self.exchange.keys.create(account, SESSION_PERMISSIONS, now_ns)
        key_no = self.exchange.keys.by_key[api_key].key_no
        with self.store.transaction() as t:
            cur = t.execute(
                "INSERT INTO web_users (email, password_hash, account, session_key_no, created_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (email, password_hash, account, key_no, now_ns),
            )
            user_id = int(cur.lastrowid or 0)
        assert user_id > 0
        return user_id

    async def login(self, email: object, password: object, client: str) -> tuple[str, Session]:
        if not isinstance(email, str) or not isinstance(password, str) or len(password) > PASSWORD_CHARS_MAX:
            raise WebError(422, "password", "Enter your email and password.")
        address = email.strip().lower()[:EMAIL_CHARS_MAX]
        names = [f"email:{address}", f"client:{client}"]
        now_ns = time.time_ns()
        wait_s = self.throttle.retry_after_s(names, now_ns)
        if wait_s > 0:
            raise WebError(429, "password", f"Too many failed log-ins: try again in {wait_s} s.", wait_s)
        row = await self.exchange.read(self._user_by_email, address)
        stored = None if row is None else str(row[1])
        ok = await self.exchange.read(self._verify, stored, password)
        if row is None or not ok:
            self.throttle.failed(names, now_ns)
            raise WebError(401, "password", "Wrong email or password.")
        self.throttle.succeeded(names)
        opened: tuple[str, Session] = await self.exchange.read(
            self._open_session, int(row[0]), time.time_ns()
        )
        return opened

    def _verify(self, stored: str | None, password: str) -> bool:
        if stored is None:  # an unknown email costs one verification too, so timing tells nothing
            if not self._dummy_hash:
                self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
            stored = self._dummy_hash
            self._verify(stored, password)
            return False
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerificationError, InvalidHashError):
            return False

    async def confirm_password(self, session: Session, password: object) -> str | None:
        """Step-up for a withdrawal: None when ``password`` is the session user's, else the error.

        Failures count in the log-in throttle under the user's email, so guessing here is as slow
        as guessing at the log-in form (and locks both)."""
        names = [f"email:{session.email}"]
        now_ns = time.time_ns()
        if self.throttle.retry_after_s(names, now_ns) > 0:
            return PASSWORD_THROTTLED
        if not isinstance(password, str) or not password or len(password) > PASSWORD_CHARS_MAX:
            return PASSWORD_INVALID
        row = await self.exchange.read(self._user_by_email, session.email)
        ok = await self.exchange.read(self._verify, None if row is None else str(row[1]), password)
        if row is None or int(row[0]) != session.user_id or not ok:
            self.throttle.failed(names, now_ns)
            return PASSWORD_INVALID
        return None

    def _user_by_email(self, email: str) -> Any:
        return (
            self.store.conn()
            .execute("SELECT id, password_hash FROM web_users WHERE email = ?", (email,))
            .fetchone()
        )

    def _open_session(self, user_id: int, now_ns: int) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires_ns = now_ns + SESSION_TTL_S * 10**9
        with self.store.transaction() as t:
            t.execute(
                "INSERT INTO web_sessions (token_sha256, user_id, csrf, created_ns, expires_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (_digest(token), user_id, csrf, now_ns, expires_ns),
            )
        session = self._load_session(_digest(token), now_ns)
        assert session is not None and session.user_id == user_id
        return token, session

    async def logout(self, token: str) -> None:
        digest = _digest(token)
        self._sessions.pop(digest, None)

        def delete() -> None:
            with self.store.transaction() as t:
                t.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", (digest,))

        await self.exchange.read(delete)

    # -- sessions ------------------------------------------------------------------------------

    async def session(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, expired, or its key is gone)."""
        if not token:
            return None
        digest = _digest(token)
        now_ns = time.time_ns()
        session = self._sessions.get(digest)
        if session is None:
            session = await self.exchange.read(self._load_session, digest, now_ns)
            if session is None:
                return None
            self._sessions[digest] = session
            while len(self._sessions) > SESSIONS_CACHED_MAX:
                self._sessions.popitem(last=False)
        if session.expires_ns <= now_ns:
            self._sessions.pop(digest, None)
            return None
        return session

    def _load_session(self, digest: bytes, now_ns: int) -> Session | None:
        row = (
            self.store.conn()
            .execute(
                "SELECT s.user_id, u.email, u.account, a.name, s.csrf, s.expires_ns, k.api_key "
                "FROM web_sessions s JOIN web_users u ON u.id = s.user_id "
                "JOIN accounts a ON a.id = u.account JOIN api_keys k ON k.key_no = u.session_key_no "
                "WHERE s.token_sha256 = ? AND s.expires_ns > ?",
                (digest, now_ns),
            )
            .fetchone()
        )
        if row is None:
            return None
        key = self.exchange.keys.by_key.get(str(row[6]))
        if key is None:
            return None
        return Session(int(row[0]), str(row[1]), int(row[2]), str(row[3]), str(row[4]), int(row[5]), key)

    async def require(self, scope: Scope, *, csrf: bool) -> Session:
        """The request's session; with ``csrf`` the X-CSRF-Token header must equal the session's."""
        session = await self.session(cookie(scope, SESSION_COOKIE))
        if session is None:
            raise WebError(401, "", "Log in first.")
        if csrf and not csrf_matches(session, header(scope, CSRF_HEADER)):
            raise WebError(403, "", "The page's security token is missing or stale: reload the page.")
        return session

    def next_nonce(self, key: ApiKey) -> int:
        """A nonce for the session key: it is recorded like any key's, so it must only go up."""
        nonce = max(time.time_ns(), self.exchange.keys.nonces.last(key.api_key) + 1)
        accepted = self.exchange.keys.nonces.check_and_record(key.api_key, nonce)
        assert accepted, "a nonce above the last one is always accepted"
        return nonce


def csrf_matches(session: Session, provided: str | None) -> bool:
    return provided is not None and hmac.compare_digest(session.csrf.encode(), provided.encode("latin-1"))


_ACCOUNTS: weakref.WeakKeyDictionary[Exchange, WebAccounts] = weakref.WeakKeyDictionary()


def accounts_of(exchange: Exchange) -> WebAccounts:
    """The exchange's WebAccounts, made on first use (after the exchange has opened)."""
    found = _ACCOUNTS.get(exchange)
    if found is None:
        found = _ACCOUNTS[exchange] = WebAccounts(exchange)
    return found


def has_session_cookie(scope: Scope) -> bool:
    return cookie(scope, SESSION_COOKIE) is not None


async def authenticate_private(
    exchange: Exchange, name: str, scope: Scope, body: bytes
) -> tuple[Ctx, Params]:
    """Session cookie + CSRF header in place of API-Key/API-Sign, with Kraken's error strings."""
    from abyssal.gateway.app import BODY_BYTES_MAX

    try:
        web = accounts_of(exchange)
    except WebError:
        raise ParamError(SESSION_INVALID) from None
    session = await web.session(cookie(scope, SESSION_COOKIE))
    if session is None:
        raise ParamError(SESSION_INVALID)
    if not csrf_matches(session, header(scope, CSRF_HEADER)):
        raise ParamError(CSRF_INVALID)
    params = parse_body(body, header(scope, b"content-type"), body_bytes_max=BODY_BYTES_MAX)
    key = session.key
    if name in SESSION_FUNDING:
        if name in STEP_UP_ENDPOINTS:
            params = dict(params)
            refused = await web.confirm_password(session, params.pop("password", None))
            if refused is not None:
                raise ParamError(refused)
        # the handler sees the session key with the funding permissions for this one call
        key = replace(key, permissions=key.permissions | Permission.WITHDRAW | Permission.DEPOSIT)
    elif not is_permitted(key.permissions, name):
        raise ParamError(PERMISSION_DENIED)
    return Ctx(exchange, key, time.time_ns(), web.next_nonce(session.key)), params
