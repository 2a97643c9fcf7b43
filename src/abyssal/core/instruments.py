"""Assets, pairs and fee schedules: Kraken's precision model turned into integer units.

Units used everywhere in the core:
- an asset's *minor unit* is 10**-asset.decimals (balances, ledger amounts);
- a pair's *tick* is 10**-pair.pair_decimals of the quote (prices are ``price_ticks``);
- a pair's *lot* is 10**-pair.lot_decimals of the base (volumes are ``volume_lots``);
- a *raw cost* is ``price_ticks * volume_lots``, in units of 10**-(pair_decimals + lot_decimals).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mypy_extensions import i64

PPM: Final = 1_000_000  # fee rates are parts per million: 0.26 % == 2_600 ppm
_RAW_NATIVE: Final = 1 << 40  # |raw| below this times a rate below _PPM_NATIVE fits in 61 bits
_PPM_NATIVE: Final = 1 << 21


def times_ppm(raw: int, ppm: int) -> int:
    """``raw * ppm``, in one machine multiply when the product cannot overflow 64 bits.

    Compiled, ``int * int`` takes a slow generic path (boxing both operands) as soon as either
    exceeds 2**30, which a raw cost (price ticks times lots) usually does; ``i64`` operands
    multiply natively. Interpreted, the annotations do nothing: hot callers write
    ``times_ppm(raw, ppm) if COMPILED else raw * ppm``, which spares the interpreter the call.
    """
    if -_RAW_NATIVE < raw < _RAW_NATIVE and 0 <= ppm < _PPM_NATIVE:
        a: i64 = raw
        b: i64 = ppm
        return a * b
    return raw * ppm


# Every amount, volume and price in integer units must fit the signed 64-bit fields of journals,
# snapshots and both databases: the gateways refuse larger inputs, the engine larger balances.
UNITS_MAX: Final = 2**63 - 1
# scaleb under the default context rounds to 28 digits; under this one it never rounds
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def exact_units(value: Decimal, decimals: int) -> int | None:
    """``value`` in units of 10**-decimals when that is a whole number within 64 bits
    (``abs(units) <= UNITS_MAX``), else None.

    The size is checked on the exponent first: ``int()`` of a Decimal such as ``1E+1000000``
    (a WebSocket order may carry one as a JSON number) takes time quadratic in its digits.
    """
    if not value.is_finite() or value.adjusted() + decimals > 18:  # 10**19 > UNITS_MAX
        return None
    scaled = value.scaleb(decimals, _EXACT)
    units = int(scaled)
    return units if units == scaled and -UNITS_MAX <= units <= UNITS_MAX else None


# whether this module runs as mypyc compiled it (the few places where the fast form differs)
COMPILED: Final = not __file__.endswith(".py")


@dataclass(frozen=True, slots=True)
class Asset:
    """One currency. ``index`` is its dense position in the engine's balance arrays."""

    index: int
    id: str  # Kraken asset id, e.g. "XXBT"
    altname: str  # e.g. "XBT"
    code: str  # WebSocket v2 / unified code, e.g. "BTC"
    decimals: int  # minor unit = 10**-decimals
    display_decimals: int
    status: str = "enabled"

    def to_minor(self, amount: Decimal) -> int:
        """Exact conversion; the caller has already checked the decimals and the size."""
        units = exact_units(amount, self.decimals)
        assert units is not None, "amount has more decimals than the asset"
        return units

    def minor_of(self, amount: Decimal) -> int | None:
        """A positive amount in minor units when it is exact and fits 64 bits; None otherwise."""
        units = exact_units(amount, self.decimals)
        return units if units is not None and units > 0 else None

    def from_minor(self, amount_minor: int) -> Decimal:
        return Decimal(amount_minor).scaleb(-self.decimals)

    def fmt(self, amount_minor: int) -> str:
        """Kraken's balance text: always exactly ``decimals`` digits after the point."""
        return format_fixed(amount_minor, self.decimals)


