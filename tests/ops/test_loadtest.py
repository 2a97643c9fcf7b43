"""The load tool against a tiny HTTP server with a known delay: it must report that delay, and the
queueing a saturated server causes (latency from the intended send time, no coordinated omission)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from abyssal import cli
from abyssal.loadtest import Settings, Summary, percentile, run

DELAY_S = 0.05
SECRET = base64.b64encode(b"k" * 64).decode()
PUBLIC = {
    "/0/public/AssetPairs": {
        "XXBTZUSD": {"pair_decimals": 1, "lot_decimals": 8, "base": "XXBT", "quote": "ZUSD"}
    },
    "/0/public/Ticker": {"XXBTZUSD": {"c": ["30000.0", "0.1"]}},
}


@dataclass
class SlowServer:
    """Answers Kraken-shaped JSON; every private call sleeps ``delay_s`` (one at a time if ``serial``)."""

    delay_s: float
    serial: bool = False
    port: int = 0
    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = self.lock
        try:
            while request_line := await reader.readline():
                _, target, _ = request_line.decode().split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                path = target.split("?")[0]
                if path.startswith("/0/private/"):
                    self.requests += 1
                    if self.serial:
                        async with lock:
                            await asyncio.sleep(self.delay_s)
                    else:
                        await asyncio.sleep(self.delay_s)
                body = json.dumps(self.answer(path)).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def answer(self, path: str) -> object:
        if path in PUBLIC:
            return {"error": [], "result": PUBLIC[path]}
        if path == "/admin/accounts":
            return {"api_key": "loadtest-key", "api_secret": SECRET}
        if path == "/0/private/AddOrder":
            return {"error": [], "result": {"txid": [f"O{self.requests:05d}-AAAAA-BBBBBB"]}}
        return {"error": [], "result": {}}

    async def serve(self, ready: threading.Event, stop: asyncio.Event) -> None:
        self.lock = asyncio.Lock()
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stop.wait()


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    """The server runs on its own loop in a thread, so the load tool's timing is not shared with it."""
    server = SlowServer(DELAY_S)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(ready, stop),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def _settings(server: SlowServer, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "url": f"http://127.0.0.1:{server.port}",
        "rate_per_s": 100.0,
        "duration_s": 1.5,
        "accounts": 2,
        "connections": 32,
        "admin_token": "t",
        "progress": False,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def test_reports_the_servers_delay(slow_server: SlowServer) -> None:
    summary: Summary = asyncio.run(run(_settings(slow_server)))
    everything = summary.table["all"]
    assert everything["count"] == pytest.approx(150, abs=2), "open loop: the target rate, not the server's"
    assert everything["errors"] == 0, summary.errors
    assert slow_server.requests == everything["count"]
    latencies = sorted(r.latency_ns for r in summary.results)
    assert latencies[0] >= DELAY_S * 1e9, "nothing is faster than the server's sleep"
    assert DELAY_S * 1e3 <= everything["p50_ms"] <= DELAY_S * 1e3 + 25, everything
    assert everything["p99_ms"] <= DELAY_S * 1e3 + 100, everything
    assert {"place", "cancel", "query"} <= set(summary.table), "the scenario mixes its three calls"


def test_a_saturated_server_shows_its_queue_no_coordinated_omission(slow_server: SlowServer) -> None:
    """One request at a time at 50 ms each serves 20/s; at 40/s for 2 s the backlog grows to about
    1 s. A closed-loop tool would report 50 ms; latency from the intended send time reports the wait."""
    slow_server.serial = True
    summary = asyncio.run(run(_settings(slow_server, rate_per_s=40.0, duration_s=2.0)))
    everything = summary.table["all"]
    assert everything["count"] == pytest.approx(80, abs=2) and everything["errors"] == 0
    assert everything["p50_ms"] > 500, everything
    assert everything["max_ms"] > 1500, everything
    first = [r.latency_ns for r in summary.results if r.intended_s < 0.2]
    last = [r.latency_ns for r in summary.results if r.intended_s > 1.8]
    assert percentile(sorted(first), 50) < percentile(sorted(last), 50) / 5, "latency grows with the backlog"


def test_the_command_prints_a_table_and_writes_json_and_a_plot(
    slow_server: SlowServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.environ.get("CI", "").lower() != "true":  # under CI the test extra must have installed it
        pytest.importorskip("matplotlib")
    plot, out = tmp_path / "latency.png", tmp_path / "summary.json"
    code = cli.main(
        [
            "loadtest",
            "--url",
            f"http://127.0.0.1:{slow_server.port}",
            "--rate",
            "50",
            "--duration",
            "1.5",
            "--admin-token",
            "t",
            "--plot",
            str(plot),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "p99_ms" in printed.out and "place" in printed.out
    assert "target 50/s" in printed.err, "the progress line"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(out.read_text())
    assert summary["table"]["all"]["count"] == pytest.approx(75, abs=2)
    assert summary["table"]["all"]["p50_ms"] >= DELAY_S * 1e3


def test_bad_mix_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["loadtest", "--mix", "1,2", "--admin-token", "t"]) == 2
    assert "--mix" in capsys.readouterr().err
