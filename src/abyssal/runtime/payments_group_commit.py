"""Group commit for the payments request path: many requests' writes, one durable commit.

Each capture makes two writes of its own (claim + open; capture + answer + outbox). On SQLite
every commit is an fsync under the database's single write lock, so concurrent requests queue
on commits, not on work. Here writes queue in memory instead: while one transaction commits on
the blocking pool, the next writes gather, and the next transaction runs them all, each inside
its own SAVEPOINT (one write that fails rolls back alone and gets its exception; the others
commit). A caller is answered only after the COMMIT that holds its write, so every guarantee of
one transaction per write holds, with fewer fsyncs. Used on SQLite only: its one write lock
already serializes every transaction, so grouping adds no lock-order hazard; PostgreSQL runs
each write in its own transaction as before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from abyssal.adapters.store import DbConnection, Store

T = TypeVar("T")
Write = Callable[[DbConnection], Any]
BATCH_WRITES_MAX = 64


class GroupCommit:
    def __init__(
        self,
        store: Store,
        blocking: Callable[..., Awaitable[Any]],
        *,
        batch_writes_max: int = BATCH_WRITES_MAX,
    ) -> None:
        assert batch_writes_max > 0
        self.store = store
        self.blocking = blocking
        self.batch_writes_max = batch_writes_max
        self.commits = 0
        self.writes = 0
        # appended on the event loop, taken by the pool thread when its transaction starts (so a
        # commit holds every write queued until then); deque append/popleft are thread-safe
        self._queue: deque[tuple[Write, asyncio.Future[Any]]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, write: Callable[[DbConnection], T]) -> T:
        """Run ``write`` in the next group transaction; returns its result after the COMMIT."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        result: T = await asyncio.shield(future)  # a disconnect cancels the wait, never the write
        return result

    async def drain(self) -> None:
        """Wait until every queued write has committed (or failed): call before the pool stops."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        while self._queue:
            taken: list[tuple[Write, asyncio.Future[Any]]] = []
            try:
                outcomes = await self.blocking(self._commit, taken)
            except BaseException as exc:  # the COMMIT itself failed: no write of the batch holds
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            assert len(outcomes) == len(taken) <= self.batch_writes_max
            for (_, future), (ok, value) in zip(taken, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _commit(self, taken: list[tuple[Write, asyncio.Future[Any]]]) -> list[tuple[bool, Any]]:
        """On the pool thread: take the queued writes, run each in a savepoint, COMMIT once."""
        while self._queue and len(taken) < self.batch_writes_max:
            taken.append(self._queue.popleft())
        outcomes: list[tuple[bool, Any]] = []
        with self.store.transaction() as c:
            for write, _ in taken:
                c.execute("SAVEPOINT payment_write")
                try:
                    value = write(c)
                except Exception as exc:
                    c.execute("ROLLBACK TO SAVEPOINT payment_write")
                    c.execute("RELEASE SAVEPOINT payment_write")
                    outcomes.append((False, exc))
                    continue
                c.execute("RELEASE SAVEPOINT payment_write")
                outcomes.append((True, value))
        self.commits += 1
        self.writes += len(taken)
        return outcomes
