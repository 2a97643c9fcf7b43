"""Traces: one trace id per HTTP request, carried to the sequencer, the engine and the ledger commit.

A trace id is born at the HTTP edge for every request (taken from a W3C ``traceparent``
header when the caller sent one) and lands in every log record of the request and of its
command. OpenTelemetry spans are recorded only when tracing is switched on by the standard
``OTEL_*`` variables (see ``tracing_wanted``); otherwise OpenTelemetry is never imported and
the cost per request is one random number and two context-variable writes.

Spans of one order: ``POST /0/private/AddOrder`` (gateway, SERVER) → ``sequencer.sequence``
(submit to acknowledgement) → ``sequencer.queue_wait``, ``engine.apply`` (with one span event
per engine event) and ``ledger.commit`` (the batch's transaction, recorded in every trace it
served, with the batch size as an attribute).
"""

from __future__ import annotations

import contextvars
import os
import random
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "SCOPE_ENGINE",
    "SCOPE_GATEWAY",
    "SCOPE_LEDGER",
    "SCOPE_SEQUENCER",
    "Trace",
    "TracingError",
    "activate",
    "begin_request",
    "configure_tracing",
    "current",
    "current_trace_id",
    "deactivate",
    "enabled",
    "end_request",
    "flush",
    "record_command",
    "shutdown_tracing",
    "tracing_wanted",
]

SCOPE_GATEWAY = "abyssal.gateway"
SCOPE_SEQUENCER = "abyssal.sequencer"
SCOPE_ENGINE = "abyssal.engine"
SCOPE_LEDGER = "abyssal.ledger"
SERVICE_NAME_DEFAULT = "abyssal"
EXPORTERS = ("otlp", "console", "none")
FLUSH_TIMEOUT_MS = 5_000

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_current: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("abyssal_trace", default=None)
_tracers: dict[str, Tracer] = {}
_provider: TracerProvider | None = None


class TracingError(RuntimeError):
    """Tracing was asked for by the environment but cannot be set up (e.g. the exporter is missing)."""


class Trace:
    """One request's trace: its id for logs, and its OpenTelemetry span when tracing is on."""

    __slots__ = ("apply_window_ns", "context", "enqueued_ns", "span", "trace_id")

    def __init__(self, trace_id: str, span: Span | None = None, context: Context | None = None) -> None:
        assert len(trace_id) == 32
        self.trace_id = trace_id
        self.span = span
        self.context = context
        self.enqueued_ns = 0  # set by the sequencer when spans are recorded
        self.apply_window_ns = (0, 0)


def enabled() -> bool:
    """True when spans are recorded (OpenTelemetry configured)."""
    return _provider is not None


def current() -> Trace | None:
    return _current.get()


def current_trace_id() -> str | None:
    trace = _current.get()
    return None if trace is None else trace.trace_id


def activate(trace: Trace | None) -> contextvars.Token[Trace | None]:
    return _current.set(trace)


def deactivate(token: contextvars.Token[Trace | None]) -> None:
    _current.reset(token)


