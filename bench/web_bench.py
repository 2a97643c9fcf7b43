"""The trading page's weight and time to interactive on loopback, measured in headless chromium.

Run from the repo root after building the page (``cd web && npm ci && npm run build``)::

    .venv/bin/python bench/web_bench.py            # about 20 s
    .venv/bin/python bench/web_bench.py --runs 10

What it does:

- sums the JavaScript under ``web/dist/assets`` raw and gzipped (level 9, what a browser downloads
  from the server, which gzips text once and keeps it in memory); goal: at most 250 KB gzipped;
- starts ``abyssal serve`` (tests/harness.py) with a fresh data directory, creates a logged-in user
  and puts one resting order in the book so the page has something to draw;
- ``--runs`` times, in a fresh browser context (cold HTTP cache): loads ``/?pair=XBTUSD`` and reads
  the Navigation Timing entry (``domInteractive``, ``domContentLoadedEventEnd``, ``loadEventEnd``)
  and the time when the page is usable: the order book shows the resting order and the order form's
  submit button is enabled (``performance.now()`` at that moment, from navigation start);
- asserts the end state: every run reached usable, the order is still in the book, the server's
  ledger audit is empty; prints medians and the machine.

Then the live market (``--stream-s``, default 10 s; 0 skips it): the page is open on XBT/USD in
headless chromium, fed by WebSocket v2 (book with checksums, trades, ticker), while ``--threads``
workers send signed ``AddOrder`` calls through REST at ``--rate`` per second in total (default 1,000;
half buy, half sell at random prices around 30,000 so that many cross: book updates *and* trades).
Each worker has its own account and key (nonces never race). In the page, an init script counts
``requestAnimationFrame`` callbacks per second, and the book records, at each React commit that shows
new socket data, ``performance.timeOrigin + performance.now()`` minus the server's timestamp of the
newest message it shows (the update lag; same machine, same clock). Reported: orders/s achieved, WS
messages applied, checksum mismatches, frames/s (min, p5, median over 1 s windows; goal >= 30) and
update lag (p50, p95, p99, max).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness import Server  # noqa: E402

CHROMIUM = os.environ.get("ABYSSAL_CHROMIUM", "/usr/bin/chromium")
JS_GZIP_BYTES_GOAL = 250 * 1024
USABLE_TIMEOUT_MS = 15_000

USABLE_JS = """async () => {
  const deadline = performance.now() + TIMEOUT_MS;
  while (performance.now() < deadline) {
    const bid = document.querySelector('[data-testid=book] tr.bid');
    const submit = document.querySelector('.order-form button[type=submit]');
    if (bid && submit && !submit.disabled) return performance.now();
    await new Promise(r => setTimeout(r, 5));
  }
  return -1;
}""".replace("TIMEOUT_MS", str(USABLE_TIMEOUT_MS))


def js_sizes(dist: Path) -> tuple[int, int, list[tuple[str, int, int]]]:
    files = []
    for f in sorted((dist / "assets").glob("*.js")):
        raw = f.read_bytes()
        files.append((f.name, len(raw), len(gzip.compress(raw, 9))))
    return sum(r for _, r, _ in files), sum(g for _, _, g in files), files


def seed(server: Server) -> tuple[str, str]:
    """A web user with funds and one resting buy; returns (session cookie, csrf)."""

    def call(path: str, body: bytes, headers: dict[str, str]) -> tuple[Any, Any]:
        req = urllib.request.Request(server.url + path, data=body, method="POST", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read()), resp.headers

    me, headers = call(
        "/api/signup",
        json.dumps({"email": "bench@example.com", "password": "bench password 1"}).encode(),
        {"Content-Type": "application/json"},
    )
    session = next(
        c.split(";")[0].split("=", 1)[1]
        for c in headers.get_all("Set-Cookie")
        if c.startswith("abyssal_session=")
    )
    auth = {"Cookie": f"abyssal_session={session}", "X-CSRF-Token": me["csrf"]}
    call("/api/faucet", b"", auth)
    placed, _ = call(
        "/0/private/AddOrder",
        b"pair=XBTUSD&type=buy&ordertype=limit&price=30000&volume=0.01",
        {**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert placed["error"] == [], placed
    return session, me["csrf"]


PERF_INIT_JS = """
window.__abyssalPerf = { lags: [] };
window.__abyssalFrames = [];
(function tick(t) { window.__abyssalFrames.push(t); requestAnimationFrame(tick); })(performance.now());
"""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive_orders(server: Server, threads: int, rate: float, seconds: float) -> dict[str, float]:
    """``threads`` workers, each with its own account and key, send AddOrder at ``rate``/s in total."""
    import http.client
    import random
    import threading
    import urllib.parse

    from abyssal.gateway.auth import sign

    keys = []
    for i in range(threads):
        side = "buy" if i % 2 == 0 else "sell"
        funds = {"USD": "100000000"} if side == "buy" else {"XBT": "100000"}
        acct = server.account(f"bench{i}", **funds)
        keys.append((side, acct["api_key"], acct["api_secret"]))
    sent = [0] * threads
    errors = [0] * threads
    stop_at = time.perf_counter() + seconds
    per_thread_gap = threads / rate

    def worker(i: int) -> None:
        side, key, secret = keys[i]
        rnd = random.Random(i)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        next_at = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            if now < next_at:
                time.sleep(next_at - now)
            next_at += per_thread_gap
            price = f"{30000 + rnd.randint(-100, 100) / 10:.1f}"
            nonce = str(time.time_ns())
            body = urllib.parse.urlencode(
                {
                    "nonce": nonce,
                    "pair": "XBTUSD",
                    "type": side,
                    "ordertype": "limit",
                    "price": price,
                    "volume": "0.001",
                }
            ).encode()
            path = "/0/private/AddOrder"
            conn.request(
                "POST",
                path,
                body,
                {
                    "API-Key": key,
                    "API-Sign": sign(secret, path, nonce, body),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            answer = json.loads(conn.getresponse().read())
            sent[i] += 1
            if answer["error"]:
                errors[i] += 1
        conn.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return {"orders": sum(sent), "errors": sum(errors), "seconds": elapsed, "rate": sum(sent) / elapsed}


def stream(server: Server, session: str, browser: Any, threads: int, rate: float, seconds: float) -> None:
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    ctx.add_cookies([{"name": "abyssal_session", "value": session, "url": server.url}])
    ctx.add_init_script(PERF_INIT_JS)
    page = ctx.new_page()
    page.goto(server.url + "/?pair=XBTUSD")
    page.locator("[data-testid=book][data-source=ws] tr.bid").first.wait_for(timeout=USABLE_TIMEOUT_MS)
    page.evaluate("window.__abyssalPerf.lags.length = 0; window.__abyssalFrames.length = 0")
    before = page.evaluate("window.__abyssalPerf.messages || 0")
    orders = drive_orders(server, threads, rate, seconds)
    page.wait_for_timeout(500)  # let the last frames arrive
    frames: list[float] = page.evaluate("window.__abyssalFrames")
    lags: list[float] = page.evaluate("window.__abyssalPerf.lags")
    source = page.locator("[data-testid=book]").get_attribute("data-source")
    messages = page.evaluate("window.__abyssalPerf.messages || 0") - before
    mismatches = page.evaluate("window.__abyssalPerf.mismatches || 0")
    ctx.close()
    assert frames, "no animation frames were recorded"
    start, end = frames[0], frames[-1]
    windows = [0] * max(1, int((end - start) // 1000))
    for t in frames:
        k = int((t - start) // 1000)
        if k < len(windows):
            windows[k] += 1
    fps = [float(w) for w in windows]
    print(f"live market, {seconds:.0f} s, {threads} REST workers, target {rate:.0f} orders/s:")
    n, refused, achieved = orders["orders"], orders["errors"], orders["rate"]
    print(f"  orders sent {n:.0f} ({refused:.0f} refused) = {achieved:.0f}/s achieved")
    print(
        f"  book source at the end: {source}; socket messages applied {messages} ({messages / seconds:.0f}/s)"
    )
    print(f"  checksum mismatches {mismatches}; book commits {len(lags)} ({len(lags) / seconds:.0f}/s)")
    verdict = "ok" if min(fps) >= 30 else "BELOW 30"
    print(
        f"  frames/s over 1 s windows: min {min(fps):.0f}  p5 {_pct(fps, 0.05):.0f}  "
        f"median {statistics.median(fps):.0f}  ({verdict})"
    )
    print(
        f"  update lag (server timestamp -> commit), ms: p50 {_pct(lags, 0.5):.1f}"
        f"  p95 {_pct(lags, 0.95):.1f}"
        f"  p99 {_pct(lags, 0.99):.1f}  max {max(lags, default=float('nan')):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stream-s", type=float, default=10.0, help="live-market phase length; 0 skips it")
    parser.add_argument("--rate", type=float, default=1000.0, help="orders per second in total")
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    assert 1 <= args.runs <= 100
    dist = ROOT / "web" / "dist"
    if not (dist / "index.html").is_file():
        sys.exit("web/dist is missing: run (cd web && npm ci && npm run build) first")
    from playwright.sync_api import sync_playwright

    raw, gz, files = js_sizes(dist)
    print(f"machine: {platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}, chromium {CHROMIUM}")  # fmt: skip
    for name, r, g in files:
        print(f"  {name:<50} {r / 1024:8.1f} KB raw {g / 1024:7.1f} KB gzip")
    verdict = "ok" if gz <= JS_GZIP_BYTES_GOAL else "OVER GOAL"
    print(
        f"JavaScript total: {raw / 1024:.1f} KB raw, {gz / 1024:.1f} KB gzipped (goal <= 250 KB: {verdict})"
    )

    with tempfile.TemporaryDirectory(prefix="abyssal-web-bench-") as tmp:
        server = Server(Path(tmp) / "data")
        server.start()
        try:
            session, _csrf = seed(server)
            rows: list[dict[str, float]] = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
                for _ in range(args.runs):
                    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
                    ctx.add_cookies([{"name": "abyssal_session", "value": session, "url": server.url}])
                    page = ctx.new_page()
                    started = time.perf_counter()
                    page.goto(server.url + "/?pair=XBTUSD", wait_until="commit")
                    usable_ms = float(page.evaluate(USABLE_JS))
                    wall_ms = (time.perf_counter() - started) * 1000
                    nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
                    entry = json.loads(nav)
                    assert usable_ms > 0, "the page never became usable"
                    rows.append(
                        {
                            "domInteractive": entry["domInteractive"],
                            "domContentLoaded": entry["domContentLoadedEventEnd"],
                            "load": entry["loadEventEnd"],
                            "usable": usable_ms,
                            "wall": wall_ms,
                        }
                    )
                    ctx.close()
                if args.stream_s > 0:
                    stream(server, session, browser, args.threads, args.rate, args.stream_s)
                browser.close()
            assert server.status()["audit"] == []
        finally:
            server.stop()
    print(
        f"time to interactive, cold cache, loopback, median of {args.runs} runs (ms from navigation start):"
    )
    for key in ("domInteractive", "domContentLoaded", "load", "usable"):
        values = [r[key] for r in rows]
        print(
            f"  {key:<17} median {statistics.median(values):7.1f}"
            f"   min {min(values):7.1f}   max {max(values):7.1f}"
        )
    print("  (usable = order book drawn with the resting order and the order form enabled)")


if __name__ == "__main__":
    main()
