"""The scaled-out roles as processes: ``abyssal engine``, ``ledger-writer``, ``relay``, ``notifier``.

Each runs its role plus a small HTTP listener for probes and operators: ``GET /livez``,
``GET /readyz`` (200 once the role is serving), ``GET /status`` (JSON: seq, leadership, ...)
and ``GET /metrics`` (Prometheus). SIGTERM and SIGINT stop the role gracefully. The gateway
and marketdata roles are ``abyssal serve``'s HTTP server with ``Exchange(role="gateway")``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

log = structlog.get_logger("abyssal.roles")

REQUEST_LINE_BYTES_MAX = 8192
STATUS_READ_TIMEOUT_S = 5.0


class Role(Protocol):
    phase: str

    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def serve_status(host: str, port: int, status: Callable[[], dict[str, Any]],
                       ready: Callable[[], bool]) -> asyncio.Server:  # fmt: skip
    """A minimal HTTP/1.0 listener: one GET per connection."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), STATUS_READ_TIMEOUT_S)
            parts = line[:REQUEST_LINE_BYTES_MAX].decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            code, ctype, body = 404, "application/json", b'{"error":"not found"}'
            if path == "/livez":
                code, body = 200, b'{"live":true}'
            elif path == "/readyz":
                ok = ready()
                code, body = (200 if ok else 503), json.dumps({"ready": ok}).encode()
            elif path == "/status":
                code, body = 200, json.dumps(status()).encode()
            elif path == "/metrics":
                code, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest()
            head = f"HTTP/1.0 {code} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except Exception as exc:  # a bad probe never stops the role
            log.debug("status_request_failed", error=repr(exc))
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


async def _run_role(role: Role, host: str, port: int, status: Callable[[], dict[str, Any]]) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, role.stop)
    server = await serve_status(host, port, status, lambda: role.phase in ("following", "leading", "ready"))
    try:
        await role.run()
        return 0
    except Exception as exc:
        log.error("role_failed", error=repr(exc))
        return 1
    finally:
        server.close()


def add_parsers(sub: Any, admin_defaults: Callable[[argparse.ArgumentParser], None]) -> None:
    for name, text in (
        ("engine", "scaled out: one engine replica of a shard (the lease holder leads)"),
        ("ledger-writer", "scaled out: the event log into PostgreSQL"),
        ("relay", "scaled out: the outbox and the event log in PostgreSQL to Kafka"),
        ("notifier", "scaled out: Kafka to webhooks"),
    ):
        p = sub.add_parser(name, help=text)
        admin_defaults(p)
        p.add_argument("--port", type=int, default=0, help="probes, /status and /metrics (0: any free port)")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--shard", type=int, default=0)
        if name == "engine":
            p.add_argument("--node-id", default=None, help="this replica's name in the lease")
            p.add_argument("--lease-ttl", type=float, default=2.0, help="seconds (failover takes about this)")


def run(args: argparse.Namespace) -> int:
    """Run the role ``args.command`` names until SIGTERM."""
    import uvloop

    from abyssal.config import load_config
    from abyssal.observability import configure_logging

    configure_logging(args.log_level, args.log_format)
    config = load_config(args.config)
    if not args.database or not str(args.bus).startswith("kafka://"):
        print(
            "abyssal: scaled-out roles need --database postgresql://... and --bus kafka://...",
            file=sys.stderr,
        )
        return 2
    data_dir: Path = args.data_dir or config.server.data_dir
    role, status = _build(args, config, data_dir)
    return uvloop.run(_run_role(role, args.host, args.port, status))


def _build(
    args: argparse.Namespace, config: Any, data_dir: Path
) -> tuple[Role, Callable[[], dict[str, Any]]]:
    if args.command == "engine":
        from abyssal.cluster.engine_node import EngineNode

        node = EngineNode(config, args.database, args.bus, shard=args.shard, node_id=args.node_id,
                          data_dir=data_dir, lease_ttl_s=args.lease_ttl)  # fmt: skip

        def engine_status() -> dict[str, Any]:
            return {"role": "engine", "node": node.node_id, "phase": node.phase, "leader": node.leader,
                    "epoch": node.lease.epoch if node.leader else None, "seq": node.seq,
                    "published_seq": node.published_seq, "takeovers": node.takeovers,
                    "state_hash": node.state_hash()}  # fmt: skip

        return node, engine_status
    if args.command == "ledger-writer":
        from abyssal.cluster.writer import LedgerWriter

        writer = LedgerWriter(config, args.database, args.bus, shard=args.shard, data_dir=data_dir)

        def writer_status() -> dict[str, Any]:
            return {"role": "ledger-writer", "phase": writer.phase, "seq": writer.last_seq,
                    "batches": writer.batches, "duplicates_skipped": writer.duplicates}  # fmt: skip

        return writer, writer_status
    from abyssal.cluster.delivery_roles import DeliveryRole

    delivery = DeliveryRole(args.command, args.database, args.bus, data_dir)
    return delivery, delivery.status
