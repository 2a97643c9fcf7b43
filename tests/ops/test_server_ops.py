"""A real ``abyssal serve``: secrets stay out of DEBUG logs, /metrics moves under load, SIGTERM is graceful,
and OTEL_* variables send the spans to an OTLP/HTTP collector."""

from __future__ import annotations

import base64
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families
from tests.harness import ADMIN_TOKEN, Server
from tests.ops.signer import Signer

pytestmark = pytest.mark.slow

SPAN_WAIT_S = 15.0


@pytest.fixture
def debug_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("ABYSSAL_LOG_LEVEL", "debug")
    monkeypatch.setenv("ABYSSAL_LOG_FORMAT", "json")
    s = Server(tmp_path / "data")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def _trade(server: Server) -> tuple[list[dict[str, Any]], list[Signer]]:
    keys = [server.account("maker", XBT="2", USD="1000"), server.account("taker", USD="100000")]
    maker, taker = (Signer(server.url, k) for k in keys)
    assert (
        maker.call("AddOrder", pair="XBTUSD", type="sell", ordertype="limit", price="30000.0", volume="1")[
            "error"
        ]
        == []
    )
    fill = taker.call("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price="30000.0", volume="0.4")
    assert fill["error"] == []
    resting = maker.call(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price="100.0", volume="0.1"
    )
    maker.call("QueryOrders", txid=resting["result"]["txid"][0])
    assert maker.call("CancelOrder", txid=resting["result"]["txid"][0])["result"]["count"] == 1
    assert taker.call(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price="30000.0", volume="100"
    )["error"] == ["EOrder:Insufficient funds"]
    taker.call("GetWebSocketsToken")
    forged = Signer(server.url, {**keys[0], "api_secret": base64.b64encode(b"x" * 64).decode()})
    assert forged.call("Balance")["error"] == ["EAPI:Invalid signature"]
    for signer in (maker, taker, forged):
        signer.http.close()
    return keys, [maker, taker, forged]


def test_secrets_and_signatures_never_reach_the_debug_log(debug_server: Server) -> None:
    keys, signers = _trade(debug_server)
    debug_server.stop()  # graceful: everything is flushed
    text = debug_server.log()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(r["event"] == "command_committed" for r in records), "DEBUG records were written"
    assert any(r["event"] == "http_request" and r["endpoint"] == "/0/private/AddOrder" for r in records)
    assert all(r["level"] and r["timestamp"] and r["event"] for r in records)
    for key in keys:
        secret = key["api_secret"]
        for form in (secret, base64.b64decode(secret).hex(), urllib.parse.quote(secret, safe="")):
            assert form not in text, "an API secret reached the log"
        assert key["api_key"] not in text, "API keys are not logged either (key_no is)"
    for signer in signers:
        for signature in signer.signatures:
            assert signature not in text, "an API-Sign header reached the log"
    assert ADMIN_TOKEN not in text


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_move_under_load(server: Server, tmp_path: Path) -> None:
    before = _scrape(server.url)
    out = tmp_path / "load.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "abyssal.cli",
            "loadtest",
            "--url",
            server.url,
            "--rate",
            "150",
            "--duration",
            "3",
            "--admin-token",
            ADMIN_TOKEN,
            "--quiet",
            "--json",
            str(out),
        ],
        check=True,
        timeout=120,
    )
    load = json.loads(out.read_text())
    assert load["table"]["all"]["count"] == pytest.approx(450, abs=3)
    transport = {
        k: v for k, v in load["errors"].items() if k in ("timeout", "connection") or k.startswith("http")
    }
    assert transport == {}, load["errors"]
    _trade(server)
    after = _scrape(server.url)

    def grew(name: str, minimum: float = 1, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        delta = after.get(key, 0.0) - before.get(key, 0.0)
        assert delta >= minimum, f"{name}{labels} moved by {delta}"
        return delta

    placed = load["table"]["place"]["ok"]
    grew("abyssal_http_request_duration_seconds_count", placed, endpoint="/0/private/AddOrder", method="POST")
    grew("abyssal_http_requests_total", placed, endpoint="/0/private/AddOrder", method="POST", status="200")
    grew("abyssal_http_request_duration_seconds_count", 1, endpoint="/0/private/CancelOrder", method="POST")
    grew("abyssal_commands_committed_total", placed, command="place")
    grew("abyssal_commands_committed_total", 1, command="cancel")
    batches = grew("abyssal_batches_committed_total")
    assert grew("abyssal_sequencer_batch_commands_count") == batches
    assert grew("abyssal_sequencer_commit_duration_seconds_count") == batches
    grew("abyssal_engine_apply_duration_seconds_count")
    grew("abyssal_engine_rejects_total", reason="insufficient_funds")
    grew("abyssal_api_errors_total", endpoint="/0/private/AddOrder", error="EOrder:Insufficient funds")
    grew("abyssal_api_errors_total", endpoint="/0/private/Balance", error="EAPI:Invalid signature")
    grew("abyssal_fills_total", pair="XXBTZUSD")
    grew("abyssal_sequence_committed", placed, shard="0")
    assert after[("abyssal_open_orders", ())] > 0
    assert after[("abyssal_sequencer_intake_queue_capacity", ())] == 65536
    assert after[("abyssal_sequencer_intake_queue_depth", ())] >= 0
    assert after[("abyssal_ready", ())] == 1
    assert after[("abyssal_projection_lag_commands", (("projection", "ledger"),))] == 0
    assert (
        "abyssal_ws_send_buffer_drops_total",
        (("feed", "public"),),
    ) not in after  # defined, no children yet
    assert ("abyssal_build_info", (("version", "0.1.0"),)) in after


def test_sigterm_finishes_writes_a_snapshot_and_the_restart_replays_nothing(server: Server) -> None:
    _trade(server)
    seq = server.status()["seq"]
    assert server.proc is not None
    proc = server.proc
    server.stop()
    assert proc.returncode == -signal.SIGTERM, "uvicorn re-raises the signal after its graceful shutdown"
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    written = [r for r in records if r["event"] == "shutdown_snapshot_written"]
    assert [r["seq"] for r in written] == [seq]
    assert any(r["event"] == "exchange_closed" and r["seq"] == seq for r in records)
    server.start()
    opened = [json.loads(line) for line in server.log().splitlines() if '"exchange_open"' in line]
    assert opened[-1]["seq"] == seq and opened[-1]["replayed"] == 0
    ready = httpx.get(server.url + "/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "phase": "ready", "seq": seq}


class _Collector(http.server.BaseHTTPRequestHandler):
    spans: ClassVar[list[tuple[str, str, str]]] = []  # (scope, span name, trace id), from every request

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append((scope_spans.scope.name, span.name, span.trace_id.hex()))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_otel_variables_export_spans_to_an_otlp_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "abyssal-ci")
    server = Server(tmp_path / "data")
    server.start()
    try:
        _trade(server)
        deadline = time.monotonic() + SPAN_WAIT_S
        while time.monotonic() < deadline and not any(s[0] == "abyssal.ledger" for s in _Collector.spans):
            time.sleep(0.05)
    finally:
        server.stop()
        collector.shutdown()
        collector.server_close()
    scopes = {scope for scope, _, _ in _Collector.spans}
    assert {"abyssal.gateway", "abyssal.sequencer", "abyssal.engine", "abyssal.ledger"} <= scopes
    add_order_traces = {t for _, name, t in _Collector.spans if name == "POST /0/private/AddOrder"}
    commit_traces = {t for _, name, t in _Collector.spans if name == "ledger.commit"}
    assert add_order_traces & commit_traces, "one trace reaches from the request to the commit"
