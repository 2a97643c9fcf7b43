"""Logs: one field vocabulary, JSON or console output, and secrets that never reach the output."""

from __future__ import annotations

import ast
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from prometheus_client.metrics import MetricWrapperBase

from abyssal import observability, tracing
from abyssal.metric_cells import CounterCells, HistogramCells
from abyssal.observability import FIELDS, REDACTED, SECRET_FIELDS, configure_logging

SRC = Path(__file__).resolve().parents[2] / "src" / "abyssal"
LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "msg", "bind"}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    configure_logging("info", "json", sys.stderr, cache=False)


def _logging_keywords(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, keyword) of every call like ``log.info("event", key=...)`` on a name ending in ``log``."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        if node.func.attr in LEVELS and isinstance(target, ast.Name) and target.id.endswith("log"):
            for kw in node.keywords:
                if kw.arg is not None:
                    yield node.lineno, kw.arg


def test_every_logging_call_in_the_package_speaks_the_vocabulary() -> None:
    unknown = []
    calls = 0
    for path in sorted(SRC.rglob("*.py")):
        for line, key in _logging_keywords(ast.parse(path.read_text(), str(path))):
            calls += 1
            if key not in FIELDS:
                unknown.append(f"{path.relative_to(SRC)}:{line}: {key}")
    assert calls > 10, "the scan found the logging calls"
    assert unknown == [], "add these to observability.FIELDS (with a meaning) or use a vocabulary name"


def test_every_metric_label_speaks_the_vocabulary() -> None:
    metrics = [m for m in vars(observability).values() if isinstance(m, MetricWrapperBase)]
    cells = [m for m in vars(observability).values() if isinstance(m, CounterCells | HistogramCells)]
    assert len(metrics) + len(cells) >= 20 and cells
    labels = {name for m in metrics for name in m._labelnames} | {n for m in cells for n in m.labelnames}
    assert labels and labels <= set(FIELDS), labels - set(FIELDS)


def test_vocabulary_and_secrets_are_disjoint_and_documented() -> None:
    assert not set(FIELDS) & SECRET_FIELDS
    assert all(meaning.strip() for meaning in FIELDS.values())
    for name in observability.__all__:
        assert hasattr(observability, name), name


def test_json_lines_with_fixed_fields_first_and_secrets_redacted(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("debug", "json", out, cache=False)
    log = structlog.get_logger("abyssal.test")
    token = tracing.activate(tracing.Trace("ab" * 16))
    try:
        log.info(
            "key_created",
            account_id=7,
            api_secret="c2VjcmV0",
            error=None,
            headers={"API-Sign": "c2lnbmF0dXJl"},
            ctx={"otp": "123456", "seq": 3},
        )
    finally:
        tracing.deactivate(token)
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert first["event"] == "key_created" and first["logger"] == "abyssal.test" and first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert first["trace_id"] == "ab" * 16, "the request's trace id is added to every record"
    assert first["api_secret"] == REDACTED and first["headers"] == REDACTED
    assert first["ctx"] == {"otp": REDACTED, "seq": 3}
    assert "error" not in first, "None fields are left out"
    assert "c2VjcmV0" not in out.getvalue() and "c2lnbmF0dXJl" not in out.getvalue()
    assert second["logger"] == "uvicorn.error" and second["level"] == "warning", "stdlib records are JSON too"


def test_level_filters_debug(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("info", "json", out, cache=False)
    structlog.get_logger("abyssal.test").debug("noise", seq=1)
    assert out.getvalue() == "" and not observability.debug_enabled()


@pytest.mark.parametrize(
    ("fmt", "stream_cls", "console"),
    [("auto", Tty, True), ("auto", io.StringIO, False), ("console", io.StringIO, True), ("json", Tty, False)],
)
def test_console_on_a_tty_json_otherwise(
    fmt: str, stream_cls: type[io.StringIO], console: bool, restore_logging: None
) -> None:
    out = stream_cls()
    configure_logging("info", fmt, out, cache=False)
    structlog.get_logger("abyssal.test").info(
        "order_accepted", order_id="OQCLML-BW3P3-BUCMWZ", api_secret="x"
    )
    text = out.getvalue()
    assert "OQCLML-BW3P3-BUCMWZ" in text and "api_secret" in text and "=x" not in text
    if console:
        assert not text.startswith("{") and "order_accepted" in text
    else:
        assert json.loads(text)["order_id"] == "OQCLML-BW3P3-BUCMWZ"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "yaml", io.StringIO(), cache=False)
