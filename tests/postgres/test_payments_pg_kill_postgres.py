"""PostgreSQL killed under payments load (ledger-notes 6.2 I1, I7; ADR 0003 fail-stop).

Its own durable cluster (fsync on; the session cluster is shared and is never touched): clients
make deposit captures and withdrawals with fresh Idempotency-Keys; meanwhile the postmaster and
every backend get SIGKILL (a database host crash). PostgreSQL restarts from its WAL; the
exchange, fail-stopped by the lost commits, is killed and restarted. Then every request is
retried with its key, and the test proves: each request answered 2xx is recorded and replays
byte for byte; no payment is applied twice (one ledger entry per captured deposit, one hold per
held withdrawal, balances equal to the sums); the server's ledger audit is clean.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tests.harness import Server
from tests.payments.test_payments_e2e import tenant
from tests.postgres.cluster import PG_BIN, PgCluster, binaries_present

pytestmark = pytest.mark.slow

WORKERS = 8
ANSWERED_BEFORE_KILL = 40
OUTAGE_S = 1.0
FUNDED_USD = "100000"
OK = 201  # what /v1 answers for a done payment; an internal fault comes back as 200 + Kraken error
FINAL = (201, 422)
RETRY_S_MAX = 60.0


@dataclass
class Sent:
    key: str
    path: str
    body: dict[str, str]
    answers: list[tuple[int, bytes]] = field(default_factory=list)  # every reply it got


def _postgres_pids(cluster: PgCluster) -> list[int]:
    """The postmaster and its children (backends, checkpointer, walwriter...)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(entry))
    return [postmaster, *children]


