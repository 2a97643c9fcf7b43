"""Traces: one AddOrder that fills is one trace from the HTTP edge to the ledger commit."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.ops.inprocess import running

from abyssal import tracing
from abyssal.observability import configure_logging

INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing({}, exporter=exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown_tracing()


def _trace_of(finished: tuple[ReadableSpan, ...], trace_id: str) -> list[ReadableSpan]:
    return [s for s in finished if s.context is not None and f"{s.context.trace_id:032x}" == trace_id]


async def _fill(data_dir: Path, headers: dict[str, str]) -> tuple[str, list[str]]:
    """A resting sell, then a buy that takes it; returns the buy's txid and the log lines."""
    logs = io.StringIO()
    configure_logging("debug", "json", logs, cache=False)
    try:
        async with running(data_dir) as (_, _, client):
            maker = await client.account("maker", XBT="1")
            taker = await client.account("taker", USD="100000")
            sell = await client.private(
                maker,
                "AddOrder",
                pair="XBTUSD",
                type="sell",
                ordertype="limit",
                price="30000.0",
                volume="0.5",
            )
            assert sell["error"] == []
            buy = await client.private(
                taker,
                "AddOrder",
                headers=headers,
                pair="XBTUSD",
                type="buy",
                ordertype="limit",
                price="30000.0",
                volume="0.5",
            )
            assert buy["error"] == [], buy
            return str(buy["result"]["txid"][0]), logs.getvalue().splitlines()
    finally:
        configure_logging("info", "json", sys.stderr, cache=False)


def test_one_filled_add_order_is_one_trace_from_gateway_to_ledger(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    txid, log_lines = asyncio.run(_fill(tmp_path / "data", {"traceparent": TRACEPARENT}))
    trace = _trace_of(spans.get_finished_spans(), INCOMING_TRACE_ID)
    by_name = {s.name: s for s in trace}
    assert {
        "POST /0/private/AddOrder",
        "sequencer.sequence",
        "sequencer.queue_wait",
        "engine.apply",
        "ledger.commit",
    } <= set(by_name), sorted(by_name)
    scopes = {s.instrumentation_scope.name for s in trace if s.instrumentation_scope is not None}
    assert scopes == {
        tracing.SCOPE_GATEWAY,
        tracing.SCOPE_SEQUENCER,
        tracing.SCOPE_ENGINE,
        tracing.SCOPE_LEDGER,
    }

    gateway, sequence = by_name["POST /0/private/AddOrder"], by_name["sequencer.sequence"]
    assert sequence.parent is not None and gateway.context is not None
    assert sequence.parent.span_id == gateway.context.span_id, "the sequencer span is the request's child"
    for name in ("sequencer.queue_wait", "engine.apply", "ledger.commit"):
        span = by_name[name]
        assert span.parent is not None and sequence.context is not None
        assert span.parent.span_id == sequence.context.span_id, name
    apply, commit = by_name["engine.apply"], by_name["ledger.commit"]
    assert apply.attributes is not None and apply.attributes["order_id"] == txid
    assert apply.attributes["pair"] == "XXBTZUSD"
    assert "Fill" in [e.name for e in apply.events], "the engine's events are span events"
    assert gateway.start_time is not None and commit.end_time is not None and gateway.end_time is not None
    assert gateway.start_time <= commit.end_time <= gateway.end_time, "acknowledged after the commit"

    committed = [json.loads(line) for line in log_lines if '"command_committed"' in line]
    mine = [r for r in committed if r.get("order_id") == txid]
    assert len(mine) == 1 and mine[0]["trace_id"] == INCOMING_TRACE_ID, "the command's log record"
    assert mine[0]["seq"] == apply.attributes["seq"]
    requests = [json.loads(line) for line in log_lines if '"http_request"' in line]
    assert any(
        r["trace_id"] == INCOMING_TRACE_ID and r["endpoint"] == "/0/private/AddOrder" for r in requests
    )


def test_without_a_traceparent_every_request_gets_its_own_trace(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    txid, _ = asyncio.run(_fill(tmp_path / "data", {}))
    finished = spans.get_finished_spans()
    gateway = [s for s in finished if s.name == "POST /0/private/AddOrder"]
    assert len(gateway) == 2
    assert len({s.context.trace_id for s in gateway if s.context is not None}) == 2
    applies = [
        s
        for s in finished
        if s.name == "engine.apply" and s.attributes and s.attributes.get("order_id") == txid
    ]
    assert len(applies) == 1


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_off_unless_the_standard_variables_ask_for_it(env: dict[str, str], wanted: bool) -> None:
    assert tracing.tracing_wanted(env) is wanted


def test_otlp_exporter_reads_the_standard_variables() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SERVICE_NAME": "abyssal-test"}
    try:
        assert tracing.configure_tracing(env)
        assert tracing.enabled()
    finally:
        tracing.shutdown_tracing()
    assert not tracing.enabled()
    with pytest.raises(tracing.TracingError):
        tracing.configure_tracing({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_tracing_off_never_imports_opentelemetry() -> None:
    """Zero cost when off: a server's modules and a request's trace id, without the SDK loaded."""
    code = (
        "import sys\n"
        "import abyssal.cli, abyssal.gateway.app, abyssal.runtime.exchange\n"
        "from abyssal import tracing\n"
        "assert tracing.configure_tracing({}) is False\n"
        "t = tracing.begin_request('POST', '/0/private/AddOrder', [])\n"
        "assert len(t.trace_id) == 32 and t.span is None\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
