"""Funding on the trading page: deposit addresses, a withdrawal followed to completed, cancel, and
bad input that sends nothing. A withdrawal from the session needs the password again (ADR 0007)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.harness import Server
from tests.web.test_trading_page import TIMEOUT_MS, sign_up

pytestmark = pytest.mark.slow
PASSWORD = "a long enough password"


def withdraw(page: Any, amount: str, password: str = PASSWORD) -> None:
    page.locator("input[name=w-amount]").fill(amount)
    page.locator("input[name=w-password]").fill(password)
    page.locator(".withdraw-form button[type=submit]").click()


def row_with(page: Any, status: str) -> Any:
    return page.get_by_test_id("withdrawals").locator(f"tbody tr[data-status={status}]")


def test_withdraw_follow_status_cancel_and_bad_input(browser: Any, web_server: Server, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    sign_up(page, web_server, "fay@example.com")
    page.get_by_role("tab", name="Balances").click()
    page.get_by_role("button", name="Get sandbox funds").click()
    page.locator("[data-testid=balances] tr[data-asset=USD]").wait_for(timeout=TIMEOUT_MS)
    account = page.evaluate("fetch('/api/me').then(r => r.json())")["account"]
    web_server.admin(
        "POST",
        "/admin/payments/withdraw-keys",
        {"account": account, "asset": "USD", "key": "my bank", "address": "DE89370400440532013000"},
    )
    page.reload()
    page.get_by_role("tab", name="Funding").click()
    page.get_by_test_id("deposit-addresses").locator("tr[data-asset=XBT]", has_text="sb1").wait_for(
        timeout=TIMEOUT_MS
    )
    page.locator("select[name=w-asset]").select_option(label="USD")
    page.locator("select[name=w-key] option", has_text="my bank").wait_for(
        state="attached", timeout=TIMEOUT_MS
    )
    page.get_by_test_id("withdraw-available").filter(has_text="10,000").wait_for(timeout=TIMEOUT_MS)

    # bad input: explained next to the field, nothing sent
    sent: list[str] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.url) if "/0/private/Withdraw" in r.url and r.url.endswith("/Withdraw") else None
        ),
    )
    for amount, password, field, text in [
        ("abc", PASSWORD, "amount", "must be a number"),
        ("1.123456", PASSWORD, "amount", "at most 4 decimals"),
        ("0", PASSWORD, "amount", "more than 0"),
        ("20000", PASSWORD, "amount", "More than available"),
        ("10", "", "password", "Enter your password"),
    ]:
        withdraw(page, amount, password)
        page.get_by_test_id(f"withdraw-{field}-error").filter(has_text=text).wait_for(timeout=TIMEOUT_MS)
        assert page.locator(f"input[name=w-{field}]").get_attribute("aria-invalid") == "true"
    page.wait_for_timeout(300)
    assert sent == [], f"an invalid withdrawal was sent: {sent}"

    # a wrong password is refused by the server and moves nothing
    withdraw(page, "10", "not the password")
    page.get_by_test_id("withdraw-password-error").filter(has_text="Invalid password").wait_for(
        timeout=TIMEOUT_MS
    )

    # withdraw, then follow held -> sent -> completed (admin transitions)
    withdraw(page, "100")
    page.get_by_test_id("withdraw-status").filter(has_text="Requested").wait_for(timeout=TIMEOUT_MS)
    held = row_with(page, "held")
    held.wait_for(timeout=TIMEOUT_MS)
    refid = held.get_attribute("data-refid")
    web_server.admin("POST", f"/admin/payments/withdrawals/{refid}/sent")
    page.locator(f"[data-refid='{refid}'][data-status=sent]").wait_for(timeout=TIMEOUT_MS)
    web_server.admin("POST", f"/admin/payments/withdrawals/{refid}/completed")
    page.locator(f"[data-refid='{refid}'][data-status=completed]").wait_for(timeout=TIMEOUT_MS)

    # cancel where allowed (held)
    withdraw(page, "50")
    held = row_with(page, "held")
    held.wait_for(timeout=TIMEOUT_MS)
    held.get_by_role("button", name="Cancel").click()
    row_with(page, "canceled").wait_for(timeout=TIMEOUT_MS)

    # auto-settle: the operator's delay completes it without a hand
    web_server.admin("POST", "/admin/payments/settings", {"auto_settle_ms": 300})
    try:
        withdraw(page, "25")
        page.get_by_test_id("withdrawals").locator("tbody tr[data-status=completed]").nth(1).wait_for(
            timeout=TIMEOUT_MS
        )
    finally:
        web_server.admin("POST", "/admin/payments/settings", {"auto_settle_ms": 0})
    page.get_by_role("tab", name="Balances").click()
    page.locator("[data-testid=balances] tr[data-asset=USD]", has_text="9,875.0000").wait_for(
        timeout=TIMEOUT_MS
    )
    page.get_by_role("tab", name="Funding").click()
    page.screenshot(path=str(shots / "funding.png"), full_page=True)
    context.close()


def test_session_withdraw_needs_the_password(browser: Any, web_server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_up(page, web_server, "gus@example.com")
    answer = page.evaluate(
        """async () => { const me = await (await fetch('/api/me')).json();
        const r = await fetch('/0/private/Withdraw', {method: 'POST', headers: {'x-csrf-token': me.csrf,
          'content-type': 'application/x-www-form-urlencoded'}, body: 'asset=USD&key=x&amount=1'});
        return r.json(); }"""
    )
    assert answer["error"] == ["ESession:Invalid password"]
    context.close()
