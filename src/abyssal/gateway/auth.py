"""API-key authentication: Kraken's request signature, nonces, secrets at rest, OTP and permissions.

Check order for a private call (doc §2.1), with the string the REST layer answers:
unknown or malformed ``API-Key`` -> ``EAPI:Invalid key``; ``verify`` false -> ``EAPI:Invalid signature``;
``NonceTracker.check_and_record`` false -> ``EAPI:Invalid nonce``; ``check_otp`` false or
``is_permitted`` false -> ``EGeneral:Permission denied``.

The OTP refusal is our choice (Kraken's exact string is unverified): ``EGeneral:Permission denied`` is
mapped by every client (ccxt ``PermissionDenied``, python-kraken-sdk ``KrakenPermissionDeniedError``)
and says what happened without revealing whether the key or the password was wrong.

Everything here is pure except ``sign``/``generate_key_pair``/``SecretBox.seal`` (randomness) and
``load_or_create_master_key`` (one small file).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import heapq
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# fmt: off
__all__ = [
    "API_KEY_CHARS", "ENDPOINT_PERMISSION", "INVALID_KEY", "INVALID_SIGNATURE", "MASTER_KEY_BYTES",
    "PERMISSION_DENIED", "SECRET_BYTES", "SIGNATURE_BYTES", "NonceTracker", "Permission", "SecretBox",
    "UnsealError", "check_otp", "decode_secret", "generate_key_pair", "is_permitted", "keyed_hmac",
    "load_or_create_master_key", "sign", "verify",
]
# fmt: on

INVALID_KEY = "EAPI:Invalid key"
INVALID_SIGNATURE = "EAPI:Invalid signature"
PERMISSION_DENIED = "EGeneral:Permission denied"  # also the answer to a wrong or missing otp

API_KEY_CHARS = 56  # Kraken's public keys are 56 characters
SECRET_BYTES = 64  # Kraken's secrets are base64 of 64 bytes
SIGNATURE_BYTES = 64  # HMAC-SHA512
MASTER_KEY_BYTES = 32  # AES-256-GCM
NONCES_SEEN_MAX = 1_024  # per key, for the nonce window

# --- signature ------------------------------------------------------------------------------------


def decode_secret(secret_b64: str) -> bytes:
    """The raw HMAC key; raises ``ValueError`` for text that is not strict base64."""
    return base64.b64decode(secret_b64, validate=True)


def keyed_hmac(secret: bytes) -> hmac.HMAC:
    """HMAC-SHA512 keyed with ``secret`` once (each key holds one, ``keys.ApiKey.mac``): a request
    copies it (1.6 µs) instead of keying OpenSSL's HMAC from the secret again (3.7 µs)."""
    return hmac.new(secret, digestmod=hashlib.sha512)


def _signature(key: bytes | hmac.HMAC, url_path: str, nonce: str, body: bytes) -> bytes:
    message = url_path.encode("utf-8") + hashlib.sha256(nonce.encode("utf-8") + body).digest()
    if isinstance(key, bytes):
        return hmac.digest(key, message, "sha512")  # OpenSSL's one-shot HMAC
    mac = key.copy()
    mac.update(message)
    return mac.digest()


def sign(secret_b64: str, url_path: str, nonce: str, body: bytes) -> str:
    """``API-Sign``: base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))."""
    assert url_path.startswith("/"), "sign the path, not the URL"
    return base64.b64encode(_signature(decode_secret(secret_b64), url_path, nonce, body)).decode("ascii")


