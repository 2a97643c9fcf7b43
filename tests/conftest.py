"""Shared fixtures: a live server per test (with a ledger audit after it) or per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data")
    s.start()
    try:
        yield s
        audit = s.status()["audit"]
        assert audit == [], f"ledger invariants broken after the test: {audit}"
    finally:
        s.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole module of read-mostly tests (faster than one per test)."""
    s = Server(tmp_path_factory.mktemp("shared") / "data")
    s.start()
    try:
        yield s
        assert s.status()["audit"] == []
    finally:
        s.stop()