# -- configuration ---------------------------------------------------------------------------
def tracing_wanted(env: Mapping[str, str]) -> bool:
    """Off by default. On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``)
    or an OTLP endpoint is set, unless ``OTEL_SDK_DISABLED=true``."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(
    env: Mapping[str, str] | None = None, *, exporter: SpanExporter | None = None, batch: bool = True
) -> bool:
    """Set up OpenTelemetry from the environment, or with ``exporter`` (tests). Returns whether on.

    Everything else is read by the SDK from the standard variables: ``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_EXPORTER_OTLP_*``
    (endpoint, headers, timeout, compression, certificate) and ``OTEL_BSP_*`` (batch queue).
    """
    global _provider
    env = os.environ if env is None else env
    if exporter is None and not tracing_wanted(env):
        return False
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise TracingError("tracing is switched on by OTEL_* but opentelemetry-sdk is not installed") from exc
    if exporter is None:
        exporter = _exporter_from_env(env)
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME", SERVICE_NAME_DEFAULT)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    shutdown_tracing()
    _provider = provider
    for scope in (SCOPE_GATEWAY, SCOPE_SEQUENCER, SCOPE_ENGINE, SCOPE_LEDGER):
        _tracers[scope] = provider.get_tracer(scope)
    return True


def _exporter_from_env(env: Mapping[str, str]) -> SpanExporter:
    name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name not in EXPORTERS or name == "none":
        raise TracingError(f"OTEL_TRACES_EXPORTER={name!r}: abyssal supports otlp and console")
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", ""))
    if protocol.strip().lower() not in ("", "http/protobuf"):
        raise TracingError(f"OTLP protocol {protocol!r}: abyssal exports http/protobuf only")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TracingError(
            "OTLP tracing is on but opentelemetry-exporter-otlp-proto-http is missing"
        ) from exc
    return OTLPSpanExporter()


def flush(timeout_ms: int = FLUSH_TIMEOUT_MS) -> None:
    """Export the spans still queued (at shutdown: uvicorn re-raises SIGTERM, so atexit hooks never run)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def shutdown_tracing() -> None:
    """Flush and stop the exporter (at shutdown); tracing is off afterwards."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
    _provider = None
    _tracers.clear()


# -- the HTTP edge ---------------------------------------------------------------------------
def _new_trace_id() -> str:
    return f"{random.getrandbits(128):032x}"


def _incoming_trace_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"traceparent":
            m = _TRACEPARENT.fullmatch(value.decode("latin-1").strip())
            if m is not None and m.group(1) != _ZERO_TRACE:
                return m.group(1)
    return None


def begin_request(method: str, route: str, headers: list[tuple[bytes, bytes]]) -> Trace:
    """The trace of one HTTP request; a SERVER span when tracing is on (end it with ``end_request``)."""
    if _provider is None:
        return Trace(_incoming_trace_id(headers) or _new_trace_id())
    from opentelemetry import trace as otel
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {
        k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in (b"traceparent", b"tracestate")
    }
    parent = TraceContextTextMapPropagator().extract(carrier)
    span = _tracers[SCOPE_GATEWAY].start_span(
        f"{method} {route}",
        context=parent,
        kind=otel.SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route, "url.path": route},
    )
    trace_id = f"{span.get_span_context().trace_id:032x}"
    return Trace(trace_id, span, otel.set_span_in_context(span, parent))


def end_request(trace: Trace, status: int, error: str | None) -> None:
    span = trace.span
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.set_attribute("error", error)
    if status >= 500:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR))
    span.end()


# -- the pipeline ----------------------------------------------------------------------------
def record_command(
    trace: Trace,
    attributes: Mapping[str, Any],
    events: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    batch_start_ns: int,
    commit_window_ns: tuple[int, int],
    batch_commands: int,
) -> None:
    """After a command's batch committed: its sequencer, engine and ledger spans, in its trace.

    The commit is one transaction for the whole batch; each traced command of the batch gets a
    ``ledger.commit`` span with the same start and end, so every trace reaches the ledger.
    """
    if trace.span is None or _provider is None:
        return
    assert trace.context is not None
    from opentelemetry import trace as otel

    acked_ns = time.time_ns()
    seq_span = _tracers[SCOPE_SEQUENCER].start_span(
        "sequencer.sequence",
        context=trace.context,
        start_time=trace.enqueued_ns or batch_start_ns,
        attributes=dict(attributes),
    )
    inner = otel.set_span_in_context(seq_span, trace.context)
    wait = _tracers[SCOPE_SEQUENCER].start_span(
        "sequencer.queue_wait", context=inner, start_time=trace.enqueued_ns or batch_start_ns
    )
    wait.end(end_time=batch_start_ns)
    apply_start, apply_end = trace.apply_window_ns
    apply = _tracers[SCOPE_ENGINE].start_span(
        "engine.apply", context=inner, start_time=apply_start, attributes=dict(attributes)
    )
    for name, event_attributes in events:
        apply.add_event(name, dict(event_attributes), timestamp=apply_end)
    apply.end(end_time=apply_end)
    commit = _tracers[SCOPE_LEDGER].start_span(
        "ledger.commit",
        context=inner,
        start_time=commit_window_ns[0],
        attributes={"batch_commands": batch_commands, "seq": attributes.get("seq", 0)},
    )
    commit.end(end_time=commit_window_ns[1])
    seq_span.end(end_time=acked_ns)
