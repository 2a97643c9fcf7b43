"""The idempotent envelope around a payment request: one leader per key, twins wait or get 409.

The database decides who runs a key (``claim``: first write of (tenant, source, key) wins); in
this process, the first request for a key is its leader and concurrent twins wait up to
``in_flight_wait_s`` for it, then replay its stored answer. The leader's work runs in its own
task, so a client that disconnects cancels its wait, never the half-done payment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from abyssal.ports import IdempotencyClaim
from abyssal.runtime import payment_records as records

IN_FLIGHT_WAIT_S = 2.0  # a concurrent twin waits this long for the first request, then gets 409
STALE_LOCK_NS = 60 * 10**9  # an in-flight key older than this (another process) is taken over

Blocking = Callable[..., Awaitable[Any]]
Claim = Callable[[], Awaitable[IdempotencyClaim]]
Gate = tuple[int, str, str]  # (tenant, source, key)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer under an idempotency key; ``replayed`` when it came from the store."""

    status: int
    body: bytes
    replayed: bool = False


class EngineRefused(Exception):
    """The engine refused before executing (busy, unavailable): not stored, a retry resumes."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def refusal(code: str) -> Answer:
    return Answer(records.REFUSALS[code][0], records.refusal_body(code))


class KeyGate:
    """Runs ``work`` at most once per claimed key in this process (see the module docstring)."""

    def __init__(self, store: Any, blocking: Blocking, in_flight_wait_s: float = IN_FLIGHT_WAIT_S) -> None:
        assert in_flight_wait_s >= 0
        self.store = store  # the PaymentStore: unlock_key
        self.blocking = blocking
        self.in_flight_wait_s = in_flight_wait_s
        self.keys_in_flight: set[int] = set()  # key ids whose work runs in this process now
        self._leaders: dict[Gate, asyncio.Event] = {}
        self.work: set[asyncio.Task[Answer]] = set()

    async def run(
        self, gate: Gate, claim: Claim, work: Callable[[IdempotencyClaim], Awaitable[Answer]]
    ) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.in_flight_wait_s
        while True:
            leader = self._leaders.get(gate)
            if leader is not None:  # a twin in this process is running it: wait, then replay
                try:
                    async with asyncio.timeout_at(deadline):
                        await leader.wait()
                except TimeoutError:
                    break
                continue
            # no await between the check and this line: exactly one local leader per key
            done = self._leaders[gate] = asyncio.Event()
            try:
                claimed = await claim()
            except BaseException:
                self._leaders.pop(gate, None)
                done.set()
                raise
            if claimed.outcome in ("mismatch", "replay", "in_flight"):
                self._leaders.pop(gate, None)
                done.set()
                if claimed.outcome == "mismatch":
                    return refusal("idempotency_key_mismatch")
                if claimed.outcome == "replay":
                    return Answer(claimed.response_code, claimed.response_body, True)
                break  # in flight elsewhere (another process, or a lock not yet stale)
            assert claimed.outcome in ("new", "resume")
            task = asyncio.create_task(self._guarded(work, claimed, gate, done))
            self.work.add(task)
            task.add_done_callback(self.work.discard)
            return await asyncio.shield(task)  # a disconnect cancels the wait, never the work
        return refusal("idempotency_key_in_use")

    async def _guarded(
        self,
        work: Callable[[IdempotencyClaim], Awaitable[Answer]],
        claim: IdempotencyClaim,
        gate: Gate,
        done: asyncio.Event,
    ) -> Answer:
        self.keys_in_flight.add(claim.key_id)
        try:
            return await work(claim)
        except EngineRefused as refused:  # busy or unavailable: not stored, a retry resumes it
            await self.blocking(self.store.unlock_key, claim.key_id)
            return refusal(refused.code)
        except BaseException:  # a fault mid-way: the next retry resumes from what was committed
            await asyncio.shield(self.blocking(self.store.unlock_key, claim.key_id))
            raise
        finally:
            self.keys_in_flight.discard(claim.key_id)
            self._leaders.pop(gate, None)
            done.set()