def _kill(cluster: PgCluster) -> None:
    pids = _postgres_pids(cluster)
    assert len(pids) > 3, "expected a postmaster with backends"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids):
        assert time.monotonic() < deadline, "PostgreSQL processes survived SIGKILL"
        time.sleep(0.05)
    # a dead postmaster may linger as a zombie (nobody reaps it in a container), which PostgreSQL
    # would take for a live one; after a real host crash the lock file names no process at all
    (cluster.data / "postmaster.pid").unlink()
    assert cluster.root is not None
    for lock in cluster.root.glob(".s.PGSQL.*"):
        lock.unlink()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _restart(cluster: PgCluster) -> None:
    """``pg_ctl start`` on the same data directory: crash recovery replays the WAL."""
    assert cluster.root is not None
    options = f"-h 127.0.0.1 -p {cluster.port} -k {cluster.root} -c max_connections=200"
    argv = [str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.root / "server.log"),
            "-w", "-t", "60", "-o", options, "start"]  # fmt: skip
    done = subprocess.run(cluster._as_postgres(*argv), capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"{done.stderr}\n{cluster.log()[-3000:]}"


async def _load(url: str, auth: dict[str, str], sent: list[Sent], stop: asyncio.Event) -> None:
    counter = iter(range(10**6))

    async def worker(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            n = next(counter)
            if n % 3 == 2:
                s = Sent(f"w-{n}", "/v1/withdrawals", {"asset": "USD", "amount": "0.5", "key": "bank"})
            else:
                s = Sent(f"d-{n}", "/v1/deposits", {"asset": "USD", "amount": "1.25"})
            sent.append(s)
            try:
                r = await http.post(s.path, json=s.body, headers={**auth, "Idempotency-Key": s.key})
                s.answers.append((r.status_code, r.content))
            except httpx.HTTPError:
                await asyncio.sleep(0.05)  # the server is down or hung up: the key is retried later

    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        await asyncio.gather(*[worker(http) for _ in range(WORKERS)])


async def _load_through_a_crash(server: Server, cluster: PgCluster, auth: dict[str, str]) -> list[Sent]:
    sent: list[Sent] = []
    stop = asyncio.Event()
    load = asyncio.create_task(_load(server.url, auth, sent, stop))
    while sum(1 for s in sent if s.answers and s.answers[0][0] == OK) < ANSWERED_BEFORE_KILL:
        await asyncio.sleep(0.01)
        assert not load.done(), load
    await asyncio.to_thread(_kill, cluster)  # requests are in flight right now
    await asyncio.sleep(OUTAGE_S)  # the clients keep trying against a database that is gone
    stop.set()
    await load
    return sent


async def _retry(url: str, auth: dict[str, str], s: Sent) -> tuple[int, bytes, bool]:
    """The same request again until it is answered for good (201 or a stored 422)."""
    deadline = time.monotonic() + RETRY_S_MAX
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while time.monotonic() < deadline:
            r = await http.post(s.path, json=s.body, headers={**auth, "Idempotency-Key": s.key})
            if r.status_code in FINAL:
                return r.status_code, r.content, r.headers.get("idempotency-replayed") == "true"
            await asyncio.sleep(0.05)
    raise AssertionError(f"{s.key} never got a final answer")


def _check_database(url: str, account: int, outcome: dict[str, tuple[int, dict[str, Any]]]) -> None:
    captured = {b["id"] for code, b in outcome.values() if code == 201 and b["type"] == "deposit"}
    held = {b["id"]: b for code, b in outcome.values() if code == 201 and b["type"] == "withdrawal"}
    with psycopg.connect(url) as c:
        payments = "SELECT refid, status FROM payments WHERE account = %s"
        statuses = dict(c.execute(payments, (account,)).fetchall())
        ledger = "SELECT refid, COUNT(*) FROM ledger WHERE type = 'deposit' AND account = %s GROUP BY refid"
        deposits = dict(c.execute(ledger, (account,)).fetchall())
        holds = {r for (r,) in c.execute("SELECT ref FROM withdrawal_holds WHERE account = %s", (account,))}
        total, on_hold = c.execute("SELECT total, held FROM balances WHERE account = %s AND asset = "
                                   "(SELECT asset FROM ledger WHERE refid = ANY(%s) LIMIT 1)",
                                   (account, list(captured))).fetchone()  # fmt: skip
        done = "SELECT COUNT(*) FROM idempotency_keys WHERE tenant = %s AND source = 'api' AND state = 'done'"
        keys = c.execute(done, (account,)).fetchone()[0]
    assert all(statuses[r] == "captured" for r in captured)
    assert all(statuses[r] == "held" for r in held)
    assert keys == len(outcome), "every key has exactly one stored answer"
    funding = [r for r, n in deposits.items() if r not in captured]  # the initial faucet deposit
    assert len(funding) == 1 and all(n == 1 for n in deposits.values()), "no deposit applied twice"
    assert set(deposits) - set(funding) == captured
    assert holds == set(held), "one engine hold per held withdrawal, none for a failed one"
    minor = 10_000  # USD has 4 decimals
    assert total == (int(FUNDED_USD) + len(captured) * 1.25) * minor
    assert on_hold == len(held) * 0.5 * minor


def test_postgres_killed_during_captures_and_withdrawals_loses_and_doubles_nothing(tmp_path: Path) -> None:
    if not binaries_present():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    cluster = PgCluster(durable=True)
    cluster.start()
    server = Server(tmp_path / "data", database=None)
    try:
        url = cluster.create_database("payments_kill")
        server.database = url
        server.start()
        created, auth = tenant(server, "alice", USD=FUNDED_USD)
        httpx.post(server.url + "/v1/withdraw-keys", json={"asset": "USD", "key": "bank", "address": "CH93"},
                   headers=auth).raise_for_status()  # fmt: skip
        sent = asyncio.run(_load_through_a_crash(server, cluster, auth))
        server.kill()  # fail-stopped on the lost commits (ADR 0003): the operator restarts it
        _restart(cluster)
        server.start()
        answered = [s for s in sent if any(code == OK for code, _ in s.answers)]
        lost = [s for s in sent if not any(code == OK for code, _ in s.answers)]
        assert len(answered) >= ANSWERED_BEFORE_KILL and lost, (len(answered), len(lost))

        async def retry_all() -> list[tuple[int, bytes, bool]]:
            return await asyncio.gather(*[_retry(server.url, auth, s) for s in sent])

        retried = asyncio.run(retry_all())
        outcome: dict[str, tuple[int, dict[str, Any]]] = {}
        for s, (code, body, replayed) in zip(sent, retried, strict=True):
            first_ok = next(((c, b) for c, b in s.answers if c == OK), None)
            if first_ok is not None:  # answered before the crash: the stored bytes come back
                assert replayed and (code, body) == first_ok, (s.key, code, body, first_ok)
            assert code in FINAL, (s.key, code, body)
            decoded = httpx.Response(code, content=body).json()
            outcome[s.key] = (code, decoded if code == 201 else decoded.get("payment", {"type": "refused"}))
        _check_database(url, created["account_id"], outcome)
        assert server.status()["audit"] == []
    finally:
        server.stop()
        cluster.stop()
