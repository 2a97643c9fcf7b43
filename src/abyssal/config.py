"""Server configuration: read TOML, validate every field, turn decimal text into exact integer units."""

from __future__ import annotations

import enum
import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from abyssal.config_markets import (
    MARKET_TABLES,
    ConfigError,
    FeeRow,
    FeeRows,
    Table,
    asset_pairs_fee_rows,
    instruments_from_config,
)
from abyssal.core.instruments import Instruments

__all__ = [
    "Config",
    "ConfigError",
    "EngineSettings",
    "FeeRow",
    "FeeRows",
    "LimitSettings",
    "RateTier",
    "ServerSettings",
    "SystemSettings",
    "SystemStatus",
    "asset_pairs_fee_rows",
    "config_from_toml",
    "instruments_from_config",
    "load_config",
]

DEFAULT_CONFIG_RESOURCE = "default_config.toml"
SETTING_TABLES = ("server", "engine", "limits", "system")  # a user file overrides these key by key


class RateTier(enum.StrEnum):
    off = "off"
    starter = "starter"
    intermediate = "intermediate"
    pro = "pro"


class SystemStatus(enum.StrEnum):
    online = "online"
    maintenance = "maintenance"
    cancel_only = "cancel_only"
    post_only = "post_only"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str
    port: int
    data_dir: Path


BATCH_WRITERS = ("process", "thread")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    snapshot_every_commands: int
    batch_commands_max: int
    batch_wait_us: int
    intake_queue_max: int
    batch_writer: str = "process"  # SQLite: commit in a child process (adapters/sqlite_writer.py) or a thread


@dataclass(frozen=True, slots=True)
class LimitSettings:
    rest_tier: RateTier
    trading_tier: RateTier
    open_orders_per_pair_max: int


@dataclass(frozen=True, slots=True)
class SystemSettings:
    status: SystemStatus


@dataclass(frozen=True, slots=True)
class Config:
    instruments: Instruments
    server: ServerSettings
    engine: EngineSettings
    limits: LimitSettings
    system: SystemSettings


def _settings(
    data: Mapping[str, object],
) -> tuple[ServerSettings, EngineSettings, LimitSettings, SystemSettings]:
    for table in SETTING_TABLES:
        if table not in data:
            raise ConfigError(table, "is required")
    s = Table(data["server"], "server", ("host", "port", "data_dir"))
    server = ServerSettings(
        host=s.text("host", chars_max=253),
        port=s.integer("port", 0, 65_535),
        data_dir=Path(s.text("data_dir", chars_max=4_096)),
    )
    e = Table(
        data["engine"],
        "engine",
        ("snapshot_every_commands", "batch_commands_max", "batch_wait_us", "intake_queue_max"),
        ("batch_writer",),
    )
    engine = EngineSettings(
        snapshot_every_commands=e.integer("snapshot_every_commands", 1, 1_000_000_000),
        batch_commands_max=e.integer("batch_commands_max", 1, 65_536),
        batch_wait_us=e.integer("batch_wait_us", 0, 1_000_000),
        intake_queue_max=e.integer("intake_queue_max", 1, 10_000_000),
        batch_writer=e.choice("batch_writer", BATCH_WRITERS, "process"),
    )
    lim = Table(data["limits"], "limits", ("rest_tier", "trading_tier", "open_orders_per_pair_max"))
    tiers = tuple(RateTier)
    limits = LimitSettings(
        rest_tier=RateTier(lim.choice("rest_tier", tiers)),
        trading_tier=RateTier(lim.choice("trading_tier", tiers)),
        open_orders_per_pair_max=lim.integer("open_orders_per_pair_max", 1, 100_000),
    )
    status = Table(data["system"], "system", ("status",)).choice("status", tuple(SystemStatus))
    system = SystemSettings(status=SystemStatus(status))
    return server, engine, limits, system


def _parse(text: str, source: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"invalid TOML: {exc}") from exc


def _overlay(default: Mapping[str, object], user: Mapping[str, object]) -> dict[str, object]:
    merged = dict(default)
    for table, value in user.items():
        if table not in MARKET_TABLES and table not in SETTING_TABLES:
            raise ConfigError(table, f"unknown table (expected {', '.join(MARKET_TABLES + SETTING_TABLES)})")
        base = default.get(table)
        if table in SETTING_TABLES and isinstance(value, dict) and isinstance(base, dict):
            merged[table] = {**base, **value}
        else:
            merged[table] = value
    return merged


def _default_text() -> str:
    return importlib.resources.files("abyssal").joinpath(DEFAULT_CONFIG_RESOURCE).read_text(encoding="utf-8")


def config_from_toml(text: str, source: str = "<string>") -> Config:
    """A config from TOML text laid over the packaged defaults (see ``default_config.toml`` for the rules)."""
    data = _overlay(_parse(_default_text(), DEFAULT_CONFIG_RESOURCE), _parse(text, source))
    try:
        markets = instruments_from_config(data)
        server, engine, limits, system = _settings(data)
    except ConfigError as exc:
        exc.add_note(f"in {source}")
        raise
    # the engine enforces the open-orders limit, so it travels with the instruments to every
    # engine built for this config (embedded, recovery, replay --verify, the engine role)
    instruments = replace(markets, open_orders_per_pair_max=limits.open_orders_per_pair_max)
    return Config(instruments=instruments, server=server, engine=engine, limits=limits, system=system)


def load_config(path: Path | None = None) -> Config:
    """The config in ``path`` laid over the packaged defaults; the defaults alone when ``path`` is None."""
    if path is None:
        return config_from_toml("", DEFAULT_CONFIG_RESOURCE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    return config_from_toml(text, str(path))
