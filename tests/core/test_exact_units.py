"""Decimal amounts to integer units: exact, within 64 bits, and cheap to refuse when absurd."""

from __future__ import annotations

from decimal import Decimal

import pytest

from abyssal.core.instruments import UNITS_MAX, exact_units


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("1.5", 8, 150_000_000),
        ("0", 8, 0),
        ("1.50000000000", 1, 15),  # trailing zeros are not decimals
        ("0.000000001", 8, None),  # one decimal too many
        ("92233720368.54775807", 8, UNITS_MAX),
        ("-92233720368.54775807", 8, -UNITS_MAX),
        ("92233720368.54775808", 8, None),  # 2**63
        # 35 digits: the default 28-digit context would round it into another, integral, number
        ("123456789012345678901234567.12345678", 8, None),
        ("12345678901234567890123.123456789", 8, None),
        ("1E+999999999", 8, None),  # refused on its exponent: int() of it would run for hours
        ("1E-999999999", 8, None),
        ("NaN", 8, None),
        ("Infinity", 8, None),
    ],
)
def test_exact_units(text: str, decimals: int, units: int | None) -> None:
    assert exact_units(Decimal(text), decimals) == units
