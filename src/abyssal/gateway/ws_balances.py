"""The private ``balances`` channel: a snapshot of totals, then one update per ledger entry.

The snapshot reads the projector's balance cache at a batch boundary (where it equals the
committed state). Updates are the ledger rows the batch committed (trades, deposits,
withdrawals); their ids are assigned by storage, so they are read back after the commit by a
single worker, in order. Pending work is one seq range per round, so it cannot pile up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from abyssal.core import ids
from abyssal.core.messages import Deposited, Fill, Withdrawn
from abyssal.gateway.ws_batches import Results
from abyssal.gateway.ws_codec import channel_frame, num, utc_text
from abyssal.gateway.ws_subscriptions import Registry, Subscription

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange


class Balances:
    def __init__(self, exchange: Exchange, registry: Registry) -> None:
        self.exchange = exchange
        self.registry = registry
        self._pending: tuple[int, int, set[int]] | None = None  # (first seq, last seq, accounts)
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    def start(self, sub: Subscription) -> None:
        """Snapshot at a batch boundary; later ledger entries (seq beyond it) come as updates."""
        sub.after_seq = self.exchange.sequencer.next_seq - 1
        if not sub.snapshot:
            return
        ins = self.exchange.instruments
        cache = self.exchange.sequencer.projector.balances
        data = []
        for asset in ins.assets:
            balance = cache.get((sub.account, asset.index))
            if balance is None:
                continue
            total = num(balance[0], asset.decimals)
            data.append(
                {
                    "asset": asset.code,
                    "asset_class": "currency",
                    "balance": total,
                    "wallets": [{"type": "spot", "id": "main", "balance": total}],
                }
            )
        sub.wire.push(channel_frame("balances", "snapshot", data, sequence=sub.next_sequence()))

    def on_batch(self, results: Results) -> None:
        if not results or not self.registry.keys("balances"):
            return
        accounts: set[int] = set()
        for _, _, events in results:
            for e in events:
                if isinstance(e, Fill):
                    accounts.update((e.taker_account, e.maker_account))
                elif isinstance(e, Deposited | Withdrawn):
                    accounts.add(e.account)
        accounts = {a for a in accounts if self.registry.has(("balances", a))}
        if not accounts:
            return
        first, last = results[0][0], results[-1][0]
        if self._pending is None:
            self._pending = (first, last, accounts)
        else:
            self._pending = (self._pending[0], last, self._pending[2] | accounts)
        self._wake.set()
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending is not None:
                first, last, accounts = self._pending
                self._pending = None
                rows = await self.exchange.read(_ledger_rows, self.exchange, first, last, sorted(accounts))
                for row in rows:
                    self._deliver(row)

    def _deliver(self, row: tuple[Any, ...]) -> None:
        entry_no, seq, account, asset_index, kind, refid, ts_ns, amount, fee, balance = row
        asset = self.exchange.instruments.assets[asset_index]
        data = {
            "ledger_id": ids.ledger_id(entry_no),
            "ref_id": refid,
            "timestamp": utc_text(ts_ns),
            "type": kind,
            "asset": asset.code,
            "asset_class": "currency",
            "category": kind,
            "wallet_type": "spot",
            "wallet_id": "main",
            "amount": num(amount, asset.decimals),
            "fee": num(fee, asset.decimals),
            "balance": num(balance, asset.decimals),
        }
        for sub in self.registry.members(("balances", account)):
            if seq > sub.after_seq:
                sub.deliver(channel_frame("balances", "update", [data], sequence=sub.next_sequence()))

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()


def _ledger_rows(ex: Exchange, first_seq: int, last_seq: int, accounts: list[int]) -> list[tuple[Any, ...]]:
    marks = ",".join("?" * len(accounts))
    return list(
        ex.store.conn()
        .execute(
            "SELECT entry_no, seq, account, asset, type, refid, ts_ns, amount, fee, balance FROM ledger "
            f"WHERE seq BETWEEN ? AND ? AND account IN ({marks}) ORDER BY entry_no",
            (first_seq, last_seq, *accounts),
        )
        .fetchall()
    )
