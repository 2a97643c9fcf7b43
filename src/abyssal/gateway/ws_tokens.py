"""WebSocket tokens from REST ``GetWebSocketsToken``: who a token speaks for, and for how long.

A token is valid for 15 minutes after it was issued (``Exchange.ws_tokens`` holds
``token -> (key_no, expires_ns)``). Kraken's rule: once a connection holding a *private
subscription* made with it lives, the token stays valid for as long as such a connection
lives; it is "pinned" here. Expired tokens that nothing pins are pruned from the map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from abyssal.gateway.auth import Permission
from abyssal.gateway.keys import ApiKey

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange

TOKEN_NOT_FOUND: Final = "Token(s) not found"
INVALID_SESSION: Final = "ESession:Invalid session"
PERMISSION_DENIED: Final = "EGeneral:Permission denied"
TOKEN_CHARS_MAX: Final = 128


class TokenError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Tokens:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._pins: dict[str, int] = {}  # token -> live connections holding a private subscription
        self._by_key_no: dict[int, ApiKey] = {}

    def key_for(self, token: object, now_ns: int, needed: Permission | None = None) -> ApiKey:
        """The API key a token was issued to, or ``TokenError`` with Kraken's text."""
        if not isinstance(token, str) or not 0 < len(token) <= TOKEN_CHARS_MAX:
            raise TokenError(TOKEN_NOT_FOUND)
        entry = self.exchange.ws_tokens.get(token)
        if entry is None:
            raise TokenError(TOKEN_NOT_FOUND)
        key_no, expires_ns = entry
        if expires_ns <= now_ns and not self._pins.get(token):
            raise TokenError(INVALID_SESSION)
        key = self._key(key_no)
        if key is None:
            raise TokenError(INVALID_SESSION)  # the key was removed after the token was issued
        if needed is not None and not key.permissions & needed:
            raise TokenError(PERMISSION_DENIED)
        return key

    def _key(self, key_no: int) -> ApiKey | None:
        key = self._by_key_no.get(key_no)
        if key is None:  # keys are added at runtime (admin API): rebuild the index on a miss
            self._by_key_no = {k.key_no: k for k in self.exchange.keys.by_key.values()}
            key = self._by_key_no.get(key_no)
        return key

    def pin(self, token: str) -> None:
        self._pins[token] = self._pins.get(token, 0) + 1

    def unpin(self, token: str) -> None:
        count = self._pins.get(token, 0) - 1
        if count > 0:
            self._pins[token] = count
        else:
            self._pins.pop(token, None)

    def prune(self, now_ns: int) -> int:
        """Forget expired tokens no connection pins; returns how many went."""
        tokens = self.exchange.ws_tokens
        expired = [t for t, (_, expires_ns) in tokens.items() if expires_ns <= now_ns and t not in self._pins]
        for token in expired:
            del tokens[token]
        return len(expired)
