"""Traders: one connection's funded buyer and seller accounts, each key with its own in-order nonces.

The scaled-out benchmark gives every connection its own keys, so the strict nonce rule holds however
the connections interleave.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from order_mix import OrderMix, add_order_body
from signed_orders import ADD_ORDER_PATH, FUNDING, Key, private_call, raw_add_order
from tests.harness import Server

from abyssal.core.messages import Side
from abyssal.gateway.auth import sign

ACCOUNT_THREADS = 8  # concurrent admin and QueryOrders calls
TRADER_SEED_BASE = 1000  # trader i streams OrderMix(seed=1000 + i)


@dataclass
class Account:
    """A key and its nonce counter: every call with the key takes the next nonce."""

    key: Key
    nonce: int = 0

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def private(self, url: str, method: str, params: dict[str, str]) -> Any:
        return private_call(url, self.key, self.next_nonce(), method, params)


@dataclass
class Trader:
    """One connection's buyer and seller accounts and its own order stream."""

    index: int
    buyer: Account
    seller: Account
    mix: OrderMix = field(default_factory=OrderMix)

    def add_order(self, host: str) -> tuple[bytes, Account]:
        """The next order of the stream, signed by its side's account, as HTTP/1.1 bytes."""
        order = self.mix.next()
        account = self.buyer if order.side == Side.buy else self.seller
        nonce = account.next_nonce()
        body = add_order_body(order, nonce)
        signature = sign(account.key.secret_b64, ADD_ORDER_PATH, str(nonce), body.encode())
        return raw_add_order(host, account.key.api_key, signature, body), account


def make_traders(server: Server, count: int, prefix: str) -> list[Trader]:
    """``count`` traders, each with a funded buyer and seller account (created concurrently)."""
    assert count > 0

    def account(name: str) -> Account:
        created = server.account(name, **FUNDING)
        return Account(Key(name, created["api_key"], created["api_secret"]))

    with ThreadPoolExecutor(ACCOUNT_THREADS) as pool:
        buyers = list(pool.map(account, [f"{prefix}-b{i}" for i in range(count)]))
        sellers = list(pool.map(account, [f"{prefix}-s{i}" for i in range(count)]))
    pairs = enumerate(zip(buyers, sellers, strict=True))
    return [Trader(i, b, s, OrderMix(seed=TRADER_SEED_BASE + i)) for i, (b, s) in pairs]
