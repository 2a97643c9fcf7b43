"""Logs and metrics in one vocabulary: structlog setup, the field names, the Prometheus series.

Every log record, span attribute and metric label uses the names in ``FIELDS`` (tests check
every logging call in the package and every label against it). Secrets never reach the output: values of
``SECRET_FIELDS`` are replaced by ``[redacted]`` whatever the call site passes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
)
from prometheus_client import gc_collector as _gc
from prometheus_client import platform_collector as _platform
from prometheus_client import process_collector as _process

from abyssal import __version__, tracing
from abyssal.metric_cells import CounterCells, HistogramCells

__all__ = [
    "FIELDS",
    "LOG_FORMATS",
    "REGISTRY",
    "SECRET_FIELDS",
    "bind_gauges",
    "configure_logging",
    "debug_enabled",
    "redact_secrets",
    "ws_connected",
    "ws_disconnected",
    "ws_message_sent",
    "ws_send_dropped",
    "ws_slow_consumer_closed",
]

# -- the vocabulary --------------------------------------------------------------------------
FIELDS: Mapping[str, str] = {
    # structlog's own
    "event": "what happened, snake_case (order_accepted, batch_commit_failed)",
    "level": "debug, info, warning, error, critical",
    "logger": "the stage: abyssal.http, abyssal.sequencer, abyssal.exchange, uvicorn.error ...",
    "timestamp": "ISO 8601, UTC",
    "exception": "formatted traceback (JSON output)",
    # correlation
    "trace_id": "32 hex digits, born at the HTTP edge (or taken from traceparent)",
    "span_id": "16 hex digits",
    "shard": "engine shard (0 in the embedded mode)",
    "seq": "command sequence number within the shard",
    "first_seq": "first sequence number of a batch",
    "last_seq": "last sequence number of a batch",
    # the domain
    "order_id": "Kraken txid, e.g. OQCLML-BW3P3-BUCMWZ",
    "maker_order_id": "the resting order's txid in a fill",
    "trade_id": "Kraken trade id",
    "account_id": "account number",
    "key_no": "API key number (never the key or its secret)",
    "pair": "Kraken pair id, e.g. XXBTZUSD",
    "asset": "Kraken asset id, e.g. ZUSD",
    "command": "command kind: place, batch, cancel, cancel_all, dms, amend, edit, deposit, tick, mode",
    "events": "event kinds a command produced",
    "reason": "reject or close reason (RejectReason name)",
    "cl_ord_id": "client order id",
    "userref": "client user reference",
    "idempotency_key": "caller's idempotency key",
    "ref": "ledger reference of a deposit or withdrawal",
    "mode": "trading mode",
    "count": "how many",
    # the pipeline
    "batch_commands": "commands in one group-commit batch",
    "queue_depth": "intake queue depth",
    "replayed": "commands replayed at start",
    "engine_build": "compiled (mypyc extension modules) or pure (Python sources)",
    "duration_us": "elapsed microseconds",
    "bytes": "a size in bytes",
    "phase": "lifecycle: starting, recovering, ready, stopping, stopped, failed",
    "projection": "a read model fed from the log: ledger, market",
    "version": "software version",
    # HTTP and WebSocket
    "method": "HTTP method",
    "path": "HTTP path",
    "endpoint": "HTTP path as a bounded label (unknown paths: other)",
    "status": "HTTP status code",
    "client_ip": "client address (X-Forwarded-For from the proxy)",
    "feed": "WebSocket feed: public or private",
    "channel": "WebSocket channel",
    "conn_id": "WebSocket connection number",
    "buffered_bytes": "bytes waiting in a connection's send buffer",
    # faults and process
    "error": "Kraken error string or repr of a fault",
    "url": "a URL",
    "data_dir": "data directory",
    "format": "a format name",
    "signal": "a signal name",
    # scaled out (docs/scaled-out.md)
    "role": "process role: embedded, gateway, marketdata, engine, ledger-writer, relay, notifier",
    "node": "an engine replica's name in the leader lease",
    "epoch": "the leader lease's epoch (raised at every change of holder)",
    "topic": "a Kafka topic",
    "offset": "a Kafka offset",
    "request_id": "a gateway's id of a logged command, gateway:number",
}
SECRET_FIELDS: frozenset[str] = frozenset(
    {"api_secret", "secret", "api_sign", "signature", "authorization", "otp", "password", "token"}
    | {"admin_token", "master_key", "headers", "body"}
)
REDACTED = "[redacted]"
LOG_FORMATS = ("auto", "json", "console")

_debug = False


def debug_enabled() -> bool:
    """Whether DEBUG records are written: guard any per-command record whose fields cost to build."""
    return _debug


# -- logs ------------------------------------------------------------------------------------
class _NamedLogger(structlog.WriteLogger):
    """A WriteLogger that remembers the name given to ``structlog.get_logger(name)``."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any secret-bearing field, at the top level and one level down."""
    for key, value in event_dict.items():
        if key.lower() in SECRET_FIELDS:
            event_dict[key] = REDACTED
        elif isinstance(value, dict):
            event_dict[key] = {
                k: REDACTED if str(k).lower() in SECRET_FIELDS else v for k, v in value.items()
            }
    return event_dict


