"""The storage port (what the runtime and gateway need of a system of record) and its factory.

``open_store`` chooses the adapter by URL: nothing or ``sqlite:///path`` for the embedded
SQLite file, ``postgresql://user@host:port/db`` for PostgreSQL. Both adapters expose a
DB-API-like ``conn()`` for the shared read SQL (written with ``?`` placeholders) and store
methods for every write whose SQL differs between the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from abyssal.adapters.sqlite import BatchRecord

SQLITE_FILE = "abyssal.db"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class DbCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class DbConnection(Protocol):
    """The slice of ``sqlite3.Connection`` that the shared read SQL uses."""

    row_factory: Any

    def execute(self, sql: str, parameters: Any = ..., /) -> DbCursor: ...

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> DbCursor: ...


class Store(Protocol):
    """A system of record: command and event logs, snapshots, read models and keys."""

    def conn(self) -> DbConnection: ...

    def transaction(self) -> AbstractContextManager[DbConnection]: ...

    def close(self) -> None: ...

    def write_batch(self, b: BatchRecord) -> None: ...

    def write_snapshot(self, seq: int, state_hash: str, body: bytes) -> None: ...

    def bump_nonces(self, changed: list[tuple[int, int]]) -> None: ...

    def create_account(self, name: str, created_ns: int) -> int: ...

    def insert_api_key(
        self, api_key: str, account: int, sealed: bytes, permissions: int, nonce_window: int, created_ns: int
    ) -> int: ...

    def latest_snapshot(self) -> tuple[int, str, bytes] | None: ...

    def commands_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, bytes, bytes]]: ...

    def last_seq(self) -> int: ...

    def load_balances(self) -> dict[tuple[int, int], list[int]]: ...


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(POSTGRES_SCHEMES)


def sqlite_path(url: str | None, data_dir: Path) -> Path:
    """``sqlite:///abs/path.db`` or ``sqlite://rel/path.db``; nothing means ``data_dir/abyssal.db``."""
    if not url:
        return data_dir / SQLITE_FILE
    if not url.startswith("sqlite://"):
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
    return Path(url.removeprefix("sqlite://"))


def open_store(url: str | None, data_dir: Path) -> Store:
    """The store the URL names (blocking: migrates the schema). See the module docstring."""
    if is_postgres(url):
        from abyssal.adapters.postgres import PostgresStore

        assert url is not None
        return PostgresStore(url)
    from abyssal.adapters.sqlite import SqliteStore

    path = sqlite_path(url, data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)


def redact(url: str | None) -> str:
    """The URL without its password, for logs."""
    if not url or "@" not in url or "://" not in url:
        return url or "sqlite (data dir)"
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
