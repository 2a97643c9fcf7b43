"""The amend log behind OrderAmends on PostgreSQL: the same rows as the events say (and as SQLite
writes, tests/adapters/test_amend_log.py), however the commands were batched."""

from __future__ import annotations

import pytest
from tests.adapters.test_amend_log import INS, engine_events, expected_log, read_log

from abyssal.adapters.postgres import PostgresStore
from abyssal.adapters.sqlite import BatchRecord
from abyssal.runtime.projector import Projector, Rows

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("batch", [1, 64])
def test_the_log_is_what_the_events_say_however_commands_were_batched(
    pg_store: PostgresStore, batch: int
) -> None:
    events = engine_events(2, 1_500)
    projector = Projector(INS, {})
    for first in range(0, len(events), batch):
        rows = Rows()
        for seq, batch_events in enumerate(events[first : first + batch], start=first + 1):
            projector.project(seq, batch_events, rows)
        pg_store.write_batch(BatchRecord(first + 1, [], [], rows))
    expected = expected_log(events)
    assert sum(row[1] > 0 for row in expected) > 20
    assert read_log(pg_store.conn()) == expected
