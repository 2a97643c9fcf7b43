"""Acked orders: the end state of a scaled-out run, every acknowledged order found and every audit clean."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from end_state import QUERY_ORDERS_MAX
from order_driver import Ack
from tests.harness import Server
from traders import ACCOUNT_THREADS, Account


def check_acked(urls: Sequence[str], acks: list[Ack]) -> int:
    """Every acknowledged txid is found by QueryOrders with its owner's key (gateways alternate)."""
    by_account: dict[str, tuple[Account, list[str]]] = {}
    for a in acks:
        by_account.setdefault(a.account.key.api_key, (a.account, []))[1].append(a.txid)

    # one thread per account: its nonces must stay in order
    def per_account(account: Account, txids: list[str], url: str) -> int:
        for i in range(0, len(txids), QUERY_ORDERS_MAX):
            chunk = txids[i : i + QUERY_ORDERS_MAX]
            out = account.private(url, "QueryOrders", {"txid": ",".join(chunk)})
            assert out["error"] == [], out
            missing = set(chunk) - set(out["result"])
            assert not missing, f"{len(missing)} acknowledged orders not found, e.g. {sorted(missing)[:3]}"
        return len(txids)

    with ThreadPoolExecutor(ACCOUNT_THREADS) as pool:
        futures = [pool.submit(per_account, account, txids, urls[i % len(urls)])
                   for i, (account, txids) in enumerate(by_account.values())]  # fmt: skip
        return sum(f.result() for f in futures)


def check_audit(servers: Sequence[Server]) -> None:
    """``/admin/status`` audit is ``[]`` on each server."""
    for s in servers:
        audit = s.status()["audit"]
        assert audit == [], f"{s.url}: ledger audit {audit}"
