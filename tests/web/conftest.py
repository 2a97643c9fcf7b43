"""Browser fixtures for the web page's end-to-end tests: Debian's chromium driven by Playwright.

Under CI=true a missing browser, Playwright or build is a failure; elsewhere the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness import Server

CHROMIUM = os.environ.get("ABYSSAL_CHROMIUM", "/usr/bin/chromium")
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install playwright==1.65.2 (never `playwright install`)")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        _missing(f"no chromium at {CHROMIUM}: apt-get install -y chromium")
    if not (WEB_DIST / "index.html").is_file():
        _missing("the trading page is not built: (cd web && npm ci && npm run build)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("web") / "data")
    s.start()
    try:
        yield s
        assert s.status()["audit"] == []
    finally:
        s.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (the pytest tmp dir, kept for the last few runs)."""
    d = tmp_path / "screenshots"
    d.mkdir()
    return d
