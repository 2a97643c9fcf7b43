"""The amend log behind OrderAmends (``order_amends``): exactly what the events say, however the
commands were batched, and through the batch writer's pipe.

Each amended order has the order as entered (amend_no 0, copied from its row before the first amend
overwrites it) and then one row per ``OrderAmended``, whose remaining quantity is the new volume less
every lot the order filled before that amend: fills of earlier batches (the row's ``filled_lots``)
and fills earlier in the same batch (carried by the projector), both counted once.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.core.test_snapshot import stream

from abyssal.adapters.sqlite import BatchRecord, SqliteStore, write_rows
from abyssal.adapters.sqlite_writer import decode_batch, encode_batch
from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import Event, Fill, OrderAccepted, OrderAmended
from abyssal.runtime.projector import Projector, Rows

INS = load_config(None).instruments
LOG_COLUMNS = "order_no, amend_no, volume_lots, display_lots, limit_ticks, stop_ticks, remaining_lots, ts_ns"
LogRow = tuple[int, int, int, int, int, int, int, int]


def engine_events(seed: int, length: int) -> list[list[Event]]:
    """The events of a stream that places, fills, amends and cancels (tests/core/test_snapshot.py)."""
    commands, _, _ = stream(seed, length)
    engine = Engine(INS)
    return [list(engine.apply(c)) for c in commands]


def expected_log(events: list[list[Event]]) -> list[LogRow]:
    """The amend log read straight off the events, sorted as the table is."""
    placed: dict[int, OrderAccepted] = {}
    filled: dict[int, int] = defaultdict(int)
    log: list[LogRow] = []
    for e in (e for batch in events for e in batch):
        if isinstance(e, OrderAccepted) and not e.validate_only:
            placed[e.order_no] = e
        elif isinstance(e, Fill):
            filled[e.taker_order] += e.volume_lots
            filled[e.maker_order] += e.volume_lots
        elif isinstance(e, OrderAmended):
            a = placed.pop(e.order_no, None)
            if a is not None:  # the first amend: the order as entered comes first
                limit = a.price2_ticks if a.stop_ticks > 0 else a.price_ticks  # an untriggered stop's limit
                log.append((a.order_no, 0, a.volume_lots, a.display_lots, limit, a.stop_ticks, a.volume_lots,
                            a.ts_ns))  # fmt: skip
            remaining = e.volume_lots - filled[e.order_no]
            log.append((e.order_no, e.amend_no, e.volume_lots, e.display_lots, e.price_ticks, e.stop_ticks,
                        remaining, e.ts_ns))  # fmt: skip
    return sorted(log)


def write(store: SqliteStore, events: list[list[Event]], batch: int) -> None:
    projector = Projector(INS, {})
    for first in range(0, len(events), batch):
        rows = Rows()
        for seq, batch_events in enumerate(events[first : first + batch], start=first + 1):
            projector.project(seq, batch_events, rows)
        with store.transaction() as c:
            write_rows(c, rows)


def read_log(conn: Any) -> list[LogRow]:
    """The table as rows of ``LOG_COLUMNS`` (a SQLite or a PostgreSQL store's connection)."""
    rows = conn.execute(f"SELECT {LOG_COLUMNS} FROM order_amends ORDER BY order_no, amend_no").fetchall()
    return [tuple(r) for r in rows]


@pytest.fixture(scope="module")
def events() -> list[list[Event]]:
    return engine_events(2, 1_500)


def test_the_stream_amends_partly_filled_orders_within_a_batch(events: list[list[Event]]) -> None:
    """The workload reaches the cases that matter: amends of orders with fills before them, and fills
    that fall in the same batch as the amend after them (the store's row does not have them yet)."""
    log = expected_log(events)
    user = [row for row in log if row[1] > 0]
    assert len(user) > 20
    assert sum(row[6] < row[2] for row in user) > 3, "no amend of a partly filled order"
    seen_fill_then_amend = 0
    for first in range(0, len(events), 64):
        filled_here: set[int] = set()
        for e in (e for batch in events[first : first + 64] for e in batch):
            if isinstance(e, Fill):
                filled_here.update((e.taker_order, e.maker_order))
            elif isinstance(e, OrderAmended) and e.order_no in filled_here:
                seen_fill_then_amend += 1
    assert seen_fill_then_amend > 0, "no fill and later amend of one order inside a batch of 64"


@pytest.mark.parametrize("batch", [1, 5, 64, 1_000])
def test_the_log_is_what_the_events_say_however_commands_were_batched(
    tmp_path: Path, events: list[list[Event]], batch: int
) -> None:
    store = SqliteStore(tmp_path / "abyssal.db")
    write(store, events, batch)
    assert read_log(store.conn()) == expected_log(events)
    never = store.conn().execute(
        "SELECT COUNT(*) FROM orders o WHERE amended = 0 AND EXISTS "
        "(SELECT 1 FROM order_amends a WHERE a.order_no = o.order_no)"
    )
    assert never.fetchone()[0] == 0, "an order never amended has no log rows"
    store.close()


def test_the_log_crosses_the_writer_pipe(tmp_path: Path, events: list[list[Event]]) -> None:
    projector = Projector(INS, {})
    store = SqliteStore(tmp_path / "abyssal.db")
    sent = 0
    for first in range(0, len(events), 64):
        rows = Rows()
        for seq, batch_events in enumerate(events[first : first + 64], start=first + 1):
            projector.project(seq, batch_events, rows)
        arrived = decode_batch(encode_batch(BatchRecord(first + 1, [], [], rows)))
        assert arrived.rows.amend_log == rows.amend_log
        sent += len(rows.amend_log)
        with store.transaction() as c:
            write_rows(c, arrived.rows, arrived.orders)
    assert sent > 20
    assert read_log(store.conn()) == expected_log(events)
    store.close()
