"""The sequencer's writer thread: calls in hand-over order, errors to their caller, never stuck."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from abyssal.runtime.writer_thread import WriterThread


def test_calls_run_in_order_on_one_thread_and_errors_reach_their_caller() -> None:
    writer = WriterThread("abyssal-writer")
    ran: list[tuple[int, str]] = []

    def step(n: int) -> int:
        ran.append((n, threading.current_thread().name))
        if n == 3:
            raise ValueError("three")
        return n * 10

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        futures = []
        for n in range(8):  # the lean path and the Executor path, interleaved
            if n % 2:
                futures.append(loop.run_in_executor(writer, step, n))
            else:
                futures.append(writer.run(loop, step, n))
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert [r if not isinstance(r, ValueError) else "error" for r in results] == [
            0, 10, 20, "error", 40, 50, 60, 70,
        ]  # fmt: skip

    asyncio.run(scenario())
    assert [n for n, _ in ran] == list(range(8))
    assert {name for _, name in ran} == {"abyssal-writer"}
    writer.shutdown()


def test_a_caller_that_went_away_or_a_closed_loop_does_not_stop_the_thread() -> None:
    writer = WriterThread("abyssal-writer")
    gate = threading.Event()

    async def cancel_one() -> None:
        loop = asyncio.get_running_loop()
        slow = writer.run(loop, gate.wait, 5)
        slow.cancel()  # its awaiter went away; the call still runs, its result is dropped
        gate.set()
        assert await writer.run(loop, lambda: "after") == "after"

    asyncio.run(cancel_one())

    gate.clear()
    loop = asyncio.new_event_loop()
    orphan = writer.run(loop, gate.wait, 5)
    loop.close()  # closed before the thread resolves the future
    gate.set()
    time.sleep(0.05)
    assert not orphan.done()

    async def still_works() -> None:
        assert await writer.run(asyncio.get_running_loop(), lambda: 42) == 42

    asyncio.run(still_works())
    writer.shutdown()


def test_shutdown_finishes_what_was_handed_over_then_refuses_more() -> None:
    writer = WriterThread("abyssal-writer")
    done: list[int] = []
    gate = threading.Event()
    first = writer.submit(gate.wait, 5)
    queued = [writer.submit(done.append, n) for n in range(5)]
    gate.set()
    writer.shutdown(wait=True)
    assert first.result(0) is True
    assert all(f.done() for f in queued) and done == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        writer.submit(done.append, 5)
    loop = asyncio.new_event_loop()
    with pytest.raises(RuntimeError):
        writer.run(loop, done.append, 6)
    loop.close()
