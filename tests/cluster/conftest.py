"""Scaled-out fixtures: a Tansu broker, a fresh PostgreSQL database, and the roles as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster
from tests.kafka.broker import Tansu
from tests.kafka.conftest import broker  # noqa: F401 - the fixture, for this package
from tests.postgres.conftest import pg_cluster, pg_url  # noqa: F401 - fixtures used by this package


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, broker: Tansu) -> Iterator[Cluster]:  # noqa: F811 - pytest's fixtures
    c = Cluster(tmp_path / "data", pg_url, broker.url)
    try:
        yield c
    finally:
        c.stop()
