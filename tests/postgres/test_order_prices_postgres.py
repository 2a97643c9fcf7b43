"""An order's average price and descr after an amend, unchanged, against a server on PostgreSQL (the
e2e suite's own tests; this directory's ``server`` fixture is PostgreSQL), and the fills query
behind the average on a PostgreSQL store, exact where a price times a volume passes BIGINT."""

from __future__ import annotations

import pytest
from tests.adapters.test_fill_costs import check_fill_costs
from tests.e2e.test_ccxt import clients
from tests.e2e.test_order_prices import (
    signers,
    test_ccxt_average_is_the_trade_price_when_the_cost_was_rounded,
    test_descr_shows_a_relative_price_as_written_until_an_amend_then_the_current_one,
    test_the_average_of_several_fills_is_volume_weighted_and_rounded_half_even,
)

from abyssal.adapters.postgres import PostgresStore

pytestmark = pytest.mark.slow

__all__ = [
    "clients",
    "signers",
    "test_ccxt_average_is_the_trade_price_when_the_cost_was_rounded",
    "test_descr_shows_a_relative_price_as_written_until_an_amend_then_the_current_one",
    "test_the_average_of_several_fills_is_volume_weighted_and_rounded_half_even",
]


def test_fill_costs_are_exact_beyond_64_bits_on_postgres(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        check_fill_costs(store)
    finally:
        store.close()
