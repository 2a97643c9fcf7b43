"""The server on the engine compiled with mypyc, as ``./scripts/serve`` runs it when a C compiler
is present: a crash mid-burst loses nothing acknowledged, and the command log it wrote replays
event for event, to the same state hash, on the pure-Python engine (``replay --verify`` runs
without the build). ``scripts/test`` builds ``build/mypyc`` before the suite; under CI a missing or
stale build fails here instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import build_mypyc
import pytest
from tests.e2e.test_crash import crash_and_check
from tests.harness import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def compiled_lib() -> Path:
    if not build_mypyc.is_current(build_mypyc.OUT_DEFAULT):
        message = "no compiled build matching src/: run `python build_mypyc.py` first"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return build_mypyc.OUT_DEFAULT / "lib"


def test_a_plain_install_reports_the_pure_engine(server: Server) -> None:
    assert server.status()["engine_build"] == "pure"


def test_compiled_server_loses_nothing_and_its_log_replays_on_pure_python(
    tmp_path: Path, compiled_lib: Path
) -> None:
    server = Server(tmp_path / "data", env={"PYTHONPATH": str(compiled_lib)})
    server.start()
    try:
        assert server.status()["engine_build"] == "compiled"
        crash_and_check(server)  # restarts compiled; replay --verify runs pure
    finally:
        server.stop()
