"""The ccxt lifecycle and the SIGKILL crash test, unchanged, against a server on PostgreSQL.

The test functions are the e2e suite's own; this module's ``server`` fixture (conftest) runs
them on a fresh PostgreSQL database instead of SQLite.
"""

from __future__ import annotations

import pytest
from tests.e2e.test_ccxt import (
    clients,
    test_doc_section_9_scenario,
    test_odd_amounts_round_in_favour_of_the_house,
    test_order_types_amend_and_cancels,
)
from tests.e2e.test_crash import test_sigkill_mid_burst_loses_nothing_acknowledged

pytestmark = pytest.mark.slow

__all__ = [
    "clients",
    "test_doc_section_9_scenario",
    "test_odd_amounts_round_in_favour_of_the_house",
    "test_order_types_amend_and_cancels",
    "test_sigkill_mid_burst_loses_nothing_acknowledged",
]
