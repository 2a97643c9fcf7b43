"""Ports: the small Protocols that adapters implement (each with an in-memory twin)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One event on the bus: keyed by aggregate (ordering is per key), versioned, traceable."""

    topic: str  # orders, trades, ledger, payments
    key: str  # aggregate id: ordering holds per key
    event_id: str  # unique: consumers dedupe by it
    event_type: str
    schema_version: int
    payload: bytes  # JSON
    trace_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Publisher(Protocol):
    """Publishes and returns only once the bus has durably acknowledged every message."""

    async def publish(self, messages: list[BusMessage]) -> None: ...

    async def close(self) -> None: ...


Handler = Callable[[BusMessage], Awaitable[None]]


class Subscriber(Protocol):
    """Delivers messages at least once; a message's offset is committed only after ``handler``
    returns (so the handler must make its own durable write first, idempotently)."""

    async def run(self, topics: list[str], group: str, handler: Handler) -> None: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Payments: the database is the gate. Blocking methods (adapters run them on a thread pool);
# every method is one transaction. SQLite: adapters/sqlite_payments.py; PostgreSQL implements
# the same Protocols. Rows cross the port as the plain records below, never as driver rows.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """The answer of ``claim``: ``outcome`` is new, replay, mismatch, in_flight or resume."""

    outcome: str
    key_id: int
    payment_id: int | None = None
    response_code: int = 0
    response_body: bytes = b""


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: int
    refid: str
    kind: str  # deposit | withdrawal
    account: int
    asset: int
    amount_minor: int
    fee_minor: int
    status: str
    version: int
    method: str
    withdraw_key: str
    address: str
    reference: str
    error: str
    trace_id: str
    created_ns: int
    updated_ns: int


@dataclass(frozen=True, slots=True)
class NewPayment:
    refid: str
    kind: str
    account: int
    asset: int
    amount_minor: int
    status: str
    method: str = ""
    withdraw_key: str = ""
    address: str = ""
    reference: str = ""
    trace_id: str = ""


@dataclass(frozen=True, slots=True)
class LimitWindow:
    """A daily withdrawal limit to enforce inside the opening transaction: [start_ns, end_ns)."""

    start_ns: int
    end_ns: int
    limit_minor: int


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """What a payment transition announces; written in the transition's own transaction."""

    event_id: str
    topic: str
    aggregate: str
    event_type: str
    schema_version: int
    payload: bytes
    trace_id: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    message: BusMessage


class PaymentStore(Protocol):
    def claim(
        self, tenant: int, source: str, key: str, fingerprint: str, owner: str, now_ns: int, stale_ns: int
    ) -> IdempotencyClaim:
        """INSERT the key (first write wins) or report what the existing row says."""
        ...

    def open_payment(
        self, key_id: int, new: NewPayment, limit: LimitWindow | None, event: OutboxEvent, now_ns: int
    ) -> PaymentRecord | str:
        """Insert the payment, its first transition and its outbox row; a refusal code
        (``daily_limit_exceeded``) instead when ``limit`` would be exceeded."""
        ...

    def transition(
        self,
        payment_id: int,
        from_status: str,
        to_status: str,
        reason: str,
        event: OutboxEvent,
        now_ns: int,
        finish: tuple[int, int, bytes] | None = None,
    ) -> PaymentRecord | None:
        """``UPDATE ... WHERE status = from_status``, a transitions row and an outbox row, and
        optionally the idempotency key's stored answer (key_id, code, body); None if the status moved."""
        ...

    def finish_key(self, key_id: int, code: int, body: bytes, now_ns: int) -> None: ...

    def release_key(self, key_id: int) -> None:
        """Forget an in-flight key whose request never began executing (a retry may run it)."""
        ...

    def payment(self, payment_id: int) -> PaymentRecord | None: ...

    def payment_by_refid(self, account: int, refid: str) -> PaymentRecord | None: ...

    def payments(self, account: int, kind: str, asset: int | None, limit: int) -> list[PaymentRecord]: ...

    def unsettled(self) -> list[PaymentRecord]:
        """Payments whose status and engine effect may disagree after a crash."""
        ...


class OutboxStore(Protocol):
    def unpublished(self, limit: int) -> list[OutboxRow]:
        """The oldest unpublished rows, in id (commit) order."""
        ...

    def mark_published(self, ids: list[int], now_ns: int) -> None: ...
