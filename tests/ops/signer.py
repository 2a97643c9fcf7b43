"""A blocking Kraken client for live-server tests: signs every call and keeps the signatures it sent."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx

from abyssal.gateway.auth import sign


class Signer:
    def __init__(self, url: str, key: dict[str, Any]) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.key = key
        self.nonce = time.time_ns() // 1000
        self.signatures: list[str] = []

    def call(self, method: str, **params: str) -> dict[str, Any]:
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        signature = sign(self.key["api_secret"], f"/0/private/{method}", str(self.nonce), body)
        self.signatures.append(signature)
        r = self.http.post(
            f"/0/private/{method}",
            content=body,
            headers={
                "API-Key": self.key["api_key"],
                "API-Sign": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert r.status_code == 200
        reply: dict[str, Any] = r.json()
        return reply