def verify(secret: bytes | hmac.HMAC, url_path: str, nonce: str, body: bytes, api_sign: str) -> bool:
    """Constant-time check of an ``API-Sign`` header over the exact body bytes; garbage is False.
    ``secret`` is the raw key or the HMAC keyed with it (``keyed_hmac``)."""
    assert not isinstance(secret, bytes) or secret, "a key without a secret cannot verify anything"
    try:
        provided = base64.b64decode(api_sign, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return False
    if len(provided) != SIGNATURE_BYTES:
        return False
    return hmac.compare_digest(_signature(secret, url_path, nonce, body), provided)


def generate_key_pair() -> tuple[str, str]:
    """(api_key, api_secret_b64): 56 URL-safe characters, and base64 of 64 random bytes."""
    api_key = secrets.token_urlsafe(42)  # 42 bytes are exactly 56 base64 characters, no padding
    api_secret_b64 = base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
    assert len(api_key) == API_KEY_CHARS
    return api_key, api_secret_b64


# --- nonces ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _KeyNonces:
    last: int = 0  # highest nonce accepted
    floor: int = 0  # every nonce <= floor is refused, whatever the window
    seen: set[int] = field(default_factory=set)  # accepted nonces above the floor
    heap: list[int] = field(default_factory=list)  # the same nonces, smallest first


class NonceTracker:
    """Last accepted nonce per API key, with Kraken's optional nonce window.

    ``window`` is in the client's nonce units (ms for ccxt and krakenex, 10 ns for python-kraken-sdk).
    With ``window == 0`` a nonce must exceed the last one. With ``window > 0`` a nonce may also be up
    to ``window`` below the last, if it was never accepted before; accepted nonces are remembered up to
    ``seen_max`` per key, and a forgotten nonce raises the floor, so a replay is refused, never accepted.

    Not thread-safe: call it from the event loop, where check and record happen with no await between
    them, so of two requests with the same nonce exactly one passes. Call it only after ``verify``.
    """

    def __init__(self, *, seen_max: int = NONCES_SEEN_MAX) -> None:
        assert seen_max > 0
        self._seen_max = seen_max
        self._keys: dict[str, _KeyNonces] = {}

    def check_and_record(self, key: str, nonce: int, window: int = 0) -> bool:
        assert nonce >= 0, "nonces are unsigned"
        assert window >= 0, "a nonce window is a width"
        state = self._keys.setdefault(key, _KeyNonces())
        fresh = nonce > state.last
        in_window = window > 0 and nonce > max(state.floor, state.last - window) and nonce not in state.seen
        if not (fresh or in_window):
            return False
        state.seen.add(nonce)
        heapq.heappush(state.heap, nonce)
        state.last = max(state.last, nonce)
        self._forget(state, state.last - window)
        assert nonce in state.seen or nonce <= state.floor, "a replay of this nonce is refused"
        return True

    def _forget(self, state: _KeyNonces, horizon: int) -> None:
        while state.heap and (state.heap[0] <= horizon or len(state.heap) > self._seen_max):
            old = heapq.heappop(state.heap)
            state.seen.discard(old)
            state.floor = max(state.floor, old)

    def last(self, key: str) -> int:
        """The value to persist; 0 for a key never seen."""
        state = self._keys.get(key)
        return 0 if state is None else state.last

    def restore(self, key: str, last: int) -> None:
        """Load a persisted value; nonces at or below it are refused even inside a window."""
        assert last >= 0
        self._keys[key] = _KeyNonces(last=last, floor=last)

    def reset(self, key: str) -> None:
        """Forget a key (admin "reset nonce", e.g. after switching client library)."""
        self._keys.pop(key, None)


# --- secrets at rest ------------------------------------------------------------------------------

_SEAL_VERSION = b"\x01"
_GCM_NONCE_BYTES = 12
_GCM_TAG_BYTES = 16


class UnsealError(Exception):
    """A sealed secret that does not open: wrong master key, wrong ``aad``, or tampered storage."""


class SecretBox:
    """AES-256-GCM for API secrets stored in a database; ``aad`` binds a blob to its row (the key id)."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError(f"the master key is {MASTER_KEY_BYTES} bytes, not {len(master_key)}")
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """version (1 byte) + random nonce (12) + ciphertext and tag."""
        nonce = secrets.token_bytes(_GCM_NONCE_BYTES)
        blob = _SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)
        assert len(blob) == 1 + _GCM_NONCE_BYTES + len(plaintext) + _GCM_TAG_BYTES
        return blob

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + _GCM_NONCE_BYTES + _GCM_TAG_BYTES or blob[:1] != _SEAL_VERSION:
            raise UnsealError("not a sealed secret")
        nonce, ciphertext = blob[1 : 1 + _GCM_NONCE_BYTES], blob[1 + _GCM_NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise UnsealError("the sealed secret does not open with this master key and aad") from None


def load_or_create_master_key(path: Path) -> bytes:
    """Read the base64 master key at ``path``, or create it (mode 0600, exclusive create) if absent."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # tighten a copy restored with looser permissions
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(f"{path}: expected base64 of {MASTER_KEY_BYTES} bytes") from None
        return key
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # O_CREAT's mode is filtered by the umask; be explicit
        handle.write(base64.b64encode(key) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


# --- one-time password ----------------------------------------------------------------------------


def check_otp(expected_password: str | None, provided: str | None) -> bool:
    """True when the key has no OTP configured, or ``provided`` equals it (constant time, any length)."""
    if expected_password is None:
        return True
    if provided is None:
        return False
    expected_digest = hashlib.sha256(expected_password.encode("utf-8")).digest()
    provided_digest = hashlib.sha256(provided.encode("utf-8")).digest()
    return hmac.compare_digest(expected_digest, provided_digest)  # equal lengths: no length leak


# --- permissions ----------------------------------------------------------------------------------


class Permission(enum.Flag):
    """Kraken's API-key permission checkboxes."""

    QUERY_FUNDS = 1
    DEPOSIT = 2
    WITHDRAW = 4
    QUERY_OPEN = 8  # "Query open orders & trades"
    QUERY_CLOSED = 16  # "Query closed orders & trades"
    QUERY_LEDGER = 32
    CREATE_ORDERS = 64  # "Create & modify orders"
    CANCEL_ORDERS = 128  # "Cancel & close orders"
    WEBSOCKET = 256  # "WebSocket interface - On"
    ALL = 511


_P = Permission

# Any ONE of an endpoint's flags suffices. Kraken documents QueryOrders and OrderAmends as "open or
# closed, depending on the status of the order" and WithdrawStatus as "Withdraw or Query ledger
# entries": the handler still hides orders whose status the key may not see (QUERY_OPEN: pending/open;
# QUERY_CLOSED: closed/canceled/expired). Otherwise doc §2.5; funding endpoints by their verb.
ENDPOINT_PERMISSION: dict[str, Permission] = {
    "Balance": _P.QUERY_FUNDS,
    "BalanceEx": _P.QUERY_FUNDS,
    "TradeVolume": _P.QUERY_FUNDS,
    "DepositAddresses": _P.QUERY_FUNDS,
    "TradeBalance": _P.QUERY_OPEN,
    "OpenOrders": _P.QUERY_OPEN,
    "QueryOrders": _P.QUERY_OPEN | _P.QUERY_CLOSED,
    "OrderAmends": _P.QUERY_OPEN | _P.QUERY_CLOSED,
    "ClosedOrders": _P.QUERY_CLOSED,
    "TradesHistory": _P.QUERY_CLOSED,
    "QueryTrades": _P.QUERY_CLOSED,
    "Ledgers": _P.QUERY_LEDGER,
    "QueryLedgers": _P.QUERY_LEDGER,
    "AddOrder": _P.CREATE_ORDERS,
    "AddOrderBatch": _P.CREATE_ORDERS,
    "AmendOrder": _P.CREATE_ORDERS,
    "EditOrder": _P.CREATE_ORDERS,
    "CancelOrder": _P.CANCEL_ORDERS,
    "CancelOrderBatch": _P.CANCEL_ORDERS,
    "CancelAll": _P.CANCEL_ORDERS,
    "CancelAllOrdersAfter": _P.CANCEL_ORDERS,
    "DepositMethods": _P.DEPOSIT,
    "DepositStatus": _P.DEPOSIT,
    "WithdrawMethods": _P.WITHDRAW,
    "WithdrawAddresses": _P.WITHDRAW,
    "WithdrawInfo": _P.WITHDRAW,
    "Withdraw": _P.WITHDRAW,
    "WithdrawStatus": _P.WITHDRAW | _P.QUERY_LEDGER,
    "WithdrawCancel": _P.WITHDRAW,
    "WalletTransfer": _P.WITHDRAW,
    "GetWebSocketsToken": _P.WEBSOCKET,
}


# the same table as plain bits: ``Flag.__and__`` builds a new member per call, four times the check
_ENDPOINT_BITS: dict[str, int] = {endpoint: needed.value for endpoint, needed in ENDPOINT_PERMISSION.items()}


def is_permitted(granted: Permission, endpoint: str) -> bool:
    """False for an endpoint not in the table: the REST layer answers unknown methods before this."""
    needed = _ENDPOINT_BITS.get(endpoint)
    return needed is not None and bool(granted.value & needed)
