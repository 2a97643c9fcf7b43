"""The markets of a config: assets, pairs and the fee schedule, validated into exact integer units."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from abyssal.core.instruments import PPM, UNITS_MAX, Asset, FeeSchedule, FeeTier, Instruments, Pair

DECIMALS_MAX = 18
MONEY_TEXT_CHARS_MAX = 40
NAME_CHARS_MAX = 32
ASSETS_MAX = 1_000
PAIRS_MAX = 1_000
FEE_TIERS_MAX = 32
FEE_PPM_MAX = 100_000  # 10 %: a higher rate is a typo, not a fee
PERCENT_DECIMALS = 4  # 1 % == 10_000 ppm, so a percent with 4 decimals is an exact ppm count
assert 100 * 10**PERCENT_DECIMALS == PPM

ASSET_STATUSES = ("enabled", "deposit_only", "withdrawal_only", "funding_temporarily_disabled")
PAIR_STATUSES = ("online", "cancel_only", "post_only", "limit_only", "reduce_only")
MARKET_TABLES = ("assets", "pairs", "fees")  # a user file replaces these wholesale

FeeRow = tuple[Decimal, Decimal]  # (30-day volume in the fee volume asset, percent), as in AssetPairs
FeeRows = tuple[FeeRow, ...]

_MONEY_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_NAME_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9./]*")


class ConfigError(ValueError):
    """A value that cannot be used; ``key`` is its dotted path, e.g. ``pairs.XXBTZUSD.ordermin``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class Table:
    """One TOML table and its dotted key; every read is typed and names the key when it fails."""

    def __init__(
        self, data: object, key: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(key, "must be a table")
        for name in data:
            if name not in required and name not in optional:
                raise ConfigError(self._join(key, name), "unknown key")
        for name in required:
            if name not in data:
                raise ConfigError(self._join(key, name), "is required")
        self.data: dict[str, object] = data
        self.key = key

    @staticmethod
    def _join(key: str, name: str) -> str:
        return f"{key}.{name}" if key else name

    def path(self, name: str) -> str:
        return self._join(self.key, name)

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.data[name]
        # bool is an int subclass in Python; `true` is never a count.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(self.path(name), f"must be an integer {low}..{high}")
        return value

    def text(self, name: str, chars_max: int = NAME_CHARS_MAX) -> str:
        value = self.data[name]
        if not isinstance(value, str) or not 1 <= len(value) <= chars_max:
            raise ConfigError(self.path(name), f"must be a string of 1..{chars_max} characters")
        return value

    def name(self, name: str) -> str:
        value = self.text(name)
        if not _NAME_TEXT.fullmatch(value):
            raise ConfigError(self.path(name), f"{value!r} is not a name (letters, digits, '.', '/')")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        if name not in self.data and default is not None:
            return default
        value = self.data[name]
        if value not in choices:
            raise ConfigError(self.path(name), f"must be one of {', '.join(choices)}")
        assert isinstance(value, str)
        return value

    def units(self, name: str, decimals: int) -> int:
        """A money string converted exactly to units of 10**-decimals."""
        return _units(self.data[name], decimals, self.path(name))


def _units(value: object, decimals: int, key: str) -> int:
    assert 0 <= decimals <= 2 * DECIMALS_MAX
    if isinstance(value, float):
        raise ConfigError(key, f'must be a string such as "{value}": TOML floats are binary and lose money')
    if not isinstance(value, str):
        raise ConfigError(key, 'must be a decimal string such as "0.5"')
    if len(value) > MONEY_TEXT_CHARS_MAX or not _MONEY_TEXT.fullmatch(value):
        raise ConfigError(key, f'{value!r} is not a plain non-negative decimal such as "0.5"')
    whole, _, fraction = value.partition(".")
    fraction = fraction.rstrip("0")  # "0.10" is exact at 1 decimal
    if len(fraction) > decimals:
        raise ConfigError(key, f"{value!r} has {len(fraction)} decimals; at most {decimals} convert exactly")
    units = int(whole + fraction.ljust(decimals, "0"))
    if units > UNITS_MAX:
        raise ConfigError(key, f"{value!r} is too large")
    assert Decimal(units).scaleb(-decimals) == Decimal(value)
    return units


def _claim(names: dict[str, str], name: str, owner: str, key: str, kind: str) -> None:
    """Every lookup name must resolve to one thing only: Instruments would silently keep the first."""
    holder = names.setdefault(name, owner)
    if holder != owner:
        raise ConfigError(key, f"{name!r} already names {kind} {holder}")


def _assets(data: object) -> dict[str, Asset]:
    if not isinstance(data, dict) or not 1 <= len(data) <= ASSETS_MAX:
        raise ConfigError("assets", f"must be a table of 1..{ASSETS_MAX} assets")
    assets: dict[str, Asset] = {}
    names: dict[str, str] = {}
    for index, (asset_id, raw) in enumerate(data.items()):
        key = f"assets.{asset_id}"
        if not _NAME_TEXT.fullmatch(asset_id) or len(asset_id) > NAME_CHARS_MAX:
            raise ConfigError(key, "the asset id is not a name (letters, digits, '.')")
        t = Table(raw, key, ("altname", "code", "decimals", "display_decimals"), ("status",))
        decimals = t.integer("decimals", 0, DECIMALS_MAX)
        asset = Asset(
            index=index,
            id=asset_id,
            altname=t.name("altname"),
            code=t.name("code"),
            decimals=decimals,
            display_decimals=t.integer("display_decimals", 0, decimals),
            status=t.choice("status", ASSET_STATUSES, default="enabled"),
        )
        _claim(names, asset.id, asset_id, key, "asset")
        _claim(names, asset.altname, asset_id, t.path("altname"), "asset")
        _claim(names, asset.code, asset_id, t.path("code"), "asset")
        assets[asset_id] = asset
    return assets


def _fee_schedule(data: object, assets: Mapping[str, Asset]) -> tuple[Asset, FeeSchedule]:
    t = Table(data, "fees", ("volume_asset", "tiers"))
    volume_asset = assets.get(t.name("volume_asset"))
    if volume_asset is None:
        raise ConfigError(t.path("volume_asset"), "unknown asset")
    raw_tiers = t.data["tiers"]
    if not isinstance(raw_tiers, list) or not 1 <= len(raw_tiers) <= FEE_TIERS_MAX:
        raise ConfigError(t.path("tiers"), f"must be an array of 1..{FEE_TIERS_MAX} tiers")
    tiers: list[FeeTier] = []
    for i, raw in enumerate(raw_tiers):
        tier = Table(raw, f"fees.tiers[{i}]", ("volume", "taker", "maker"))
        volume_minor = tier.units("volume", volume_asset.decimals)
        if i == 0 and volume_minor != 0:
            raise ConfigError(tier.path("volume"), 'the first tier must start at "0"')
        if i > 0 and volume_minor <= tiers[-1].volume_minor:
            raise ConfigError(tier.path("volume"), "must be above the previous tier's volume")
        rates = {side: tier.units(side, PERCENT_DECIMALS) for side in ("taker", "maker")}
        for side, ppm in rates.items():
            if ppm > FEE_PPM_MAX:
                raise ConfigError(tier.path(side), f"must be at most {FEE_PPM_MAX * 100 // PPM} percent")
        tiers.append(FeeTier(volume_minor=volume_minor, taker_ppm=rates["taker"], maker_ppm=rates["maker"]))
    return volume_asset, FeeSchedule(tiers=tuple(tiers))


def _pair(index: int, pair_id: str, raw: object, assets: Mapping[str, Asset], fees: FeeSchedule) -> Pair:
    key = f"pairs.{pair_id}"
    if not _NAME_TEXT.fullmatch(pair_id) or len(pair_id) > NAME_CHARS_MAX:
        raise ConfigError(key, "the pair id is not a name (letters, digits, '.')")
    required = ("altname", "wsname", "symbol", "base", "quote", "pair_decimals", "lot_decimals")
    money = ("cost_decimals", "tick_size", "ordermin", "costmin")
    t = Table(raw, key, required + money, ("status",))
    base, quote = (assets.get(t.name(side)) for side in ("base", "quote"))
    if base is None:
        raise ConfigError(t.path("base"), "unknown asset (list it under [assets])")
    if quote is None:
        raise ConfigError(t.path("quote"), "unknown asset (list it under [assets])")
    if base is quote:
        raise ConfigError(t.path("quote"), "must differ from base")
    # WS v1 clients and ccxt pro rebuild these names from the assets' names, so they must agree.
    wsname, symbol = t.text("wsname"), t.text("symbol")
    if wsname != f"{base.altname}/{quote.altname}":
        raise ConfigError(t.path("wsname"), f"must be '{base.altname}/{quote.altname}' (the altnames)")
    if symbol != f"{base.code}/{quote.code}":
        raise ConfigError(t.path("symbol"), f"must be '{base.code}/{quote.code}' (the codes)")
    pair_decimals = t.integer("pair_decimals", 0, DECIMALS_MAX)
    lot_decimals = t.integer("lot_decimals", 0, base.decimals)
    tick_ticks = t.units("tick_size", pair_decimals)
    ordermin_lots = t.units("ordermin", lot_decimals)
    if tick_ticks < 1:
        raise ConfigError(t.path("tick_size"), "must be positive")
    if ordermin_lots < 1:
        raise ConfigError(t.path("ordermin"), "must be positive")
    return Pair(
        index=index,
        id=pair_id,
        altname=t.name("altname"),
        wsname=wsname,
        symbol=symbol,
        base=base,
        quote=quote,
        pair_decimals=pair_decimals,
        lot_decimals=lot_decimals,
        cost_decimals=t.integer("cost_decimals", 0, DECIMALS_MAX),
        tick_ticks=tick_ticks,
        ordermin_lots=ordermin_lots,
        costmin_raw=t.units("costmin", pair_decimals + lot_decimals),
        fees=fees,
        status=t.choice("status", PAIR_STATUSES, default="online"),
    )


def instruments_from_config(data: Mapping[str, object]) -> Instruments:
    """Assets, pairs and the fee schedule from a parsed config's ``assets``, ``pairs`` and ``fees`` tables."""
    for table in MARKET_TABLES:
        if table not in data:
            raise ConfigError(table, "is required")
    assets = _assets(data["assets"])
    volume_asset, fees = _fee_schedule(data["fees"], assets)
    raw_pairs = data["pairs"]
    if not isinstance(raw_pairs, dict) or not 1 <= len(raw_pairs) <= PAIRS_MAX:
        raise ConfigError("pairs", f"must be a table of 1..{PAIRS_MAX} pairs")
    pairs: list[Pair] = []
    names: dict[str, str] = {}
    for index, (pair_id, raw) in enumerate(raw_pairs.items()):
        pair = _pair(index, pair_id, raw, assets, fees)
        for field in ("id", "altname", "wsname", "symbol"):
            key = f"pairs.{pair_id}" if field == "id" else f"pairs.{pair_id}.{field}"
            _claim(names, getattr(pair, field), pair_id, key, "pair")
        pairs.append(pair)
    instruments = Instruments(
        assets=tuple(assets.values()), pairs=tuple(pairs), fee_volume_asset=volume_asset
    )
    assert len(instruments.by_pair_name) == len(names)
    return instruments


def _plain(value: Decimal) -> Decimal:
    """Shortest exact form without an exponent: 50000, 0.26, 0 (``normalize`` alone gives 5E+4)."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def asset_pairs_fee_rows(schedule: FeeSchedule, volume_asset: Asset) -> tuple[FeeRows, FeeRows]:
    """Kraken's AssetPairs ``fees`` (taker) and ``fees_maker`` arrays: ``[[volume, percent], ...]``."""
    fees: list[FeeRow] = []
    fees_maker: list[FeeRow] = []
    for tier in schedule.tiers:
        volume = _plain(volume_asset.from_minor(tier.volume_minor))
        fees.append((volume, _plain(Decimal(tier.taker_ppm).scaleb(-PERCENT_DECIMALS))))
        fees_maker.append((volume, _plain(Decimal(tier.maker_ppm).scaleb(-PERCENT_DECIMALS))))
    assert len(fees) == len(fees_maker) == len(schedule.tiers)
    return tuple(fees), tuple(fees_maker)
