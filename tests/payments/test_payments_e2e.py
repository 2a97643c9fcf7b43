"""Payments against a live server: 100 concurrent twins, Kraken's funding endpoints, crashes of the
relay and of the consumer at named fault points, auto-settle. Each test ends with the ledger audit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness import Server
from tests.ops.signer import Signer

pytestmark = pytest.mark.slow


class Receiver:
    """A webhook target on a free port that records the event id of every request it answers."""

    def __init__(self) -> None:
        events: list[str] = []
        self.events = events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                events.append(self.headers["Abyssal-Event-Id"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def call(k: Signer, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
    """``Signer.call`` for parameters named like its own arguments (``method``)."""
    import urllib.parse

    from abyssal.gateway.auth import sign

    k.nonce += 1
    body = urllib.parse.urlencode({"nonce": str(k.nonce), **params}).encode()
    headers = {
        "API-Key": k.key["api_key"],
        "API-Sign": sign(k.key["api_secret"], f"/0/private/{endpoint}", str(k.nonce), body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    reply: dict[str, Any] = k.http.post(f"/0/private/{endpoint}", content=body, headers=headers).json()
    return reply


def tenant(server: Server, name: str, **deposits: str) -> tuple[dict[str, Any], dict[str, str]]:
    created = server.account(name, **deposits)
    token = server.admin("POST", "/admin/payments/tokens", {"account": name})["token"]
    return created, {"Authorization": f"Bearer {token}"}


def test_100_concurrent_requests_with_one_key_make_one_effect(server: Server) -> None:
    key, auth = tenant(server, "alice")

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
            return await asyncio.gather(
                *[
                    http.post(
                        "/v1/deposits",
                        json={"asset": "USD", "amount": "12.5"},
                        headers={**auth, "Idempotency-Key": "burst-1"},
                    )
                    for _ in range(100)
                ]
            )

    answers = asyncio.run(burst())
    assert {r.status_code for r in answers} == {201}
    assert len({r.content for r in answers}) == 1
    refid = answers[0].json()["id"]
    k = Signer(server.url, key)
    ledger = k.call("Ledgers", type="deposit")["result"]["ledger"]
    k.http.close()
    assert [e["refid"] for e in ledger.values()] == [refid]
    other = httpx.post(
        server.url + "/v1/deposits",
        json={"asset": "USD", "amount": "13"},
        headers={**auth, "Idempotency-Key": "burst-1"},
    )
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_mismatch"


def test_kraken_funding_endpoints(server: Server) -> None:
    key, auth = tenant(server, "alice", USD="1000", XBT="2")
    k = Signer(server.url, key)
    methods = k.call("DepositMethods", asset="XBT")["result"]
    assert methods[0]["method"] == "Bitcoin" and methods[0]["gen-address"] is True
    a1 = call(k, "DepositAddresses", {"asset": "XBT", "method": "Bitcoin"})["result"]
    assert a1 == call(k, "DepositAddresses", {"asset": "XBT", "method": "Bitcoin"})["result"]  # deterministic
    assert a1[0]["address"].startswith("sb1") and a1[0]["expiretm"] == "0"
    assert call(k, "DepositAddresses", {"asset": "XBT", "method": "Nope"})["error"] == [
        "EFunding:No funding method"
    ]
    deposits = k.call("DepositStatus", asset="XBT")["result"]
    assert deposits[0]["status"] == "Success" and deposits[0]["amount"] == "2.0000000000"
    assert k.call("Withdraw", asset="XBT", key="cold", amount="1")["error"] == [
        "EFunding:Unknown withdraw key"
    ]
    httpx.post(
        server.url + "/v1/withdraw-keys",
        json={"asset": "XBT", "key": "cold", "address": "bc1qcold"},
        headers=auth,
    ).raise_for_status()
    listed = k.call("WithdrawAddresses", asset="XBT")["result"]
    assert listed == [
        {"address": "bc1qcold", "asset": "XBT", "method": "Bitcoin", "key": "cold", "verified": True}
    ]
    info = k.call("WithdrawInfo", asset="XBT", key="cold", amount="0.5")["result"]
    assert info == {
        "method": "Bitcoin",
        "limit": "2.0000000000",
        "amount": "0.5000000000",
        "fee": "0.0000000000",
    }
    assert k.call("Withdraw", asset="XBT", key="cold", amount="3")["error"] == ["EOrder:Insufficient funds"]
    assert k.call("Withdraw", asset="XBT", key="cold", amount="1", address="bc1qother")["error"] == [
        "EFunding:Invalid withdrawal address"
    ]
    refid = k.call("Withdraw", asset="XBT", key="cold", amount="0.5")["result"]["refid"]
    status = {w["refid"]: w for w in k.call("WithdrawStatus", asset="XBT")["result"]}
    assert status[refid]["status"] == "Pending" and status[refid]["key"] == "cold"
    assert k.call("BalanceEx")["result"]["XXBT"]["hold_trade"] == "0.5000000000"
    assert k.call("WithdrawCancel", asset="XBT", refid=refid) == {"error": [], "result": True}
    assert k.call("WithdrawCancel", asset="XBT", refid=refid)["error"] == ["EFunding:Unknown reference id"]
    status = {
        w["refid"]: w for w in k.call("WithdrawStatus", asset="XBT", cursor="true")["result"]["withdrawals"]
    }
    assert (status[refid]["status"], status[refid]["status-prop"]) == ("Failure", "canceled")
    assert k.call("BalanceEx")["result"]["XXBT"] == {"balance": "2.0000000000", "hold_trade": "0.0000000000"}
    k.http.close()


def test_the_sandbox_auto_settles_withdrawals(server: Server) -> None:
    key, auth = tenant(server, "alice", USD="100")
    server.admin("POST", "/admin/payments/settings", {"auto_settle_ms": 50})
    httpx.post(
        server.url + "/v1/withdraw-keys",
        json={"asset": "USD", "key": "bank", "address": "CH93-0076"},
        headers=auth,
    ).raise_for_status()
    r = httpx.post(
        server.url + "/v1/withdrawals",
        json={"asset": "USD", "amount": "10", "key": "bank"},
        headers={**auth, "Idempotency-Key": "auto"},
    )
    refid = r.json()["id"]
    for _ in range(100):
        one = httpx.get(f"{server.url}/v1/withdrawals/{refid}", headers=auth).json()
        if one["status"] == "completed":
            break
        threading.Event().wait(0.05)
    assert [s["to"] for s in one["transitions"]] == ["requested", "held", "sent", "completed"]
    k = Signer(server.url, key)
    assert k.call("BalanceEx")["result"]["ZUSD"]["balance"] == "90.0000"
    k.http.close()


def _crash_then_recover(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    fault: str,
    database: str | None = None,
) -> None:
    """Arm ``fault`` (exit), make a deposit that hits it, restart clean, retry: one effect, one webhook.

    ``database``: a postgresql:// URL (tests/postgres), or None for SQLite in the data dir."""
    server = Server(tmp_path / "data", database=database)
    monkeypatch.setenv("ABYSSAL_FAULT", f"{fault}:exit")
    server.start()
    try:
        _, auth = tenant(server, "alice")
        httpx.post(
            server.url + "/v1/webhooks", json={"url": receiver.url, "secret": "x"}, headers=auth
        ).raise_for_status()
        request = {"json": {"asset": "USD", "amount": "5"}, "headers": {**auth, "Idempotency-Key": "crash"}}
        with contextlib.suppress(httpx.HTTPError):  # the server may die before it answers
            httpx.post(server.url + "/v1/deposits", timeout=10, **request)  # type: ignore[arg-type]
        assert server.proc is not None and server.proc.wait(timeout=10) == 137, "the fault point was not hit"
        server.stop()
        monkeypatch.delenv("ABYSSAL_FAULT")
        server.start()
        retry = httpx.post(server.url + "/v1/deposits", timeout=10, **request)  # type: ignore[arg-type]
        assert retry.status_code == 201 and retry.json()["status"] == "captured"
        refid = retry.json()["id"]
        expected = {f"p-{refid}-1", f"p-{refid}-2"}
        for _ in range(200):
            if expected <= set(receiver.events):
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.3)
        assert sorted(receiver.events) == sorted(expected), receiver.events  # each exactly once
        status = server.status()
        assert status["audit"] == []
    finally:
        server.stop()


def test_relay_killed_between_publish_and_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    _crash_then_recover(tmp_path, monkeypatch, receiver, "relay.after_publish_before_mark")


def test_consumer_killed_between_its_write_and_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    _crash_then_recover(tmp_path, monkeypatch, receiver, "notifications.before_commit")
