"""The sequencer's writer: one thread that runs the store's writes in the order they are handed over.

``run`` hands a call to the thread and returns an asyncio future that the thread resolves through
``loop.call_soon_threadsafe``: one queue put and one wake-up each way. ``loop.run_in_executor`` on a
``ThreadPoolExecutor`` does the same work through a concurrent future chained to an asyncio one
(a lock, a work item, two callbacks and a state copy in Python), 12 to 30 µs more per batch on the
machines we measure (``bench/README_http.md``, "Fewer pages per commit"). The class is also an
``Executor``, so the background snapshots (``run_in_executor``) share the thread and its order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from abyssal.adapters.sqlite import BatchRecord
    from abyssal.adapters.store import Store

T = TypeVar("T")
AnyFuture = asyncio.Future[Any] | concurrent.futures.Future[Any]
_Item = tuple[Callable[[], Any], asyncio.AbstractEventLoop | None, AnyFuture]


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by its awaiter meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class WriterThread(concurrent.futures.Executor):
    """A single worker thread; calls run one at a time, first in, first out."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def run(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on the thread; the future resolves on ``loop`` with its result."""
        if self._closed:
            raise RuntimeError("the writer thread is shut down")
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((functools.partial(fn, *args), loop, future))
        return future

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        if self._closed:
            raise RuntimeError("the writer thread is shut down")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((functools.partial(fn, *args, **kwargs), None, future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run what was handed over, then stop (``cancel_futures`` is not supported: writes finish)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            call, loop, future = item
            if loop is None:
                assert isinstance(future, concurrent.futures.Future)
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(call())
                except BaseException as exc:  # the caller's future carries it
                    future.set_exception(exc)
                continue
            assert isinstance(future, asyncio.Future)
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:  # the caller's future carries it
                error = exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, future, result, error)


class BatchRefused(RuntimeError):
    """A batch handed over after one that failed: not written, so the log stays a prefix."""


class BatchWriter(Protocol):
    """Where the sequencer's batches commit: ``write`` returns a future for the transaction's
    (start, end) ns, resolved on ``loop`` once the batch is durable. Batches commit in the order
    they are handed over, and once a batch fails every later one fails without being written: the
    sequencer hands batch N+1 over before N has committed, and the log must stay a prefix."""

    def write(
        self, loop: asyncio.AbstractEventLoop, record: BatchRecord
    ) -> asyncio.Future[tuple[int, int]]: ...

    def close(self) -> None: ...


def _timed_write(store: Store, record: BatchRecord) -> tuple[int, int]:
    start_ns = time.time_ns()
    store.write_batch(record)
    return start_ns, time.time_ns()


class ThreadBatchWriter:
    """``store.write_batch`` in the writer thread (PostgreSQL; SQLite with ``batch_writer = "thread"``;
    the other is adapters/sqlite_writer.py, a process of its own)."""

    def __init__(self, store: Store, thread: WriterThread) -> None:
        self.store = store
        self.thread = thread
        self.refused = ""  # why a batch failed: every later one fails unwritten (set on the thread)

    def write(self, loop: asyncio.AbstractEventLoop, record: BatchRecord) -> asyncio.Future[tuple[int, int]]:
        return self.thread.run(loop, self._write, record)

    def _write(self, record: BatchRecord) -> tuple[int, int]:
        """On the thread, in hand-over order, so ``refused`` is set before the next batch runs."""
        if self.refused:
            raise BatchRefused(f"a batch before this one failed: {self.refused}")
        try:
            return _timed_write(self.store, record)
        except BaseException as exc:
            self.refused = repr(exc)
            raise

    def close(self) -> None:
        """Nothing of its own: the thread belongs to the sequencer, which shuts it down."""


def early_handover_pays(writer: BatchWriter) -> bool:
    """Whether to hand batch N+1 to the writer before N has committed: where the writer works beside
    the event loop (a process of its own, ``parallel``) on a CPU of its own. Confined to one CPU the
    writer's next commit would only take turns with the loop's acknowledgements of the batch before
    it, and delay them (bench/README_http.md, "The writer child's share, cut, and two batches
    with the writer")."""
    if not getattr(writer, "parallel", False):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return cpus > 1
