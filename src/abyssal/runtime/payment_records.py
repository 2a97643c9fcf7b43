"""How payments look from outside: refids, request fingerprints, /v1 bodies and outbox events.

A stored answer is the exact bytes a retry gets back, so everything here is canonical: sorted
keys, amounts as decimal strings in the asset's precision, times as RFC 3339 UTC.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

from abyssal.core.instruments import Asset, Instruments
from abyssal.ports import NewPayment, OutboxEvent, PaymentRecord

PAYMENT_EVENT_SCHEMA_VERSION = 1
_json = msgspec.json.Encoder(order="sorted")

# status code and message of each business refusal; the same codes map to Kraken's strings
REFUSALS: dict[str, tuple[int, str]] = {
    "insufficient_funds": (422, "available balance is lower than the amount"),
    "daily_limit_exceeded": (422, "the daily withdrawal limit for this business day would be exceeded"),
    "unknown_withdraw_key": (422, "no withdrawal key with this name for this asset"),
    "invalid_address": (422, "the address does not match the withdrawal key"),
    "unknown_asset": (422, "unknown asset"),
    "invalid_amount": (422, "the amount is not a positive amount in the asset's precision"),
    "idempotency_key_mismatch": (
        422,
        "this Idempotency-Key was already used with other parameters; use a new key for a new request",
    ),
    "idempotency_key_in_use": (
        409,
        "a request with this Idempotency-Key is still in progress; retry later with the same key",
    ),
    "calendar_missing": (503, "the business calendar has no entry for the current period"),
    "unavailable": (503, "the engine is unavailable; retry with the same Idempotency-Key"),
    "busy": (503, "the engine is busy; retry with the same Idempotency-Key"),
    "not_found": (404, "no such payment"),
    "invalid_transition": (409, "the payment is not in a status that allows this"),
}

# Kraken's IFEX statuses for each of ours (doc 4.6); status-prop where Kraken has one
KRAKEN_STATUS: dict[str, tuple[str, str | None]] = {
    "pending": ("Pending", None),
    "captured": ("Success", None),
    "requested": ("Initial", None),
    "held": ("Pending", None),
    "sent": ("Settled", None),
    "completed": ("Success", None),
    "failed": ("Failure", None),
    "canceled": ("Failure", "canceled"),
}


# the sandbox's funding methods, named like Kraken's (ccxt picks them by these names, doc 4.6):
# asset id -> (method, network, gen-address); unknown assets get "<altname> sandbox"
METHODS: dict[str, tuple[str, str, bool]] = {
    "XXBT": ("Bitcoin", "Bitcoin", True),
    "XETH": ("Ether (Hex)", "Ethereum", True),
    "USDT": ("Tether USD (ERC20)", "Ethereum", True),
    "SOL": ("Solana", "Solana", True),
    "ZUSD": ("Bank Frick (SWIFT)", "SWIFT", False),
    "ZEUR": ("SEPA (Instant)", "SEPA", False),
}


def method_of(asset: Asset) -> str:
    return METHODS.get(asset.id, (f"{asset.altname} sandbox", "", True))[0]


def make_refid(tenant: int, source: str, key: str, claimed_ns: int | None = None) -> str:
    """A refid derived from the idempotency key: a retry names the same payment, across restarts.

    ``claimed_ns`` is when the key row was claimed: a key reused after the reaper forgot it
    (runtime/idempotency_reaper.py) names a new payment. None: the unsalted form (the admin
    faucet on stores without a payments adapter).
    """
    salt = "" if claimed_ns is None else f":{claimed_ns}"
    digest = hashlib.sha256(f"{tenant}:{source}:{key}{salt}".encode()).digest()
    return "FT" + base64.b32encode(digest).decode()[:26]


def fingerprint(operation: str, fields: dict[str, object]) -> str:
    """SHA-256 over a canonical form: the operation plus the meaning-bearing fields, sorted."""
    return hashlib.sha256(_json.encode({"op": operation, **fields})).hexdigest()


def rfc3339(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns // 10**9, tz=UTC).replace(microsecond=(ts_ns // 1000) % 10**6)
    return moment.isoformat().replace("+00:00", "Z")


def resource(ins: Instruments, p: PaymentRecord) -> dict[str, Any]:
    asset = ins.assets[p.asset]
    out: dict[str, Any] = {
        "id": p.refid,
        "type": p.kind,
        "status": p.status,
        "asset": asset.id,
        "amount": asset.fmt(p.amount_minor),
        "fee": asset.fmt(p.fee_minor),
        "version": p.version,
        "created_at": rfc3339(p.created_ns),
        "updated_at": rfc3339(p.updated_ns),
    }
    if p.kind == "withdrawal":
        out.update(key=p.withdraw_key, address=p.address, method=p.method)
    if p.reference:
        out["reference"] = p.reference
    if p.error:
        out["error"] = p.error
    return out


def success_body(ins: Instruments, p: PaymentRecord) -> bytes:
    return _json.encode(resource(ins, p))


def refusal_body(code: str, ins: Instruments | None = None, p: PaymentRecord | None = None) -> bytes:
    body: dict[str, Any] = {"error": {"code": code, "message": REFUSALS[code][1]}}
    if p is not None and ins is not None:
        body["payment"] = resource(ins, p)
    return _json.encode(body)


def after(p: PaymentRecord, status: str, now_ns: int, error: str = "") -> PaymentRecord:
    """What ``p`` will be once a transition to ``status`` commits (to render its body first)."""
    failed = status in ("failed", "canceled")
    return dataclasses.replace(
        p, status=status, version=p.version + 1, updated_ns=now_ns, error=error if failed else p.error
    )


def opened(new: NewPayment, now_ns: int) -> PaymentRecord:
    """What ``new`` will be once opened at ``now_ns`` (version 1), to render its first event."""
    return PaymentRecord(0, new.refid, new.kind, new.account, new.asset, new.amount_minor, 0, new.status, 1,
                         new.method, new.withdraw_key, new.address, new.reference, "", new.trace_id, now_ns,
                         now_ns)  # fmt: skip


def payment_event(ins: Instruments, p: PaymentRecord) -> OutboxEvent:
    """The outbox event announcing that ``p`` reached its current status (one per version)."""
    payload = _json.encode({"account": p.account, "payment": resource(ins, p)})
    return OutboxEvent(
        event_id=f"p-{p.refid}-{p.version}",
        topic="payments",
        aggregate=f"payment:{p.refid}",
        event_type=f"payment.{p.kind}.{p.status}",
        schema_version=PAYMENT_EVENT_SCHEMA_VERSION,
        payload=payload,
        trace_id=p.trace_id,
    )
