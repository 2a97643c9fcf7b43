"""Prometheus exposition at ``GET /metrics``, and the timing, counting and tracing of every request.

``HttpObserver`` wraps the app's HTTP handler: it starts the request's trace (the trace id
of its log records and, when tracing is on, its SERVER span), times it into a histogram per
endpoint, counts the status code and the Kraken error (read from the first bytes of the
answer, so handlers need not report it), and writes a DEBUG record per request. Endpoint labels
come from a fixed list, so a client cannot grow the number of series.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from abyssal import observability as obs
from abyssal import tracing

if TYPE_CHECKING:
    from abyssal.gateway.app import Receive, Scope, Send
    from abyssal.runtime.exchange import Exchange

__all__ = ["METRICS_PATH", "HttpObserver", "bind_exchange", "endpoint_error", "handle_metrics"]

METRICS_PATH = "/metrics"
QUIET_PREFIXES = ("/health/", METRICS_PATH)  # probes and scrapes: timed, but neither traced nor logged
METHODS = frozenset({"GET", "POST", "HEAD"})
ERROR_CHARS_MAX = 64
_ERROR_PREFIX = b'{"error":["'

log = structlog.get_logger("abyssal.http")
Handler = Callable[["Scope", "Receive", "Send"], Awaitable[None]]


def endpoint_error(body: bytes) -> str | None:
    """The first Kraken error of an answer, cut to ``category:message`` (``EOrder:Invalid price``)."""
    if not body.startswith(_ERROR_PREFIX):
        return None
    end = body.find(b'"', len(_ERROR_PREFIX))
    if end <= len(_ERROR_PREFIX):
        return None
    text = body[len(_ERROR_PREFIX) : end].decode("utf-8", "replace")
    return ":".join(text.split(":", 2)[:2])[:ERROR_CHARS_MAX]


class HttpObserver:
    """Times, counts and traces requests; ``routes`` are the exact paths that get their own label."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.routes = frozenset(routes)
        self._histograms: dict[tuple[str, str], Any] = {}  # labelled children, looked up once
        self._counters: dict[tuple[str, str, int], Any] = {}

    def endpoint(self, path: str) -> str:
        if path in self.routes:
            return path
        if path.startswith("/admin/"):
            return "/admin"
        return "other"

    def _histogram(self, endpoint: str, method: str) -> Any:
        child = self._histograms.get((endpoint, method))
        if child is None:
            child = self._histograms[(endpoint, method)] = obs.HTTP_SECONDS.labels(endpoint, method)
        return child

    def _counter(self, endpoint: str, method: str, status: int) -> Any:
        child = self._counters.get((endpoint, method, status))
        if child is None:
            child = obs.HTTP_REQUESTS.labels(endpoint, method, str(status))
            self._counters[(endpoint, method, status)] = child
        return child

    async def __call__(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        start_ns = time.perf_counter_ns()
        path: str = scope["path"]
        method = scope["method"] if scope["method"] in METHODS else "other"
        endpoint = self.endpoint(path)
        quiet = path.startswith(QUIET_PREFIXES)
        status = 0
        error: str | None = None

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal status, error
            if message["type"] == "http.response.start":
                status = message["status"]
            elif error is None and status:
                error = endpoint_error(message.get("body", b""))
            await send(message)

        trace = None if quiet else tracing.begin_request(method, endpoint, scope["headers"])
        token = tracing.activate(trace)
        try:
            await handler(scope, receive, observed_send)
        finally:
            tracing.deactivate(token)
            elapsed_ns = time.perf_counter_ns() - start_ns
            self._histogram(endpoint, method).observe(elapsed_ns / 1e9)
            self._counter(endpoint, method, status).inc()
            if error is not None:
                obs.API_ERRORS.labels(endpoint, error).inc()
            if trace is not None:
                tracing.end_request(trace, status, error)
                if obs.debug_enabled():
                    client = scope.get("client")  # the real client behind a trusted proxy (uvicorn)
                    log.debug(
                        "http_request",
                        method=method,
                        endpoint=endpoint,
                        status=status,
                        error=error,
                        duration_us=elapsed_ns // 1000,
                        trace_id=trace.trace_id,
                        client_ip=client[0] if client else None,
                    )


async def handle_metrics(method: str, send: Send) -> None:
    """The Prometheus text format (0.0.4) of every series in the registry."""
    if method not in ("GET", "HEAD"):
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = generate_latest(obs.REGISTRY)  # CPU only, about a millisecond: no I/O on the loop
    headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body if method == "GET" else b""})


def bind_exchange(exchange: Exchange) -> None:
    """Point the scrape-time gauges at this exchange (zero until it has opened)."""

    def opened(read: Callable[[], float]) -> Callable[[], float]:
        return lambda: read() if exchange.opened else 0.0

    obs.bind_gauges(
        intake_depth=opened(lambda: exchange.sequencer.queue_depth),
        intake_capacity=lambda: exchange.config.engine.intake_queue_max,
        seq=opened(lambda: exchange.sequencer.committed_seq),
        open_orders=opened(lambda: len(exchange.engine.s.orders)),
        ready=lambda: 1.0 if exchange.phase == "ready" and not exchange.sequencer.failed else 0.0,
    )
