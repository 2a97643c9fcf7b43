"""PostgreSQL fixtures: one throwaway cluster per session, a fresh database per test.

Under CI=true a cluster that cannot start is a test failure; locally the tests skip, with the
reason, only when the PostgreSQL 15 binaries are absent (apt-get install postgresql-15).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import Server
from tests.postgres.cluster import PG_BIN, PgCluster, binaries_present

from abyssal.adapters.postgres import PostgresStore

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if not binaries_present():
        reason = f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PgCluster()
    cluster.start()  # a failure to start raises: an error, never a skip
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A new, empty database on the session's cluster."""
    return pg_cluster.create_database(f"t{os.getpid()}_{next(_names)}")


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresStore]:
    """A PostgresStore on a new, empty database (schema migrated), closed after the test."""
    store = PostgresStore(pg_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def server(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The e2e ``server`` fixture on PostgreSQL; ``abyssal replay`` subprocesses find it via the env."""
    monkeypatch.setenv("ABYSSAL_DATABASE", pg_url)
    s = Server(tmp_path / "data", database=pg_url)
    s.start()
    try:
        yield s
        audit = s.status()["audit"]
        assert audit == [], f"ledger invariants broken after the test: {audit}"
        assert not (tmp_path / "data" / "abyssal.db").exists(), "the server fell back to SQLite"
    finally:
        s.stop()
