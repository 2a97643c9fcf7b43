"""Signed orders: bench accounts and keys, nonces, and AddOrders pre-signed from the order mix."""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abyssal_server import Server
from order_mix import OrderMix, add_order_body

from abyssal.core.messages import Side
from abyssal.gateway.auth import sign

ADD_ORDER_PATH = "/0/private/AddOrder"
NONCE_WINDOW = 1_000_000  # in our nonce units (1 per request); reordering across 64 connections is << this
FUNDING = {"ZUSD": "10000000000", "XXBT": "1000000"}
FORMAT_CHECK_ORDERS = 2  # one buy and one sell through urllib before the runs


@dataclass(frozen=True)
class Key:
    name: str
    api_key: str
    secret_b64: str


class Signer:
    """Pre-signs AddOrders from the order mix; one nonce counter, so every key's nonces increase."""

    def __init__(self, buyer: Key, seller: Key) -> None:
        self.keys = {Side.buy: buyer, Side.sell: seller}
        self.mix = OrderMix()
        self._nonce = itertools.count(1)

    def nonce(self) -> int:
        return next(self._nonce)

    def write(self, count: int, path: Path) -> None:
        """``count`` lines of ``api_key<TAB>api_sign<TAB>body``, for http_bench.lua and the paced client."""
        assert count > 0
        lines = []
        for _ in range(count):
            order = self.mix.next()
            key = self.keys[order.side]
            nonce = self.nonce()
            body = add_order_body(order, nonce)
            signature = sign(key.secret_b64, ADD_ORDER_PATH, str(nonce), body.encode())
            lines.append(f"{key.api_key}\t{signature}\t{body}\n")
        path.write_text("".join(lines))

    def private(self, server: Server, key: Key, method: str, params: dict[str, str]) -> Any:
        """One signed call with urllib (setup and checks only, never timed)."""
        return private_call(server.url, key, self.nonce(), method, params)


def private_call(url: str, key: Key, nonce: int, method: str, params: dict[str, str]) -> Any:
    """One signed private call with urllib to the server at ``url`` (setup and checks, never timed)."""
    body = urllib.parse.urlencode({"nonce": str(nonce), **params}).encode()
    path = f"/0/private/{method}"
    req = urllib.request.Request(url + path, data=body, method="POST")
    req.add_header("API-Key", key.api_key)
    req.add_header("API-Sign", sign(key.secret_b64, path, str(nonce), body))
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def raw_add_order(host: str, api_key: str, signature: str, body: str) -> bytes:
    """One signed AddOrder as HTTP/1.1 bytes, ready to write to a socket."""
    return (
        f"POST {ADD_ORDER_PATH} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"API-Key: {api_key}\r\nAPI-Sign: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def setup_accounts(server: Server) -> tuple[Key, Key]:
    """A buyer and a seller (so self-trade prevention never fires), funded far beyond any run."""
    keys = []
    for name in ("bench-buyer", "bench-seller"):
        created = server.admin("POST", "/admin/accounts", {"name": name, "nonce_window": NONCE_WINDOW})
        assert created["nonce_window"] == NONCE_WINDOW, created
        for asset, amount in FUNDING.items():
            server.admin("POST", "/admin/deposits", {"account": name, "asset": asset, "amount": amount})
        keys.append(Key(name, created["api_key"], created["api_secret"]))
    return keys[0], keys[1]


def check_format(server: Server, signer: Signer) -> None:
    """One buy and one sell through urllib: the answer has Kraken's shape before any load runs."""
    buyer, seller = signer.keys[Side.buy], signer.keys[Side.sell]
    for key, side, price in ((buyer, "buy", "20000"), (seller, "sell", "40000")):
        params = {"pair": "XXBTZUSD", "type": side, "ordertype": "limit", "volume": "0.001", "price": price}
        answer = signer.private(server, key, "AddOrder", params)
        assert answer["error"] == [] and len(answer["result"]["txid"]) == 1, answer
