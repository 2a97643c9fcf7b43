"""An order's prices as REST shows them (doc §4.2): the average execution price from its fills, and
descr's prices, relative as written until an amend, then the order's current ones."""

from __future__ import annotations

import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abyssal.config import load_config
from abyssal.core.messages import OrderType
from abyssal.gateway.formats import average_price, order_prices

INS = load_config(None).instruments
XBTUSD = INS.pair("XBTUSD")
assert XBTUSD is not None
T = OrderType


@pytest.mark.parametrize(
    ("fills", "expected"),
    [
        ([], "0.0"),  # before any fill
        ([(300_001, 5_000)], "30000.1"),  # 0.00005 at 30000.1: the cost (1.500005) is not whole cents
        ([(300_000, 10_000), (300_001, 10_000)], "30000.0"),  # 30000.05: a tie, to even
        ([(300_001, 10_000), (300_002, 10_000)], "30000.2"),  # 30000.15: a tie, to even
        ([(300_000, 10_000), (300_001, 20_000)], "30000.1"),  # 30000.0666...
        ([(300_000, 20_000), (300_001, 10_000)], "30000.0"),  # 30000.0333...
        ([(9 * 10**12, 10**9), (9 * 10**12, 10**9)], "900000000000.0"),  # raw costs beyond 64 bits
    ],
)
def test_the_average_is_the_volume_weighted_trade_price(fills: list[tuple[int, int]], expected: str) -> None:
    assert XBTUSD is not None
    raw = sum(price * lots for price, lots in fills)
    lots = sum(lots for _, lots in fills)
    assert average_price(XBTUSD, raw, lots) == expected


@given(st.lists(st.tuples(st.integers(1, 10**12), st.integers(1, 10**12)), min_size=1, max_size=20))
def test_the_average_is_the_exact_ratio_half_even_and_within_the_trade_prices(
    fills: list[tuple[int, int]],
) -> None:
    assert XBTUSD is not None
    raw = sum(price * lots for price, lots in fills)
    lots = sum(lots for _, lots in fills)
    shown = average_price(XBTUSD, raw, lots)
    with localcontext() as ctx:
        ctx.prec = 100
        exact = (Decimal(raw) / Decimal(lots)).scaleb(-XBTUSD.pair_decimals)
    assert Decimal(shown) == exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    prices = [Decimal(price).scaleb(-XBTUSD.pair_decimals) for price, _ in fills]
    assert min(prices) <= Decimal(shown) <= max(prices)  # so never beyond a buyer's or seller's limit


COLUMNS = ("ordertype", "price_text", "price2_text", "limit_ticks", "stop_ticks", "price2_ticks", "amended")


def _row(*values: object) -> sqlite3.Row:
    """An orders row with the columns ``order_prices`` reads, as the read model returns it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.row_factory = sqlite3.Row
        select = ", ".join(f"? AS {name}" for name in COLUMNS)
        row: sqlite3.Row = conn.execute(f"SELECT {select}", values).fetchone()
        return row
    finally:
        conn.close()


# (ordertype, price_text, price2_text, limit_ticks, stop_ticks, price2_ticks, amended) -> descr prices
PRICES = [
    ((T.market, "", "", 0, 0, 0, 0), ("0", "0")),
    ((T.limit, "20000.0", "", 200_000, 0, 0, 0), ("20000.0", "0")),
    ((T.limit, "20000.0", "", 190_005, 0, 0, 1), ("19000.5", "0")),  # absolute: always its ticks
    ((T.limit, "-100", "", 199_001, 0, 0, 0), ("-100", "0")),  # relative, as placed: as written
    ((T.limit, "#2%", "", 196_001, 0, 0, 0), ("#2%", "0")),
    ((T.limit, "-100", "", 190_005, 0, 0, 1), ("19000.5", "0")),  # amended: the current limit
    ((T.iceberg, "+50", "", 200_601, 0, 0, 1), ("20060.1", "0")),
    ((T.stop_loss, "-100", "", 0, 199_001, 0, 0), ("-100", "0")),
    ((T.stop_loss, "-100", "", 0, 197_000, 0, 1), ("19700.0", "0")),
    ((T.take_profit, "25000.0", "", 0, 260_000, 0, 1), ("26000.0", "0")),
    ((T.stop_loss_limit, "-100", "-5", 0, 199_001, 198_951, 0), ("-100", "-5")),
    ((T.stop_loss_limit, "19900.0", "-5", 0, 199_000, 198_950, 0), ("19900.0", "-5")),
    # amended: the trigger and the limit it has now, even where only the trigger moved
    ((T.stop_loss_limit, "-100", "-5", 0, 197_000, 198_951, 1), ("19700.0", "19895.1")),
    ((T.take_profit_limit, "25000.0", "25010.0", 0, 300_000, 300_100, 1), ("30000.0", "30010.0")),
    ((T.trailing_stop, "+100", "", 0, 199_001, 0, 0), ("+100", "0")),  # never amendable
    ((T.trailing_stop_limit, "+1%", "-5", 0, 198_001, -50, 0), ("+1%", "-5")),
]


@pytest.mark.parametrize(("row", "expected"), PRICES, ids=[f"{r[0].name}-{r[1]}-{r[6]}" for r, _ in PRICES])
def test_descr_prices_are_relative_as_written_until_amended(
    row: tuple[object, ...], expected: tuple[str, str]
) -> None:
    assert XBTUSD is not None
    assert order_prices(XBTUSD, _row(*row)) == expected
