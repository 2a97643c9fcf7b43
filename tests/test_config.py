"""Configuration: the shipped markets load, money text converts exactly, bad files name the bad key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import abyssal.config as config_module
from abyssal.config import (
    Config,
    ConfigError,
    RateTier,
    SystemStatus,
    asset_pairs_fee_rows,
    config_from_toml,
    instruments_from_config,
    load_config,
)


@pytest.fixture(scope="module")
def default() -> Config:
    return load_config()


def pair_toml(pair_id: str = "XXBTZUSD", /, **overrides: str | None) -> str:
    """One ``[pairs.<id>]`` table (XBT/USD unless overridden); an override of None drops the key."""
    fields: dict[str, str | None] = {
        "altname": '"XBTUSD"',
        "wsname": '"XBT/USD"',
        "symbol": '"BTC/USD"',
        "base": '"XXBT"',
        "quote": '"ZUSD"',
        "pair_decimals": "1",
        "lot_decimals": "8",
        "cost_decimals": "5",
        "tick_size": '"0.1"',
        "ordermin": '"0.0001"',
        "costmin": '"0.5"',
    }
    fields.update(overrides)
    body = "\n".join(f"{name} = {value}" for name, value in fields.items() if value is not None)
    return f"[pairs.{pair_id}]\n{body}\n"


def test_default_config_loads_the_shipped_markets(default: Config) -> None:
    instruments = default.instruments
    assert [a.id for a in instruments.assets] == ["XXBT", "XETH", "ZUSD", "ZEUR", "SOL", "USDT"]
    assert [p.id for p in instruments.pairs] == [
        "XXBTZUSD",
        "XETHZUSD",
        "XETHXXBT",
        "SOLUSD",
        "USDTZUSD",
        "XXBTZEUR",
        "XETHZEUR",
    ]
    assert instruments.fee_volume_asset.id == "ZUSD"
    assert default.system.status is SystemStatus.online


def test_default_settings(default: Config) -> None:
    assert (default.server.host, default.server.port) == ("127.0.0.1", 8080)
    assert default.server.data_dir == Path("./abyssal-data")
    assert default.limits.rest_tier is RateTier.off
    assert default.limits.trading_tier is RateTier.off
    assert default.limits.open_orders_per_pair_max == 225
    assert default.engine.batch_commands_max >= 1
    assert default.engine.intake_queue_max >= default.engine.batch_commands_max


@pytest.mark.parametrize(
    ("asset_id", "altname", "code", "decimals", "display_decimals"),
    [
        ("XXBT", "XBT", "BTC", 10, 5),
        ("XETH", "ETH", "ETH", 10, 5),
        ("ZUSD", "USD", "USD", 4, 2),
        ("ZEUR", "EUR", "EUR", 4, 2),
        ("SOL", "SOL", "SOL", 10, 5),
        ("USDT", "USDT", "USDT", 8, 4),
    ],
)
def test_default_assets_carry_krakens_values(
    default: Config, asset_id: str, altname: str, code: str, decimals: int, display_decimals: int
) -> None:
    asset = default.instruments.asset(asset_id)
    assert asset is not None
    assert (asset.altname, asset.code, asset.decimals, asset.display_decimals) == (
        altname,
        code,
        decimals,
        display_decimals,
    )
    assert default.instruments.asset(altname) is asset
    assert default.instruments.asset(code) is asset


def test_every_pair_uses_listed_assets_and_one_tick(default: Config) -> None:
    assets = default.instruments.assets
    for pair in default.instruments.pairs:
        assert pair.base is assets[pair.base.index]
        assert pair.quote is assets[pair.quote.index]
        assert pair.base is not pair.quote
        assert pair.tick_ticks == 1, f"{pair.id}: tick_size must equal 10**-pair_decimals"
        assert pair.lot_decimals <= pair.base.decimals


# id, pair_decimals, lot_decimals, ordermin_lots, costmin_raw (ticks*lots)
DEFAULT_PAIR_UNITS = [
    ("XXBTZUSD", 1, 8, 5_000, 500_000_000),  # ordermin 0.00005, costmin 0.5
    ("XETHZUSD", 2, 8, 200_000, 5_000_000_000),  # 0.002, 0.5
    ("XETHXXBT", 6, 8, 100_000, 2_000_000_000),  # 0.001, 0.00002 XBT
    ("SOLUSD", 2, 8, 6_000_000, 5_000_000_000),  # 0.06, 0.5
    ("USDTZUSD", 4, 8, 500_000_000, 500_000_000_000),  # 5, 0.5
    ("XXBTZEUR", 1, 8, 5_000, 450_000_000),  # 0.00005, 0.45
    ("XETHZEUR", 2, 8, 200_000, 4_500_000_000),  # 0.002, 0.45
]


@pytest.mark.parametrize(
    ("pair_id", "pair_decimals", "lot_decimals", "ordermin", "costmin"), DEFAULT_PAIR_UNITS
)
def test_default_pairs_convert_exactly(
    default: Config, pair_id: str, pair_decimals: int, lot_decimals: int, ordermin: int, costmin: int
) -> None:
    pair = default.instruments.pair(pair_id)
    assert pair is not None
    assert (pair.pair_decimals, pair.lot_decimals) == (pair_decimals, lot_decimals)
    assert (pair.ordermin_lots, pair.costmin_raw) == (ordermin, costmin)


def test_ordermin_with_lot_decimals_8_is_counted_in_lots(tmp_path: Path) -> None:
    path = tmp_path / "abyssal.toml"
    path.write_text(pair_toml(ordermin='"0.0001"', costmin='"0.50"', tick_size='"0.5"'))
    pair = load_config(path).instruments.pair("XXBTZUSD")
    assert pair is not None
    assert pair.ordermin_lots == 10_000
    assert pair.costmin_raw == 500_000_000  # trailing zeros are still exact
    assert pair.tick_ticks == 5  # a coarser tick than 10**-pair_decimals


@pytest.mark.parametrize(
    "name", ["XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD", "XETHXXBT", "ETHXBT", "ETH/XBT", "ETH/BTC"]
)
def test_pairs_resolve_by_every_name(default: Config, name: str) -> None:
    pair = default.instruments.pair(name)
    assert pair is not None
    assert name in (pair.id, pair.altname, pair.wsname, pair.symbol)


def test_unknown_pair_name_resolves_to_nothing(default: Config) -> None:
    assert default.instruments.pair("BTCUSD") is None
    assert default.instruments.pair("xbtusd") is None


def test_fee_schedule_is_in_ppm_and_minor_units(default: Config) -> None:
    schedule = default.instruments.pairs[0].fees
    first, second, last = schedule.tiers[0], schedule.tiers[1], schedule.tiers[-1]
    assert (first.volume_minor, first.taker_ppm, first.maker_ppm) == (0, 4_000, 2_500)
    assert (second.volume_minor, second.taker_ppm, second.maker_ppm) == (10_000 * 10**4, 3_500, 2_000)
    assert (last.volume_minor, last.taker_ppm, last.maker_ppm) == (10_000_000 * 10**4, 1_000, 0)
    assert schedule.max_ppm == 4_000
    assert schedule.rates_ppm(60_000 * 10**4) == (1_400, 2_400)  # (maker, taker) at $60k
    assert all(p.fees is schedule for p in default.instruments.pairs)


def test_asset_pairs_fee_rows_match_krakens_arrays(default: Config) -> None:
    fees, fees_maker = asset_pairs_fee_rows(
        default.instruments.pairs[0].fees, default.instruments.fee_volume_asset
    )
    assert fees[:2] == ((Decimal("0"), Decimal("0.4")), (Decimal("10000"), Decimal("0.35")))
    assert fees_maker[-1] == (Decimal("10000000"), Decimal("0"))
    assert [str(v) for v, _ in fees] == [
        "0",
        "10000",
        "50000",
        "100000",
        "250000",
        "500000",
        "1000000",
        "2500000",
        "5000000",
        "10000000",
    ]
    assert [str(p) for _, p in fees_maker][:3] == ["0.25", "0.2", "0.14"]


BAD_PAIRS = [
    # overrides, key, words in the message
    ({"ordermin": "0.0001"}, "pairs.XXBTZUSD.ordermin", "must be a string"),
    ({"ordermin": "1"}, "pairs.XXBTZUSD.ordermin", "decimal string"),
    ({"ordermin": '"0.000000001"'}, "pairs.XXBTZUSD.ordermin", "at most 8 convert exactly"),
    ({"ordermin": '"1e-4"'}, "pairs.XXBTZUSD.ordermin", "plain non-negative decimal"),
    ({"ordermin": '"-1"'}, "pairs.XXBTZUSD.ordermin", "plain non-negative decimal"),
    ({"ordermin": '"0"'}, "pairs.XXBTZUSD.ordermin", "must be positive"),
    ({"costmin": '"0.0000000001"'}, "pairs.XXBTZUSD.costmin", "at most 9 convert exactly"),
    ({"tick_size": '"0.05"'}, "pairs.XXBTZUSD.tick_size", "at most 1 convert exactly"),
    ({"base": '"XDOGE"'}, "pairs.XXBTZUSD.base", "unknown asset"),
    ({"quote": '"ZGBP"'}, "pairs.XXBTZUSD.quote", "unknown asset"),
    ({"quote": '"XXBT"'}, "pairs.XXBTZUSD.quote", "must differ from base"),
    ({"lot_decimals": "19"}, "pairs.XXBTZUSD.lot_decimals", "must be an integer 0..10"),
    ({"pair_decimals": "19"}, "pairs.XXBTZUSD.pair_decimals", "must be an integer 0..18"),
    ({"pair_decimals": "true"}, "pairs.XXBTZUSD.pair_decimals", "must be an integer 0..18"),
    ({"pair_decimals": '"1"'}, "pairs.XXBTZUSD.pair_decimals", "must be an integer 0..18"),
    ({"symbol": '"XBT/USD"'}, "pairs.XXBTZUSD.symbol", "'BTC/USD'"),
    ({"wsname": '"BTC/USD"'}, "pairs.XXBTZUSD.wsname", "'XBT/USD'"),
    ({"costmin": None}, "pairs.XXBTZUSD.costmin", "is required"),
    ({"ordermn": '"1"'}, "pairs.XXBTZUSD.ordermn", "unknown key"),
    ({"status": '"open"'}, "pairs.XXBTZUSD.status", "must be one of"),
]


@pytest.mark.parametrize(("overrides", "key", "words"), BAD_PAIRS)
def test_bad_pair_fails_naming_the_key(
    tmp_path: Path, overrides: dict[str, str | None], key: str, words: str
) -> None:
    path = tmp_path / "abyssal.toml"
    path.write_text(pair_toml(**overrides))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert words in str(info.value)


BAD_FILES = [
    # file text, key, words in the message
    (pair_toml() + pair_toml("XBTUSD2", altname='"XBTUSD"'), "pairs.XBTUSD2.altname", "already names pair"),
    (pair_toml() + pair_toml("XBTUSD"), "pairs.XBTUSD", "already names pair XXBTZUSD"),
    (
        '[assets.XBT]\naltname = "XBTC"\ncode = "XBTC"\ndecimals = 8\ndisplay_decimals = 2\n'
        '[assets.XXBT]\naltname = "XBT"\ncode = "BTC"\ndecimals = 10\ndisplay_decimals = 5\n',
        "assets.XXBT.altname",
        "already names asset XBT",
    ),
    (
        '[fees]\nvolume_asset = "ZUSD"\ntiers = [{volume = "0", taker = 0.26, maker = "0.16"}]\n',
        "fees.tiers[0].taker",
        "TOML floats",
    ),
    (
        '[fees]\nvolume_asset = "ZUSD"\ntiers = [{volume = "0", taker = "0.000001", maker = "0"}]\n',
        "fees.tiers[0].taker",
        "at most 4 convert exactly",
    ),
    (
        '[fees]\nvolume_asset = "ZUSD"\ntiers = [{volume = "0", taker = "26", maker = "0"}]\n',
        "fees.tiers[0].taker",
        "at most 10 percent",
    ),
    (
        '[fees]\nvolume_asset = "ZUSD"\ntiers = [{volume = "10", taker = "0.26", maker = "0.16"}]\n',
        "fees.tiers[0].volume",
        'start at "0"',
    ),
    (
        '[fees]\nvolume_asset = "ZUSD"\ntiers = [{volume = "0", taker = "0.26", maker = "0.16"},'
        ' {volume = "0", taker = "0.24", maker = "0.14"}]\n',
        "fees.tiers[1].volume",
        "above the previous tier",
    ),
    (
        '[fees]\nvolume_asset = "KFEE"\ntiers = [{volume = "0", taker = "0.26", maker = "0.16"}]\n',
        "fees.volume_asset",
        "unknown asset",
    ),
    ("[server]\nport = 70000\n", "server.port", "must be an integer 0..65535"),
    ('[limits]\nrest_tier = "gold"\n', "limits.rest_tier", "must be one of off, starter"),
    ('[system]\nstatus = "closed"\n', "system.status", "must be one of online"),
    ("[engine]\nbatch_wait_us = -1\n", "engine.batch_wait_us", "must be an integer 0..1000000"),
    ("[engine]\nbatch_size = 5\n", "engine.batch_size", "unknown key"),
    ("[markets]\n", "markets", "unknown table"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD_FILES)
def test_bad_file_fails_naming_the_key(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_toml(text, "test.toml")
    assert info.value.key == key
    assert words in str(info.value)


def test_duplicate_table_is_a_toml_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "abyssal.toml"
    path.write_text(pair_toml() + pair_toml())
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == str(path)
    assert "invalid TOML" in str(info.value)
    assert "XXBTZUSD" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == str(path)


def test_user_settings_override_key_by_key(tmp_path: Path, default: Config) -> None:
    path = tmp_path / "abyssal.toml"
    path.write_text('[server]\nport = 9000\n[limits]\ntrading_tier = "pro"\n')
    config = load_config(path)
    assert config.server.port == 9000
    assert config.server.host == default.server.host
    assert config.limits.trading_tier is RateTier.pro
    assert config.limits.rest_tier is RateTier.off
    assert [p.id for p in config.instruments.pairs] == [p.id for p in default.instruments.pairs]


def test_user_pairs_replace_the_default_pairs(tmp_path: Path) -> None:
    path = tmp_path / "abyssal.toml"
    path.write_text(pair_toml())
    config = load_config(path)
    assert [p.id for p in config.instruments.pairs] == ["XXBTZUSD"]
    assert len(config.instruments.assets) == 6  # assets still come from the defaults


def test_instruments_from_config_needs_the_market_tables() -> None:
    with pytest.raises(ConfigError) as info:
        instruments_from_config({"assets": {}, "fees": {}})
    assert info.value.key == "pairs"


def test_all_names_exist() -> None:
    for name in config_module.__all__:
        assert hasattr(config_module, name), name
