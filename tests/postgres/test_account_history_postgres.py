"""OrderAmends, TradesHistory with ledgers and TradeVolume with the fee schedule, unchanged, against a
server on PostgreSQL (the e2e suite's own tests; this directory's ``server`` fixture is PostgreSQL)."""

from __future__ import annotations

import pytest
from tests.e2e.test_account_history import (
    clients,
    test_order_amends_lists_the_order_as_entered_then_each_amend,
    test_order_amends_shows_the_fields_each_order_type_has,
    test_trade_volume_gives_each_pairs_fee_schedule_with_the_active_tier,
    test_trades_history_lists_the_ledger_entries_each_trade_made,
)

pytestmark = pytest.mark.slow

__all__ = [
    "clients",
    "test_order_amends_lists_the_order_as_entered_then_each_amend",
    "test_order_amends_shows_the_fields_each_order_type_has",
    "test_trade_volume_gives_each_pairs_fee_schedule_with_the_active_tier",
    "test_trades_history_lists_the_ledger_entries_each_trade_made",
]