def _add_trace_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if "trace_id" not in event_dict:
        trace_id = tracing.current_trace_id()
        if trace_id is not None:
            event_dict["trace_id"] = trace_id
    return event_dict


def _add_logger_name(logger: Any, _: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict["logger"] = name
    return event_dict


_HEAD = ("timestamp", "level", "logger", "event")


def _tidy(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The four fixed fields first, then the rest; fields that are None are left out."""
    head = {k: event_dict[k] for k in _HEAD if k in event_dict}
    head.update((k, v) for k, v in event_dict.items() if v is not None and k not in head)
    return head


def _renderer(fmt: str, stream: TextIO) -> tuple[structlog.typing.Processor, bool]:
    """The final processor, and whether exceptions must be pre-formatted for it (JSON)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty()), False
    return structlog.processors.JSONRenderer(sort_keys=False), True


def configure_logging(
    level: int | str = logging.INFO, fmt: str = "auto", stream: TextIO | None = None, *, cache: bool = True
) -> None:
    """Structlog and the standard library (uvicorn, asyncio) into one stream on stderr.

    ``fmt``: ``json`` (one object a line), ``console`` (aligned, coloured on a TTY) or ``auto``
    (console when the stream is a TTY, JSON otherwise). Timestamps are ISO 8601 UTC. ``cache=False``
    lets a later call (tests) redirect loggers that were already used.
    """
    global _debug
    stream = sys.stderr if stream is None else stream
    numeric = logging.getLevelNamesMapping()[level.upper()] if isinstance(level, str) else level
    renderer, json_output = _renderer(fmt, stream)
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        _add_logger_name,
        _add_trace_id,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
        _tidy,
    ]
    exc = [structlog.processors.format_exc_info] if json_output else []
    structlog.configure(
        processors=[*shared, *exc, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: _NamedLogger(stream, str(args[0]) if args else "abyssal"),
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exc, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    _debug = numeric <= logging.DEBUG


# -- metrics ---------------------------------------------------------------------------------
REGISTRY = CollectorRegistry(auto_describe=True)
_process.ProcessCollector(registry=REGISTRY)
_platform.PlatformCollector(registry=REGISTRY)
_gc.GCCollector(registry=REGISTRY)

LATENCY_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)

BUILD = Info("abyssal_build", "Version of the running server.", registry=REGISTRY)
BUILD.info({"version": __version__})
HTTP_SECONDS = HistogramCells(
    "abyssal_http_request_duration_seconds",
    "HTTP request latency, first byte in to last byte out.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
HTTP_REQUESTS = CounterCells(
    "abyssal_http_requests",
    "HTTP responses by endpoint and status code.",
    ["endpoint", "method", "status"],
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "abyssal_api_errors",
    "Kraken error answers by endpoint and error (category:message).",
    ["endpoint", "error"],
    registry=REGISTRY,
)
INTAKE_DEPTH = Gauge(
    "abyssal_sequencer_intake_queue_depth", "Commands waiting for the sequencer.", registry=REGISTRY
)
INTAKE_CAPACITY = Gauge(
    "abyssal_sequencer_intake_queue_capacity", "Intake bound; beyond it, EService:Busy.", registry=REGISTRY
)
BATCH_COMMANDS = HistogramCells(
    "abyssal_sequencer_batch_commands",
    "Commands per group-commit batch.",
    buckets=BATCH_BUCKETS,
    registry=REGISTRY,
)
APPLY_SECONDS = HistogramCells(
    "abyssal_engine_apply_duration_seconds",
    "Engine apply and projection time per batch.",
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
COMMIT_SECONDS = HistogramCells(
    "abyssal_sequencer_commit_duration_seconds",
    "One batch's transaction (commands, events, read models) until durable.",
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
COMMANDS = CounterCells(
    "abyssal_commands_committed",
    "Commands durable in the command log, by kind.",
    ["command"],
    registry=REGISTRY,
)
BATCHES = CounterCells("abyssal_batches_committed", "Group-commit batches durable.", registry=REGISTRY)
REFUSED = Counter(
    "abyssal_commands_refused",
    "Commands refused before sequencing (busy, unavailable).",
    ["reason"],
    registry=REGISTRY,
)
REJECTS = CounterCells(
    "abyssal_engine_rejects", "Commands the engine rejected, by reason.", ["reason"], registry=REGISTRY
)
FILLS = CounterCells("abyssal_fills", "Trades executed.", ["pair"], registry=REGISTRY)
SEQ = Gauge("abyssal_sequence_committed", "Last durable sequence number.", ["shard"], registry=REGISTRY)
PROJECTION_LAG = Gauge(
    "abyssal_projection_lag_commands",
    "Commands committed but not yet in a projection.",
    ["projection"],
    registry=REGISTRY,
)
OPEN_ORDERS = Gauge(
    "abyssal_open_orders", "Live orders in the engine (open and waiting to trigger).", registry=REGISTRY
)
READY = Gauge("abyssal_ready", "1 when the server accepts commands (see /health/ready).", registry=REGISTRY)
WS_CONNECTIONS = Gauge("abyssal_ws_connections", "Open WebSocket connections.", ["feed"], registry=REGISTRY)
WS_SENT = Counter("abyssal_ws_messages_sent", "WebSocket messages written.", ["feed"], registry=REGISTRY)
WS_DROPS = Counter(
    "abyssal_ws_send_buffer_drops",
    "WebSocket messages dropped because a client's send buffer was full (slow consumer).",
    ["feed"],
    registry=REGISTRY,
)
WS_SLOW_CLOSES = Counter(
    "abyssal_ws_slow_consumer_closes",
    "WebSocket connections closed because the client stopped reading.",
    ["feed"],
    registry=REGISTRY,
)
PROJECTION_LAG.labels("ledger").set(0)
PROJECTION_LAG.labels("market").set(0)


def bind_gauges(
    *,
    intake_depth: Callable[[], float],
    intake_capacity: Callable[[], float],
    seq: Callable[[], float],
    open_orders: Callable[[], float],
    ready: Callable[[], float],
) -> None:
    """Gauges read at scrape time from the running exchange (on the event loop that serves /metrics)."""
    INTAKE_DEPTH.set_function(intake_depth)
    INTAKE_CAPACITY.set_function(intake_capacity)
    SEQ.labels("0").set_function(seq)
    OPEN_ORDERS.set_function(open_orders)
    READY.set_function(ready)


# -- the WebSocket API (for the WebSocket gateway) ---------------------------------------------
def ws_connected(feed: str) -> None:
    """A client connected to ``feed`` ("public" or "private")."""
    WS_CONNECTIONS.labels(feed).inc()


def ws_disconnected(feed: str) -> None:
    WS_CONNECTIONS.labels(feed).dec()


def ws_message_sent(feed: str, count: int = 1) -> None:
    WS_SENT.labels(feed).inc(count)


def ws_send_dropped(feed: str, count: int = 1) -> None:
    """Messages dropped for a slow client (its send buffer was full)."""
    WS_DROPS.labels(feed).inc(count)


def ws_slow_consumer_closed(feed: str) -> None:
    """A connection closed because its client stopped reading (its unsent frames: ``ws_send_dropped``)."""
    WS_SLOW_CLOSES.labels(feed).inc()
