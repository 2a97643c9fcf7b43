"""Kraken's funding endpoints (doc 4.6) on the payments machinery: methods, sandbox deposit
addresses, deposit and withdrawal status, withdrawal keys, info, withdraw and cancel.

A Kraken ``Withdraw`` is a payments withdrawal with source ``kraken`` and the idempotency key
``<key_no>:<nonce>`` (a nonce is used once, so each call is its own request). Errors are
Kraken's strings (doc 1.3).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from abyssal.core.instruments import Asset
from abyssal.gateway.context import Ctx
from abyssal.gateway.params import (
    ParamError,
    Params,
    opt_bool,
    opt_str,
    parse_decimal,
    req_str,
)
from abyssal.gateway.payments_api import V1Error, payments_of
from abyssal.ports import PaymentRecord
from abyssal.runtime import payment_records as records
from abyssal.runtime.payments import PaymentService

STATUS_ROWS_MAX = 500
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# our refusal codes to Kraken's strings
KRAKEN_ERROR = {
    "insufficient_funds": "EOrder:Insufficient funds",
    "daily_limit_exceeded": "EFunding:Invalid amount",
    "invalid_amount": "EFunding:Invalid amount",
    "unknown_withdraw_key": "EFunding:Unknown withdraw key",
    "invalid_address": "EFunding:Invalid withdrawal address",
    "unknown_asset": "EFunding:Unknown asset",
    "not_found": "EFunding:Unknown reference id",
    "invalid_transition": "EFunding:Unknown reference id",
    "busy": "EService:Busy",
    "unavailable": "EService:Unavailable",
    "calendar_missing": "EService:Unavailable",
}


def _svc(ctx: Ctx) -> PaymentService:
    try:
        return payments_of(ctx.exchange)
    except V1Error:
        raise ParamError("EService:Unavailable") from None


def _asset(ctx: Ctx, p: Params, *, required: bool = True) -> Asset | None:
    name = req_str(p, "asset") if required else opt_str(p, "asset")
    if name is None:
        return None
    asset = ctx.exchange.instruments.asset(name)
    if asset is None:
        raise ParamError("EFunding:Unknown asset")
    return asset


def _method_row(asset: Asset) -> tuple[str, str, bool]:
    return records.METHODS.get(asset.id, (records.method_of(asset), "", True))


def sandbox_address(account: int, asset: Asset, method: str, index: int = 0) -> str:
    """Deterministic per (account, asset, method, index): base58 text that passes ccxt's checks."""
    digest = int.from_bytes(hashlib.sha256(f"{account}:{asset.id}:{method}:{index}".encode()).digest(), "big")
    chars = []
    for _ in range(34):
        digest, rem = divmod(digest, 58)
        chars.append(_B58[rem])
    return "sb1" + "".join(chars)


async def deposit_methods(ctx: Ctx, p: Params) -> Any:
    asset = _asset(ctx, p)
    assert asset is not None
    method, _, gen = _method_row(asset)
    return [
        {"method": method, "limit": False, "fee": asset.fmt(0), "gen-address": gen, "minimum": asset.fmt(1)}
    ]


async def deposit_addresses(ctx: Ctx, p: Params) -> Any:
    asset = _asset(ctx, p)
    assert asset is not None
    method = req_str(p, "method")
    if method != _method_row(asset)[0]:
        raise ParamError("EFunding:No funding method")
    new = opt_bool(p, "new", False)
    return [{"address": sandbox_address(ctx.account, asset, method), "expiretm": "0", "new": new}]


def _row(ctx: Ctx, r: PaymentRecord) -> dict[str, Any]:
    asset = ctx.exchange.instruments.assets[r.asset]
    status, prop = records.KRAKEN_STATUS[r.status]
    row: dict[str, Any] = {
        "method": r.method or records.method_of(asset),
        "aclass": "currency",
        "asset": asset.id,
        "refid": r.refid,
        "txid": "",
        "info": r.address or r.reference,
        "amount": asset.fmt(r.amount_minor),
        "fee": asset.fmt(r.fee_minor),
        "time": r.created_ns // 10**9,
        "status": status,
    }
    if prop is not None:
        row["status-prop"] = prop
    if r.kind == "withdrawal":
        row["network"] = _method_row(asset)[1]
        row["key"] = r.withdraw_key
    return row


async def _status(ctx: Ctx, p: Params, kind: str) -> list[dict[str, Any]]:
    asset = _asset(ctx, p, required=False)
    method = opt_str(p, "method")
    svc = _svc(ctx)
    rows = await ctx.exchange.payment_io(
        svc.store.payments, ctx.account, kind, None if asset is None else asset.index, STATUS_ROWS_MAX
    )
    return [_row(ctx, r) for r in rows if method is None or (r.method or "") == method]


