"""wrk load: one closed-loop ``wrk`` run (Time or pre-signed AddOrders through http_bench.lua)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from abyssal_server import Server
from http_load import CLIENT_CPUS, CONNECTIONS, LoadResult
from machine import children_cpu_s
from sequencer_metrics import scrape, sequencer_note
from signed_orders import ADD_ORDER_PATH

LUA_SCRIPT = Path(__file__).resolve().parent / "http_bench.lua"
WRK_TIMEOUT_S = 2


def run_wrk(
    server: Server,
    label: str,
    seconds: float,
    work: Path,
    requests_file: Path | None,
    cpus: str = CLIENT_CPUS,
) -> LoadResult:
    mode = "addorder" if requests_file is not None else "time"
    txid_file = work / f"{label.replace(' ', '_')}.txids"
    env = {**os.environ, "ABYSSAL_WRK_MODE": mode}
    if requests_file is not None:
        env |= {"ABYSSAL_WRK_REQUESTS": str(requests_file), "ABYSSAL_WRK_TXIDS": str(txid_file)}
    url = server.url + ("/0/public/Time" if mode == "time" else ADD_ORDER_PATH)
    cmd = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s",
           f"--timeout={WRK_TIMEOUT_S}s", "-s", str(LUA_SCRIPT), url]  # fmt: skip
    metrics0, cpu0, server0 = scrape(server), children_cpu_s(), server.cpu_s()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    client_cpu, server_cpu = children_cpu_s() - cpu0, server.cpu_s() - server0
    note = sequencer_note(metrics0, scrape(server)) if mode == "addorder" else ""
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.removeprefix("BENCH_JSON "))
    txids = txid_file.read_text().split() if mode == "addorder" else []
    assert len(txids) == r["ok"], (len(txids), r["ok"])
    if mode == "addorder":
        assert r["ok"] + r["bad"] + r["exhausted"] == r["requests"], r
    return LoadResult(
        label=label,
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        p999_ms=r["p999_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
        ok=r["ok"] if mode == "addorder" else r["requests"] - r["status"],
        bad=r["bad"] if mode == "addorder" else r["status"],
        exhausted=r["exhausted"],
        # per second of load: wrk reads its script and request list before its clock starts, so the
        # client figure (which includes that) is an upper bound, and the idle server's is exact
        client_cpu_pct=100 * client_cpu / (r["duration_us"] / 1e6),
        server_cpu_pct=100 * server_cpu / (r["duration_us"] / 1e6),
        server_cpu_s=server_cpu,
        err_sample=r["err_sample"],
        txids=txids,
        extra=note,
    )


def wrk_version() -> str:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    return wrk[0].split(" Copyright")[0] if wrk else "wrk ?"
