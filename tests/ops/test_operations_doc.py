"""docs/operations.md stays complete: every setting, CLI flag and metric series is documented."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

from abyssal.observability import REGISTRY

DOC = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
SETTING_TABLES = ("server", "engine", "limits", "system")


def test_every_setting_of_the_default_config_is_documented() -> None:
    defaults = tomllib.loads(resources.files("abyssal").joinpath("default_config.toml").read_text())
    keys = [f"{table}.{key}" for table in SETTING_TABLES for key in defaults[table]]
    assert len(keys) >= 10
    missing = [k for k in keys if f"`{k}`" not in DOC]
    assert missing == []


def test_every_server_and_role_flag_is_documented() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "abyssal"
    cli = (src / "cli.py").read_text()
    servers = cli[cli.index("def _server_args") : cli.index("def _admin_args")]
    roles = (src / "cluster" / "roles.py").read_text()
    flags = re.findall(r'add_argument\(\s*"(--[a-z-]+)"', servers + roles)
    assert len(flags) >= 10
    assert [f for f in flags if f"`{f}" not in DOC] == []


def test_every_abyssal_metric_is_documented() -> None:
    suffix = {"counter": "_total", "info": "_info"}
    exposed = {m.name + suffix.get(m.type, "") for m in REGISTRY.collect() if m.name.startswith("abyssal_")}
    assert len(exposed) >= 20
    documented = set(re.findall(r"`(abyssal_[a-z_]+)`", DOC))
    assert exposed - documented == set()