async def deposit_status(ctx: Ctx, p: Params) -> Any:
    rows = await _status(ctx, p, "deposit")
    return {"deposit": rows, "next_cursor": ""} if _cursor(p) else rows


async def withdraw_status(ctx: Ctx, p: Params) -> Any:
    rows = await _status(ctx, p, "withdrawal")
    return {"withdrawals": rows, "next_cursor": ""} if _cursor(p) else rows


def _cursor(p: Params) -> bool:
    raw = p.get("cursor")
    return raw not in (None, False, "false", "False", "")


async def withdraw_methods(ctx: Ctx, p: Params) -> Any:
    only = _asset(ctx, p, required=False)
    assets = [only] if only is not None else list(ctx.exchange.instruments.assets)
    return [
        {"asset": a.id, "method": _method_row(a)[0], "network": _method_row(a)[1], "minimum": a.fmt(1)}
        for a in assets
    ]


async def _keys(ctx: Ctx) -> list[tuple[int, str, str, str]]:
    svc = _svc(ctx)
    rows: list[tuple[int, str, str, str]] = await ctx.exchange.payment_io(
        svc.store.withdraw_keys, ctx.account
    )
    return rows


async def withdraw_addresses(ctx: Ctx, p: Params) -> Any:
    asset = _asset(ctx, p, required=False)
    method, key = opt_str(p, "method"), opt_str(p, "key")
    ins = ctx.exchange.instruments
    return [
        {"address": address, "asset": ins.assets[a].altname, "method": m, "key": name, "verified": True}
        for a, name, m, address in await _keys(ctx)
        if (asset is None or a == asset.index) and (method is None or m == method) and (key in (None, name))
    ]


def _amount(asset: Asset, p: Params) -> int:
    value = parse_decimal(req_str(p, "amount", error="EFunding:Invalid amount"))
    minor = None if value is None else asset.minor_of(value)
    if minor is None:
        raise ParamError("EFunding:Invalid amount")
    return minor


async def withdraw_info(ctx: Ctx, p: Params) -> Any:
    asset = _asset(ctx, p)
    assert asset is not None
    name = req_str(p, "key")
    amount = _amount(asset, p)
    found = next((k for k in await _keys(ctx) if k[0] == asset.index and k[1] == name), None)
    if found is None:
        raise ParamError("EFunding:Unknown withdraw key")
    acct = ctx.exchange.engine.s.accounts.get(ctx.account)  # a read of engine state between batches
    available = acct.available(asset.index) if acct is not None else 0
    svc = _svc(ctx)
    window = await ctx.exchange.payment_io(_remaining, svc, ctx.account, asset.index, ctx.now_ns)
    limit = available if window is None else max(0, min(available, window))
    return {"method": found[2], "limit": asset.fmt(limit), "amount": asset.fmt(amount), "fee": asset.fmt(0)}


def _remaining(svc: PaymentService, account: int, asset: int, now_ns: int) -> int | None:
    """What the daily limit still allows (None: no limit); blocking."""
    try:
        window = svc.limit_window(account, asset, now_ns)
    except LookupError:
        return 0
    if window is None:
        return None
    used = sum(
        r.amount_minor
        for r in svc.store.payments(account, "withdrawal", asset, 10_000)
        if r.status in ("requested", "held", "sent", "completed")
        and window.start_ns <= r.created_ns < window.end_ns
    )
    return window.limit_minor - used


async def withdraw(ctx: Ctx, p: Params) -> Any:
    asset = _asset(ctx, p)
    assert asset is not None
    name = req_str(p, "key")
    amount = _amount(asset, p)
    address = opt_str(p, "address") or ""
    max_fee = opt_str(p, "max_fee")
    if max_fee is not None:
        fee_cap = parse_decimal(max_fee)
        if fee_cap is None or fee_cap < 0:
            raise ParamError("EFunding:Max fee exceeded")
    answer = await _svc(ctx).request_withdrawal(
        ctx.account, "kraken", f"{ctx.key.key_no}:{ctx.nonce}", asset.index, amount, name, address
    )
    body = msgspec.json.decode(answer.body)
    if answer.status >= 300:
        raise ParamError(KRAKEN_ERROR.get(body["error"]["code"], "EGeneral:Internal error"))
    return {"refid": body["id"]}


async def withdraw_cancel(ctx: Ctx, p: Params) -> Any:
    asset = _asset(ctx, p)
    assert asset is not None
    refid = req_str(p, "refid", error="EFunding:Invalid reference id")
    result = await _svc(ctx).resolve(ctx.account, refid, "canceled", "canceled")
    if isinstance(result, str):
        raise ParamError(KRAKEN_ERROR.get(result, "EFunding:Unknown reference id"))
    if result.asset != asset.index:
        raise ParamError("EFunding:Unknown reference id")
    return True
