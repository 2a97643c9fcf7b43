"""The ``abyssal`` command: serve, and the admin commands that talk to a running server."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = Path("./abyssal-data")
ADMIN_TIMEOUT_S = 30
WS_FRAME_BYTES_MAX = 256 * 1024
KEEP_ALIVE_S = 65


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="abyssal", description="A Kraken-compatible spot exchange.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the exchange (embedded: SQLite in --data-dir)")
    _server_args(serve)
    gateway = sub.add_parser("gateway", help="scaled out: a stateless REST and WebSocket gateway")
    _server_args(gateway)
    gateway.add_argument("--shard", type=int, default=0)
    marketdata = sub.add_parser("marketdata", help="scaled out: public REST and WebSocket market data")
    _server_args(marketdata)
    marketdata.add_argument("--shard", type=int, default=0)

    from abyssal.cluster.roles import add_parsers as add_role_parsers

    add_role_parsers(sub, _role_args)

    from abyssal.loadtest import add_parser as add_loadtest_parser

    add_loadtest_parser(sub)

    account = sub.add_parser("account", help="accounts and API keys")
    account_sub = account.add_subparsers(dest="account_command", required=True)
    create = account_sub.add_parser("create", help="create an account and print its API key and secret")
    create.add_argument("name")
    create.add_argument("--permissions", nargs="*", default=None, help="default: all")
    _admin_args(create)

    deposit = sub.add_parser("deposit", help="credit funds to an account (sandbox faucet)")
    deposit.add_argument("name")
    deposit.add_argument("asset", help="Kraken id or altname: XXBT or XBT, ZUSD or USD")
    deposit.add_argument("amount", help="decimal string, e.g. 10000 or 0.5")
    deposit.add_argument("--idempotency-key", default=None)
    _admin_args(deposit)

    status = sub.add_parser("status", help="sequence, projection lag, open orders, balance totals")
    _admin_args(status)

    mode = sub.add_parser("mode", help="set a pair's (or the system's) trading mode")
    mode.add_argument("pair", help="pair name, or 'system'")
    mode.add_argument("mode", choices=["online", "cancel_only", "post_only", "limit_only", "maintenance"])
    _admin_args(mode)

    replay = sub.add_parser("replay", help="re-run the command log offline")
    replay.add_argument("--verify", action="store_true", required=True)
    replay.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    replay.add_argument("--config", type=Path, default=None)
    replay.add_argument("--database", default=os.environ.get("ABYSSAL_DATABASE"), help="as for serve")

    args = parser.parse_args(argv)
    from abyssal.config_markets import ConfigError

    try:
        return _run(args)
    except ConfigError as err:  # a missing, unreadable or invalid --config: no traceback
        print(f"abyssal: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command in ("serve", "gateway", "marketdata"):
        return _serve(args)
    if args.command in ("engine", "ledger-writer", "relay", "notifier"):
        from abyssal.cluster.roles import run as run_role

        return run_role(args)
    if args.command == "loadtest":
        from abyssal.loadtest import run_from_args

        return run_from_args(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "account":
        body: dict[str, Any] = {"name": args.name}
        if args.permissions is not None:
            body["permissions"] = args.permissions
        return _admin(args, "POST", "/admin/accounts", body)
    if args.command == "deposit":
        key = args.idempotency_key or str(uuid.uuid4())
        deposit_body = {
            "account": args.name,
            "asset": args.asset,
            "amount": args.amount,
            "idempotency_key": key,
        }
        code = _admin(args, "POST", "/admin/deposits", deposit_body)
        if code and args.idempotency_key is None:  # the key was made here: say it, so a retry can reuse it
            print(f"this deposit's idempotency key: {key} (retry with --idempotency-key {key})",
                  file=sys.stderr)  # fmt: skip
        return code
    if args.command == "status":
        return _admin(args, "GET", "/admin/status", None)
    if args.command == "mode":
        return _admin(args, "POST", "/admin/mode", {"pair": args.pair, "mode": args.mode})
    return 2


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    _role_args(p)


def _role_args(p: argparse.ArgumentParser) -> None:
    """What every process of Abyssal takes: data dir, config, database, bus, logging."""
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--config", type=Path, default=None, help="TOML: markets, fees, limits")
    p.add_argument(
        "--database",
        default=os.environ.get("ABYSSAL_DATABASE"),
        help="system of record: postgresql://user@host:port/db, or sqlite:///path "
        "(default: SQLite in --data-dir); env ABYSSAL_DATABASE",
    )
    p.add_argument(
        "--bus",
        default=os.environ.get("ABYSSAL_BUS", "memory://"),
        help="event bus: memory:// (default, in-process) or kafka://host:port; env ABYSSAL_BUS",
    )
    p.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default=os.environ.get("ABYSSAL_LOG_FORMAT", "auto"),
        help="auto (default): console on a TTY, JSON lines otherwise; env ABYSSAL_LOG_FORMAT",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=os.environ.get("ABYSSAL_LOG_LEVEL", "info").lower(),
        help="default info; env ABYSSAL_LOG_LEVEL",
    )


def _admin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("ABYSSAL_URL", DEFAULT_URL))
    p.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where to find the admin token file"
    )


def _token(data_dir: Path) -> str:
    env = os.environ.get("ABYSSAL_ADMIN_TOKEN")
    if env:
        return env
    path = data_dir / "admin-token"
    if not path.exists():
        raise SystemExit(
            f"no admin token: set ABYSSAL_ADMIN_TOKEN or start the server with --data-dir {data_dir}"
        )
    return path.read_text().strip()


def _admin(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {_token(args.data_dir)}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT_S) as response:
            print(json.dumps(json.loads(response.read()), indent=2))
            return 0
    except urllib.error.HTTPError as err:
        print(err.read().decode(errors="replace"), file=sys.stderr)
        return 1
    except urllib.error.URLError as err:
        print(f"cannot reach {args.url}: {err.reason}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    if not __debug__:
        print("abyssal refuses to run under python -O: its invariants are assertions", file=sys.stderr)
        return 2
    import uvicorn

    from abyssal.config import load_config
    from abyssal.core import engine_build
    from abyssal.gateway.app import App
    from abyssal.observability import configure_logging
    from abyssal.runtime.exchange import Exchange
    from abyssal.tracing import TracingError, configure_tracing, shutdown_tracing

    configure_logging(args.log_level, args.log_format)
    try:
        configure_tracing()
    except TracingError as err:
        print(f"abyssal: {err}", file=sys.stderr)
        return 2
    config = load_config(args.config)
    host = args.host or config.server.host
    port = args.port or config.server.port
    data_dir = args.data_dir or config.server.data_dir
    role = "embedded" if args.command == "serve" else args.command
    exchange = Exchange(config, data_dir, database=args.database, bus=args.bus, role=role,
                        shard=getattr(args, "shard", 0))  # fmt: skip
    url = f"http://{host}:{port}"

    def ready() -> None:
        print(f"Abyssal is listening on {url} (data in {data_dir.resolve()})", flush=True)
        if engine_build() == "compiled":
            print("Engine: compiled with mypyc", flush=True)
        else:
            print(
                "Engine: pure Python (./scripts/serve compiles it when a C compiler is present)", flush=True
            )
        print("Get a funded API key:", flush=True)
        print(f"  abyssal account create alice --url {url} --data-dir {data_dir}", flush=True)
        print(f"  abyssal deposit alice USD 10000 --url {url} --data-dir {data_dir}", flush=True)

    exchange.on_ready.append(ready)

    def fatal() -> None:
        server.should_exit = True

    server = uvicorn.Server(
        uvicorn.Config(
            App(exchange, on_fatal=fatal),
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level="warning",
            log_config=None,  # uvicorn's records go through configure_logging's handler
            access_log=False,
            timeout_graceful_shutdown=10,
            # idle keep-alive connections stay open longer than a load balancer's idle timeout
            # (60 s on most), so the balancer, not the server, closes them: no request races a close
            timeout_keep_alive=KEEP_ALIVE_S,
            # WebSocket: no per-message deflate (fan-out writes one pre-built frame per broadcast;
            # see docs/adr/0004-websocket.md) and frames bounded well below uvicorn's 16 MiB default
            ws_per_message_deflate=False,
            ws_max_size=WS_FRAME_BYTES_MAX,
        )
    )
    try:
        server.run()
    finally:
        shutdown_tracing()  # flush the spans still queued for the exporter
    if exchange.startup_error:
        print(f"abyssal: the exchange could not start: {exchange.startup_error}", file=sys.stderr)
    return 0 if exchange.opened else 1


def _replay(args: argparse.Namespace) -> int:
    from abyssal.adapters import owner_lock
    from abyssal.adapters.store import is_postgres, open_store, sqlite_path
    from abyssal.config import load_config
    from abyssal.runtime.recovery import ReplayMismatch, verify_from_genesis

    config = load_config(args.config)
    if not is_postgres(args.database):
        path = sqlite_path(args.database, args.data_dir)
        if not path.exists():
            print(f"no database at {path}", file=sys.stderr)
            return 2
        if owner_lock.is_held(path):
            print(f"note: a running exchange holds {path}; verifying what it has committed so far",
                  file=sys.stderr)  # fmt: skip
    try:
        store = open_store(args.database, args.data_dir)
    except Exception as err:  # an unreachable server, a bad URL, a file that is not a database
        print(f"abyssal: cannot open the database: {err}", file=sys.stderr)
        return 2
    try:
        count, state_hash = verify_from_genesis(store, config.instruments)
    except ReplayMismatch as err:
        print(f"replay FAILED: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"verified_commands": count, "state_hash": state_hash}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
