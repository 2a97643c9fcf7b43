"""Health probes: ``/health/live`` (restart me?) and ``/health/ready`` (send me traffic?).

Live answers 200 while the process can make progress by itself: through start-up and replay,
which may take long, and after a graceful stop began; 503 once start-up failed or the sequencer
stopped after a storage fault (fail-stop: only a restart, which rebuilds from the log, helps).
Ready answers 200 only while commands are accepted: not while starting or replaying the log,
not after the sequencer failed, not once shutdown began.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from abyssal.gateway.app import Send
    from abyssal.runtime.exchange import Exchange

__all__ = ["LIVE_PATH", "READY_PATH", "handle_health", "liveness", "readiness"]

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def _sequencer_failed(exchange: Exchange) -> bool:
    return exchange.opened and bool(exchange.sequencer.failed)


def liveness(exchange: Exchange) -> tuple[bool, str]:
    """(alive, phase)."""
    if exchange.phase == "failed" or _sequencer_failed(exchange):
        return False, "failed"
    return True, exchange.phase


def readiness(exchange: Exchange) -> tuple[bool, str]:
    """(ready, phase)."""
    if _sequencer_failed(exchange):
        return False, "failed"
    return exchange.phase == "ready", exchange.phase


async def handle_health(exchange: Exchange, path: str, method: str, send: Send) -> None:
    from abyssal.gateway.app import send_json

    if method not in ("GET", "HEAD"):
        await send_json(send, 405, {"status": "method not allowed"}, _HEADERS)
        return
    if path == LIVE_PATH:
        ok, phase = liveness(exchange)
    elif path == READY_PATH:
        ok, phase = readiness(exchange)
    else:
        await send_json(send, 404, {"status": "unknown probe"}, _HEADERS)
        return
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "phase": phase}
    if exchange.opened:
        body["seq"] = exchange.sequencer.committed_seq
    await send_json(send, 200 if ok else 503, body, _HEADERS)
