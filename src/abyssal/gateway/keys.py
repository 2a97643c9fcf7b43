"""API keys in memory: lookup by public key, sealed secrets at rest, nonces per key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from abyssal.adapters.store import Store
from abyssal.gateway.auth import (
    NonceTracker,
    Permission,
    SecretBox,
    decode_secret,
    generate_key_pair,
    keyed_hmac,
)

KEY_COLUMNS = "key_no, api_key, account, secret_sealed, permissions, nonce_window, last_nonce, otp"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_no: int
    api_key: str
    account: int
    secret: bytes  # raw HMAC key (decoded from base64), in memory only
    permissions: Permission
    nonce_window: int
    otp: str | None
    mac: hmac.HMAC = field(init=False, repr=False, compare=False)  # keyed with ``secret``, copied per request

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", keyed_hmac(self.secret))


class KeyRing:
    """Keys loaded at start; new keys are written to the store first, then added here."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self.store = store
        self.box = box
        self.by_key: dict[str, ApiKey] = {}
        self.nonces = NonceTracker()

    def load(self) -> None:
        """Read every key (blocking: call from a worker thread before serving)."""
        self._add(self.store.conn().execute(f"SELECT {KEY_COLUMNS} FROM api_keys").fetchall())

    def load_one(self, api_key: str) -> ApiKey | None:
        """A key another gateway made since this one started (blocking); None if there is none."""
        self._add(
            self.store.conn()
            .execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE api_key = ?", (api_key,))
            .fetchall()
        )
        return self.by_key.get(api_key)

    def load_key_no(self, key_no: int) -> ApiKey | None:
        """As ``load_one``, by key number (a WebSocket token names its key so)."""
        sql = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_no = ?"
        self._add(self.store.conn().execute(sql, (key_no,)).fetchall())
        return next((k for k in self.by_key.values() if k.key_no == key_no), None)

    def _add(self, rows: list[Any]) -> None:
        for key_no, api_key, account, sealed, perms, window, last_nonce, otp in rows:
            secret_b64 = self.box.open(bytes(sealed), api_key.encode()).decode()
            self.by_key[api_key] = ApiKey(
                int(key_no), str(api_key), int(account), decode_secret(secret_b64), Permission(int(perms)),
                int(window), otp,
            )  # fmt: skip
            self.nonces.restore(str(api_key), int(last_nonce))

    def create(
        self, account: int, permissions: Permission, now_ns: int, nonce_window: int = 0
    ) -> tuple[str, str]:
        """A new key pair for an account (blocking). Returns (api_key, api_secret_base64)."""
        api_key, secret_b64 = generate_key_pair()
        sealed = self.box.seal(secret_b64.encode(), api_key.encode())
        key_no = self.store.insert_api_key(api_key, account, sealed, permissions.value, nonce_window, now_ns)
        self.by_key[api_key] = ApiKey(
            key_no, api_key, account, decode_secret(secret_b64), permissions, nonce_window, None
        )
        return api_key, secret_b64

    def reset_nonce(self, api_key: str) -> bool:
        """Forget a key's last nonce (so a client with a smaller nonce scale can use it)."""
        if api_key not in self.by_key:
            return False
        with self.store.transaction() as c:
            c.execute("UPDATE api_keys SET last_nonce = 0 WHERE api_key = ?", (api_key,))
        self.nonces.reset(api_key)
        return True
