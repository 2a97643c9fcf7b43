"""The trading page end to end in a real browser: sign up, faucet, orders, fills, history, keys."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.harness import Server

from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow
TIMEOUT_MS = 10_000


def private(server: Server, key: str, secret: str, method: str, **params: str) -> Any:
    """A signed Kraken REST call, exactly as a client library makes it."""
    nonce = str(time.time_ns())
    body = urllib.parse.urlencode({"nonce": nonce, **params}).encode()
    path = f"/0/private/{method}"
    req = urllib.request.Request(server.url + path, data=body, method="POST")
    req.add_header("API-Key", key)
    req.add_header("API-Sign", sign(secret, path, nonce, body))
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def sign_up(page: Any, server: Server, email: str) -> None:
    page.goto(server.url + "/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up", exact=True).last.click()
    page.get_by_test_id("who").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_test_id("who").inner_text() == email


def place(page: Any, price: str, volume: str) -> None:
    page.locator("input[name=price]").fill(price)
    page.locator("input[name=volume]").fill(volume)
    page.locator(".order-form button[type=submit]").click()


def test_sign_up_fund_trade_fill_cancel(browser: Any, web_server: Server, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    sign_up(page, web_server, "alice@example.com")
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["abyssal_session"]["httpOnly"] and cookies["abyssal_session"]["secure"]
    assert cookies["abyssal_session"]["sameSite"] == "Strict"

    # the faucet funds the new account through the admin deposit path
    page.get_by_role("tab", name="Balances").click()
    page.get_by_role("button", name="Get sandbox funds").click()
    usd = page.locator("[data-testid=balances] tr[data-asset=USD]")
    usd.wait_for(timeout=TIMEOUT_MS)
    assert "10,000.0000" in usd.inner_text()

    # a limit buy shows in the book and in open orders
    page.goto(web_server.url + "/?pair=XBTUSD")
    page.get_by_test_id("available").filter(has_text="USD").wait_for(timeout=TIMEOUT_MS)
    page.locator("[data-testid=book][data-source=ws]").wait_for(timeout=TIMEOUT_MS)  # live over /v2
    page.locator("input[name=price]").fill("30000")
    page.locator("input[name=volume]").fill("0.01")
    assert page.get_by_test_id("cost").inner_text() == "300.00000 USD"
    with urllib.request.urlopen(web_server.url + "/0/public/AssetPairs?pair=XBTUSD", timeout=10) as resp:
        taker_pct = Decimal(str(json.loads(resp.read())["result"]["XXBTZUSD"]["fees"][0][1]))
    assert page.get_by_test_id("fee").inner_text() == f"{Decimal('300') * taker_pct / 100:.5f} USD"
    page.locator(".order-form button[type=submit]").click()
    page.get_by_test_id("order-status").filter(has_text="Placed").wait_for(timeout=TIMEOUT_MS)
    page.get_by_test_id("book").locator("tr.bid", has_text="30,000.0").wait_for(timeout=TIMEOUT_MS)
    page.get_by_test_id("open-orders").locator("tbody tr", has_text="30000").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(shots / "trade-dark.png"), full_page=True)

    # a second account fills it through the signed REST API
    bob = web_server.account("bob", XBT="1")
    filled = private(web_server, bob["api_key"], bob["api_secret"], "AddOrder",
                     pair="XBTUSD", type="sell", ordertype="limit", price="30000", volume="0.01")  # fmt: skip
    assert filled["error"] == [], filled
    page.get_by_test_id("tape").locator("tbody tr", has_text="30,000.0").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Trade history").click()
    page.get_by_test_id("my-trades").locator("tbody tr", has_text="buy").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Order history").click()
    page.get_by_test_id("closed-orders").locator("tbody tr", has_text="closed").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Balances").click()
    xbt = page.locator("[data-testid=balances] tr[data-asset=XBT]", has_text="1.0100000000")
    xbt.wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Ledger").click()
    page.get_by_test_id("ledger").locator("tbody tr", has_text="trade").first.wait_for(timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    csv = Path(download.value.path()).read_text()
    assert csv.startswith("id,time,type,asset,amount,fee,balance,refid")
    assert "deposit" in csv and "trade" in csv
    page.get_by_label("Ledger type").select_option("deposit")  # filters narrow the ledger
    page.get_by_test_id("ledger").locator("tbody tr", has_text="deposit").first.wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("ledger").locator("tbody tr", has_text="trade")).to_have_count(0)
    page.get_by_label("Ledger type").select_option("all")
    page.screenshot(path=str(shots / "ledger.png"), full_page=True)

    # cancel an open order
    page.get_by_role("tab", name="Open orders").click()
    place(page, "29000", "0.02")
    row = page.get_by_test_id("open-orders").locator("tbody tr", has_text="29000")
    row.wait_for(timeout=TIMEOUT_MS)
    row.get_by_role("button", name="Cancel").click()
    row.wait_for(state="detached", timeout=TIMEOUT_MS)

    # amend: place, change the price in place, see the new price
    place(page, "28000", "0.02")
    row = page.get_by_test_id("open-orders").locator("tbody tr", has_text="28000")
    row.wait_for(timeout=TIMEOUT_MS)
    row.get_by_role("button", name="Amend").click()
    row.get_by_label("New price").fill("28500")
    row.get_by_role("button", name="Save").click()
    page.get_by_test_id("open-orders").locator("tbody tr", has_text="28500").wait_for(timeout=TIMEOUT_MS)

    # light theme and phone width
    page.get_by_role("button", name="Switch to light theme").click()
    page.screenshot(path=str(shots / "trade-light.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone: {width} px"
    page.screenshot(path=str(shots / "trade-phone.png"), full_page=True)
    context.close()


BAD_INPUTS = [
    # (price, volume, field, text the person sees)
    ("30000", "abc", "volume", "must be a number"),
    ("30000.55", "0.01", "price", "at most 1 decimals"),
    ("30000", "0.00001", "volume", "minimum amount is"),
    ("30000", "50", "volume", "More than available"),
    ("1", "0.1", "volume", "at least 0.5 USD"),
]


def test_bad_input_is_explained_and_nothing_is_sent(browser: Any, web_server: Server, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_up(page, web_server, "carol@example.com")
    page.get_by_role("tab", name="Balances").click()
    page.get_by_role("button", name="Get sandbox funds").click()
    page.locator("[data-testid=balances] tr[data-asset=USD]").wait_for(timeout=TIMEOUT_MS)
    page.goto(web_server.url + "/?pair=XBTUSD")
    page.get_by_test_id("available").filter(has_text="10,000").wait_for(timeout=TIMEOUT_MS)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/0/private/AddOrder" in r.url else None)
    for price, volume, field, text in BAD_INPUTS:
        place(page, price, volume)
        error = page.get_by_test_id(f"{field}-error")
        error.filter(has_text=text).wait_for(timeout=TIMEOUT_MS)
        assert page.locator(f"input[name={field}]").get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(shots / "bad-input.png"), full_page=True)
    page.wait_for_timeout(300)
    assert sent == [], f"an invalid order was sent: {sent}"
    context.close()


def test_api_key_create_use_revoke(browser: Any, web_server: Server, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_up(page, web_server, "dave@example.com")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("my bot")
    page.get_by_role("button", name="Create key").click()
    page.get_by_test_id("new-secret").wait_for(timeout=TIMEOUT_MS)
    key = page.get_by_test_id("new-api-key").inner_text()
    secret = page.get_by_test_id("new-api-secret").inner_text()
    page.screenshot(path=str(shots / "keys.png"), full_page=True)
    assert private(web_server, key, secret, "Balance")["error"] == []
    row = page.get_by_test_id("keys").locator("tbody tr", has_text="my bot")
    row.wait_for(timeout=TIMEOUT_MS)
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke").click()
    row.wait_for(state="detached", timeout=TIMEOUT_MS)
    assert private(web_server, key, secret, "Balance")["error"] == ["EAPI:Invalid key"]
    context.close()


def test_session_needs_csrf_and_login_is_throttled(browser: Any, web_server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_up(page, web_server, "erin@example.com")
    no_csrf = page.evaluate("fetch('/0/private/Balance', {method: 'POST'}).then(r => r.json())")
    assert no_csrf["error"] == ["ESession:Invalid CSRF token"]
    statuses = page.evaluate(
        """async () => { const out = [];
        for (let i = 0; i < 6; i++) {
          const r = await fetch('/api/login', {method: 'POST', headers: {'content-type': 'application/json'},
            body: JSON.stringify({email: 'erin@example.com', password: 'not the password'})});
          out.push(r.status);
        } return out; }"""
    )
    assert statuses == [401, 401, 401, 401, 401, 429]
    context.close()


def test_market_falls_back_to_rest_without_the_socket(browser: Any, web_server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.route_web_socket("**/v2", lambda ws: ws.close())
    page.goto(web_server.url + "/?pair=ETHUSD")
    page.locator("[data-testid=book][data-source=rest]").wait_for(timeout=TIMEOUT_MS)
    frank = web_server.account("frank", USD="1000")
    placed = private(web_server, frank["api_key"], frank["api_secret"], "AddOrder",
                     pair="ETHUSD", type="buy", ordertype="limit", price="1234", volume="0.1")  # fmt: skip
    assert placed["error"] == [], placed
    page.get_by_test_id("book").locator("tr.bid", has_text="1,234").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("[data-testid=tape]").get_attribute("data-source") == "rest"
    context.close()
