"""``abyssal loadtest``: open-loop load at a target rate; latency counts from the intended send time.

Requests are scheduled at fixed (or Poisson) instants whatever the server does, and each
latency runs from its instant, not from when a connection became free: a server that stalls
shows the stall in every request that should have been sent meanwhile (no coordinated omission).
A small HTTP/1.1 client with a bounded pool of keep-alive connections keeps the client's own
cost low. Scenario ``rest-orders``: funded accounts made through the admin API send a mix of
AddOrder (resting and crossing limits), CancelOrder and QueryOrders, signed as Kraken clients do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import ssl
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from abyssal.gateway.auth import sign
from abyssal.loadtest_report import (
    KINDS,
    Result,
    Settings,
    Summary,
    format_table,
    percentile,
    plot,
    summarise,
    to_json,
)

__all__ = ["HttpClient", "Result", "Settings", "Summary", "add_parser", "run", "run_from_args"]

OPEN_ORDERS_PER_ACCOUNT_MAX = 150  # below the server's per-pair limit: beyond it, cancel instead
BACKLOG_MAX = 100_000  # requests scheduled but not finished: beyond it the rate is hopeless, stop
RESPONSE_BYTES_MAX = 16 * 1024 * 1024
NONCE_WINDOW = 10**9  # loadtest keys accept nonces out of order (requests overtake each other)


# -- HTTP/1.1 client -------------------------------------------------------------------------
class HttpClient:
    """Keep-alive connections, at most ``connections`` at once; waiting for one counts as latency."""

    def __init__(self, url: str, connections: int, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.hostname, f"not an http(s) URL: {url}"
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.base = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        async with self._slots:
            conn = (
                self._idle.pop()
                if self._idle
                else await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.timeout_s
                )
            )
            try:
                status, data, keep = await asyncio.wait_for(
                    self._exchange(conn, method, path, body, headers), self.timeout_s
                )
            except BaseException:
                conn[1].close()
                raise
            if keep:
                self._idle.append(conn)
            else:
                conn[1].close()
            return status, data

    async def _exchange(
        self,
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str] | None,
    ) -> tuple[int, bytes, bool]:
        reader, writer = conn
        lines = [
            f"{method} {self.base}{path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        fields: dict[bytes, bytes] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        keep = fields.get(b"connection", b"").lower() != b"close"
        if b"content-length" in fields:
            size = int(fields[b"content-length"])
            assert size <= RESPONSE_BYTES_MAX, "response too large"
            return status, await reader.readexactly(size), keep
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append((await reader.readexactly(size + 2))[:-2])
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return status, b"".join(chunks), keep
        return status, await reader.read(RESPONSE_BYTES_MAX), False

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


# -- the rest-orders scenario -------------------------------------------------------------------
@dataclass(slots=True)
class Account:
    api_key: str
    secret: str
    orders: list[str] = field(default_factory=list)


class RestOrders:
    """Funded accounts and Kraken's signed private calls: place, cancel, query."""

    def __init__(self, client: HttpClient, settings: Settings, rng: random.Random) -> None:
        self.client = client
        self.s = settings
        self.rng = rng
        self.accounts: list[Account] = []
        self.nonce = time.time_ns() // 1000
        self.mid = Decimal(30000)
        self.price_decimals = 1
        self.lot_decimals = 8

    async def _json(self, method: str, path: str, payload: Any = None, admin: bool = False) -> Any:
        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = f"Bearer {self.s.admin_token}"
        body = json.dumps(payload).encode() if payload is not None else b""
        status, data = await self.client.request(method, path, body, headers)
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status} {data[:200]!r}")
        return json.loads(data)

    async def setup(self) -> None:
        if not self.s.admin_token:
            raise RuntimeError(
                "rest-orders needs the admin token: --admin-token, ABYSSAL_ADMIN_TOKEN or --data-dir"
            )
        pairs = (await self._json("GET", f"/0/public/AssetPairs?pair={self.s.pair}"))["result"]
        info = next(iter(pairs.values()))
        self.price_decimals, self.lot_decimals = int(info["pair_decimals"]), int(info["lot_decimals"])
        ticker: dict[str, Any] = (await self._json("GET", f"/0/public/Ticker?pair={self.s.pair}")).get(
            "result"
        ) or {}
        last = str(next(iter(ticker.values()))["c"][0]) if ticker else "0"
        self.mid = Decimal(last) if Decimal(last) > 0 else self.mid
        run_id = f"{time.time_ns() // 10**6:x}"
        for i in range(self.s.accounts):
            name = f"loadtest-{run_id}-{i}"
            created = await self._json(
                "POST", "/admin/accounts", {"name": name, "nonce_window": NONCE_WINDOW}, admin=True
            )
            for asset, amount in (
                (info.get("quote", "ZUSD"), "100000000"),
                (info.get("base", "XXBT"), "10000"),
            ):
                await self._json(
                    "POST",
                    "/admin/deposits",
                    {"account": name, "asset": asset, "amount": amount, "idempotency_key": f"{name}-{asset}"},
                    admin=True,
                )
            self.accounts.append(Account(created["api_key"], created["api_secret"]))

    def prepare(self) -> tuple[str, Account, str, dict[str, str]]:
        """The next call, chosen at its intended send time: (kind, account, Kraken method, params)."""
        account = self.rng.choice(self.accounts)
        kind = self.rng.choices(KINDS, weights=self.s.mix)[0]
        if len(account.orders) >= OPEN_ORDERS_PER_ACCOUNT_MAX:
            kind = "cancel"
        elif kind != "place" and not account.orders:
            kind = "place"
        if kind == "cancel":
            return (
                kind,
                account,
                "CancelOrder",
                {"txid": account.orders.pop(self.rng.randrange(len(account.orders)))},
            )
        if kind == "query":
            return kind, account, "QueryOrders", {"txid": self.rng.choice(account.orders)}
        side = self.rng.choice(("buy", "sell"))
        cross = self.rng.randrange(100) < self.s.cross_percent
        offset = Decimal(self.rng.uniform(0.001, 0.02) * (-1 if cross else 1))
        price = self.mid * (1 - offset) if side == "buy" else self.mid * (1 + offset)
        volume = Decimal(self.rng.randint(10, 100)).scaleb(-3)
        return (
            kind,
            account,
            "AddOrder",
            {
                "pair": self.s.pair,
                "type": side,
                "ordertype": "limit",
                "price": f"{price:.{self.price_decimals}f}",
                "volume": f"{volume:.{self.lot_decimals}f}",
            },
        )

    async def send(self, kind: str, account: Account, method: str, params: dict[str, str]) -> str:
        """One signed private call; its outcome: "ok", the first Kraken error, or "http NNN"."""
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": str(self.nonce), **params}).encode()
        path = f"/0/private/{method}"
        headers = {
            "API-Key": account.api_key,
            "API-Sign": sign(account.secret, path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        status, data = await self.client.request("POST", path, body, headers)
        if status != 200:
            return f"http {status}"
        reply = json.loads(data)
        if reply.get("error"):
            return str(reply["error"][0])
        if kind == "place":
            account.orders.extend(reply["result"].get("txid", []))
        return "ok"


# -- the open loop ---------------------------------------------------------------------------
async def _one(scenario: RestOrders, results: list[Result], start: float, intended: float) -> None:
    kind, account, method, params = scenario.prepare()
    try:
        outcome = await scenario.send(kind, account, method, params)
    except TimeoutError:
        outcome = "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
        outcome = "connection"
    latency_ns = int((time.perf_counter() - intended) * 1e9)  # from the intended instant, not the send
    results.append(Result(kind, intended - start, latency_ns, outcome))


async def run(settings: Settings) -> Summary:
    """Set up, send at the target rate for the duration, wait for stragglers, summarise."""
    assert settings.rate_per_s > 0 and settings.duration_s > 0 and settings.connections > 0
    assert settings.scenario == "rest-orders", "the only scenario so far"
    rng = random.Random(settings.seed)
    client = HttpClient(settings.url, settings.connections, settings.timeout_s)
    scenario = RestOrders(client, settings, rng)
    await scenario.setup()
    results: list[Result] = []
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    progress = asyncio.create_task(_progress(settings, results, tasks, start)) if settings.progress else None
    intended, scheduled = start, 0
    while intended - start < settings.duration_s:
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= BACKLOG_MAX:
            raise RuntimeError(f"over {BACKLOG_MAX} requests outstanding: the target rate is unsustainable")
        task = asyncio.create_task(_one(scenario, results, start, intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        scheduled += 1
        gap = (
            rng.expovariate(settings.rate_per_s) if settings.arrival == "poisson" else 1 / settings.rate_per_s
        )
        intended += gap
    if tasks:
        await asyncio.wait(set(tasks), timeout=settings.timeout_s * 2)
    if progress is not None:
        progress.cancel()
    await client.close()
    assert len(results) <= scheduled
    return summarise(settings, results, time.perf_counter() - start)


async def _progress(settings: Settings, results: list[Result], tasks: set[Any], start: float) -> None:
    seen = 0
    while True:
        await asyncio.sleep(1.0)
        window = sorted(r.latency_ns for r in results[seen:])
        errors = sum(r.outcome != "ok" for r in results[seen:])
        seen = len(results)
        print(
            f"[{time.perf_counter() - start:6.1f}s] target {settings.rate_per_s:g}/s  done {len(window)}/s  "
            f"in flight {len(tasks)}  p50 {percentile(window, 50) / 1e6:.2f} ms  "
            f"p99 {percentile(window, 99) / 1e6:.2f} ms  errors {errors}",
            file=sys.stderr,
            flush=True,
        )


# -- the command -----------------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    p = sub.add_parser("loadtest", help="open-loop load at a target rate; latency percentiles, plot")
    p.add_argument("--url", default=os.environ.get("ABYSSAL_URL", "http://127.0.0.1:8080"))
    p.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    p.add_argument("--scenario", choices=["rest-orders"], default="rest-orders")
    p.add_argument("--accounts", type=int, default=4)
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections at most")
    p.add_argument("--arrival", choices=["uniform", "poisson"], default="uniform")
    p.add_argument("--mix", default="50,30,20", help="place,cancel,query weights (default 50,30,20)")
    p.add_argument("--pair", default="XBTUSD")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument(
        "--admin-token", default=None, help="default: ABYSSAL_ADMIN_TOKEN, else DATA_DIR/admin-token"
    )
    p.add_argument("--data-dir", type=Path, default=Path("./abyssal-data"))
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of latency and throughput over time")
    p.add_argument("--json", type=Path, default=None, help="write the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def run_from_args(args: argparse.Namespace) -> int:
    token = args.admin_token or os.environ.get("ABYSSAL_ADMIN_TOKEN")
    if token is None and (args.data_dir / "admin-token").exists():
        token = (args.data_dir / "admin-token").read_text().strip()
    mix = tuple(int(x) for x in args.mix.split(","))
    if len(mix) != 3 or min(mix) < 0 or sum(mix) == 0:
        print("--mix: three non-negative weights, e.g. 50,30,20", file=sys.stderr)
        return 2
    settings = Settings(
        url=args.url,
        rate_per_s=args.rate,
        duration_s=args.duration,
        scenario=args.scenario,
        accounts=args.accounts,
        connections=args.connections,
        arrival=args.arrival,
        mix=(mix[0], mix[1], mix[2]),
        pair=args.pair,
        seed=args.seed,
        timeout_s=args.timeout,
        admin_token=token,
        progress=not args.quiet,
        plot=args.plot,
        json_out=args.json,
    )
    try:
        summary = asyncio.run(run(settings))
    except (RuntimeError, OSError) as err:
        print(f"loadtest: {err}", file=sys.stderr)
        return 1
    print(format_table(summary))
    if settings.plot is not None:
        plot(summary, settings.plot)
        print(f"plot: {settings.plot}")
    if settings.json_out is not None:
        settings.json_out.write_text(json.dumps(to_json(summary), indent=2))
    return 0