@dataclass(frozen=True, slots=True)
class FeeTier:
    volume_minor: int  # 30-day volume threshold, in minor units of the fee volume currency
    taker_ppm: int
    maker_ppm: int


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker rates by 30-day traded volume; tiers sorted by ascending threshold."""

    tiers: tuple[FeeTier, ...]
    max_ppm: int = field(init=False)  # the highest rate anywhere: what an order holds for its fee
    # the tiers as two flat tuples, searched on every fill
    thresholds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    rates: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert self.tiers, "a fee schedule needs at least one tier"
        assert self.tiers[0].volume_minor == 0, "the first tier starts at zero volume"
        for a, b in zip(self.tiers, self.tiers[1:], strict=False):
            assert a.volume_minor < b.volume_minor, "tiers must ascend"
        object.__setattr__(self, "max_ppm", max(max(t.taker_ppm, t.maker_ppm) for t in self.tiers))
        object.__setattr__(self, "thresholds", tuple(t.volume_minor for t in self.tiers))
        object.__setattr__(self, "rates", tuple((t.maker_ppm, t.taker_ppm) for t in self.tiers))

    def tier_index(self, volume_minor: int) -> int:
        """The highest tier whose threshold the volume reaches (the first for any lower volume)."""
        thresholds = self.thresholds
        if not COMPILED:  # interpreted, the C bisect is the faster
            index = bisect_right(thresholds, volume_minor) - 1
            return index if index > 0 else 0
        # compiled, these native comparisons cost a fraction of a call to the C bisect, which
        # boxes the volume and parses its arguments
        low, high = 0, len(thresholds)
        while low < high:
            mid = (low + high) >> 1
            if volume_minor < thresholds[mid]:
                high = mid
            else:
                low = mid + 1
        return low - 1 if low > 0 else 0

    def rates_ppm(self, volume_minor: int) -> tuple[int, int]:
        """(maker_ppm, taker_ppm) for an account with this 30-day volume."""
        return self.rates[self.tier_index(volume_minor)]


@dataclass(frozen=True, slots=True)
class Pair:
    """A spot market with Kraken's identifiers and precisions, in integer units."""

    index: int
    id: str  # "XXBTZUSD"
    altname: str  # "XBTUSD"
    wsname: str  # "XBT/USD"
    symbol: str  # WebSocket v2 symbol "BTC/USD"
    base: Asset
    quote: Asset
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    tick_ticks: int  # tick size in ticks (1 when tick_size == 10**-pair_decimals)
    ordermin_lots: int
    costmin_raw: int  # minimum cost in raw cost units
    fees: FeeSchedule
    mpp_band_ppm: int = 10_000  # market price protection: 1 % from the touch unless nompp
    status: str = "online"
    cost_scale: int = field(init=False)  # raw cost units per quote minor unit, or its inverse
    cost_shift: int = field(init=False)  # pair_decimals + lot_decimals - quote.decimals
    base_lot_factor: int = field(init=False)  # base minor units per lot

    def __post_init__(self) -> None:
        assert self.base.decimals >= self.lot_decimals, f"{self.id}: base decimals below lot decimals"
        assert self.tick_ticks >= 1
        shift = self.pair_decimals + self.lot_decimals - self.quote.decimals
        object.__setattr__(self, "cost_shift", shift)
        object.__setattr__(self, "cost_scale", 10 ** abs(shift))
        object.__setattr__(self, "base_lot_factor", 10 ** (self.base.decimals - self.lot_decimals))

    # -- unit conversions (the only place where the scales meet) --------------------------
    def lots_to_base_minor(self, volume_lots: int) -> int:
        return volume_lots * self.base_lot_factor

    def raw_to_quote_floor(self, raw: int) -> int:
        if self.cost_shift >= 0:
            return raw // self.cost_scale
        return raw * self.cost_scale

    def raw_to_quote_ceil(self, raw: int) -> int:
        if self.cost_shift >= 0:
            return -((-raw) // self.cost_scale)
        return raw * self.cost_scale

    def quote_minor_to_raw(self, amount_minor: int) -> int:
        """Raw cost units equal to a quote amount (exact when cost_shift >= 0)."""
        if self.cost_shift >= 0:
            return amount_minor * self.cost_scale
        return amount_minor // self.cost_scale

    def price_text(self, price_ticks: int) -> str:
        return format_fixed(price_ticks, self.pair_decimals)

    def volume_text(self, volume_lots: int) -> str:
        return format_fixed(volume_lots, self.lot_decimals)

    def raw_cost_decimal(self, raw: int) -> Decimal:
        return Decimal(raw).scaleb(-(self.pair_decimals + self.lot_decimals))


def format_fixed(value: int, decimals: int) -> str:
    """An integer in units of 10**-decimals as text with exactly that many decimals."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def ceil_div(numerator: int, denominator: int) -> int:
    assert denominator > 0
    return -((-numerator) // denominator)


@dataclass(frozen=True, slots=True)
class Instruments:
    """Everything the engine knows about markets: assets, pairs, the fee account and the
    open-orders limit (``[limits] open_orders_per_pair_max``: config.py sets it; 0, the default
    here, is no limit), so every engine built for one config applies the same rules."""

    assets: tuple[Asset, ...]
    pairs: tuple[Pair, ...]
    fee_volume_asset: Asset
    open_orders_per_pair_max: int = 0  # an account's live orders on one pair; 0: unlimited
    by_asset_name: dict[str, Asset] = field(init=False)
    by_pair_name: dict[str, Pair] = field(init=False)

    def __post_init__(self) -> None:
        assert self.open_orders_per_pair_max >= 0, "an open-orders limit below zero"
        for i, a in enumerate(self.assets):
            assert a.index == i, "asset indexes must be dense and ordered"
        for i, p in enumerate(self.pairs):
            assert p.index == i, "pair indexes must be dense and ordered"
        names: dict[str, Asset] = {}
        for a in self.assets:
            for name in (a.id, a.altname, a.code):
                names.setdefault(name, a)
        pairs: dict[str, Pair] = {}
        for p in self.pairs:
            for name in (p.id, p.altname, p.wsname, p.symbol):
                pairs.setdefault(name, p)
        object.__setattr__(self, "by_asset_name", names)
        object.__setattr__(self, "by_pair_name", pairs)

    def asset(self, name: str) -> Asset | None:
        """By Kraken id, altname or v2 code (``XXBT``, ``XBT``, ``BTC``)."""
        return self.by_asset_name.get(name)

    def pair(self, name: str) -> Pair | None:
        """By id, altname, v1 wsname or v2 symbol (``XXBTZUSD``, ``XBTUSD``, ``XBT/USD``, ``BTC/USD``)."""
        return self.by_pair_name.get(name)
