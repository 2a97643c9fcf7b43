"""A command batch as PostgreSQL statements: what the writer sends in one transaction.

Bulk rows (commands, events, new orders, trades, fills, ledger lines, balances) go as one
``INSERT ... SELECT FROM unnest(column arrays)`` each, which costs about what COPY does but keeps
``ON CONFLICT`` (a batch written twice is harmless). Order updates stay per row and in event
order (``executemany``, pipelined), because one order can fill several times in a batch.
Statements are plain (sql, params, many) tuples with ``%s`` placeholders, so any driver can run
them (bench/pg_bench.py runs the same list on asyncpg to compare drivers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abyssal.adapters.sqlite import BatchRecord
from abyssal.runtime.projector import Rows

Statement = tuple[str, Sequence[Any], bool]  # (sql, parameters, executemany?)

BUMP_NONCES = "UPDATE api_keys SET last_nonce = GREATEST(last_nonce, %s) WHERE key_no = %s"
ORDER_COLUMNS = (
    "order_no, account, pair, side, ordertype, status, volume_lots, display_lots, limit_ticks, stop_ticks, "
    "price2_ticks, flags, tif, start_ns, expire_ns, userref, cl_ord_id, opened_ns, price_text, price2_text, "
    "hold_asset, hold_minor"
)
ORDER_TYPES = (
    "bigint", "bigint", "int", "smallint", "smallint", "smallint", "bigint", "bigint", "bigint", "bigint",
    "bigint", "bigint", "smallint", "bigint", "bigint", "bigint", "text", "bigint", "text", "text", "int",
    "bigint",
)  # fmt: skip
LEDGER_COLUMNS = "seq, idx, leg, account, asset, type, subtype, refid, ts_ns, amount, fee, balance"
LEDGER_TYPES = ("bigint", "int", "int", "bigint", "int", "text", "text", "text", "bigint", "bigint", "bigint",
                "bigint")  # fmt: skip


def _arrays(types: Sequence[str]) -> str:
    return ", ".join(f"%s::{t}[]" for t in types)


INSERT_COMMANDS = (
    f"INSERT INTO commands SELECT * FROM unnest({_arrays(('bigint', 'bigint', 'int', 'bytea'))})"
)
INSERT_EVENTS = f"INSERT INTO events SELECT * FROM unnest({_arrays(('bigint', 'int', 'bytea'))})"
INSERT_ORDERS = (
    f"INSERT INTO orders ({ORDER_COLUMNS}) SELECT * FROM unnest({_arrays(ORDER_TYPES)}) "
    "ON CONFLICT DO NOTHING"
)
INSERT_TRADES = (
    f"INSERT INTO trades SELECT * FROM unnest({_arrays(['int'] + ['bigint'] * 8)}) ON CONFLICT DO NOTHING"
)
INSERT_FILLS = (
    f"INSERT INTO fills SELECT * FROM unnest({_arrays(['int'] + ['bigint'] * 11)}) ON CONFLICT DO NOTHING"
)
# WITH ORDINALITY ... ORDER BY n: entry numbers follow the lines' order, as in SQLite
INSERT_LEDGER = (
    f"INSERT INTO ledger ({LEDGER_COLUMNS}) SELECT {LEDGER_COLUMNS} FROM unnest({_arrays(LEDGER_TYPES)}) "
    f"WITH ORDINALITY AS t({LEDGER_COLUMNS}, n) ORDER BY n ON CONFLICT DO NOTHING"
)
UPSERT_BALANCES = (
    f"INSERT INTO balances SELECT * FROM unnest({_arrays(('bigint', 'int', 'bigint', 'bigint'))}) "
    "ON CONFLICT (account, asset) DO UPDATE SET total = excluded.total, held = excluded.held"
)
UPSERT_OFFSET = (
    "INSERT INTO projection_offsets VALUES ('ledger', %s) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq"
)
UPSERT_NAMED_OFFSET = (
    "INSERT INTO projection_offsets VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq"
)
KEEP_ORIGINAL = (
    "INSERT INTO order_amends (order_no, amend_no, volume_lots, display_lots, limit_ticks, stop_ticks, "
    "remaining_lots, ts_ns) SELECT order_no, 0, volume_lots, display_lots, "
    "CASE WHEN stop_ticks > 0 THEN price2_ticks ELSE limit_ticks END, stop_ticks, volume_lots, opened_ns "
    "FROM orders WHERE order_no = %s ON CONFLICT DO NOTHING"
)
LOG_AMEND = (
    "INSERT INTO order_amends (order_no, amend_no, volume_lots, display_lots, limit_ticks, stop_ticks, "
    "remaining_lots, ts_ns) SELECT order_no, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, "
    "%s::bigint - filled_lots, %s::bigint FROM orders WHERE order_no = %s ON CONFLICT DO NOTHING"
)
# delivered to every LISTENer when the transaction commits (scaled-out gateways wait on it)
NOTIFY_PROJECTED = "SELECT pg_notify('abyssal_projected', %s)"
UPSERT_SNAPSHOT = (
    "INSERT INTO snapshots VALUES (%s, %s, %s) ON CONFLICT (seq) "
    "DO UPDATE SET state_hash = excluded.state_hash, body = excluded.body"
)


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Row tuples to one list per column (the arrays ``unnest`` turns back into rows)."""
    assert rows, "an empty batch part sends no statement"
    assert all(len(r) == width for r in rows), "row width does not match the statement"
    return [list(col) for col in zip(*rows, strict=True)]


def batch_statements(b: BatchRecord) -> list[Statement]:
    """Every statement of one batch, in the order that keeps each valid (as ``sqlite.write_batch``)."""
    out: list[Statement] = []
    if b.command_rows:
        assert len(b.event_rows) == len(b.command_rows), "one events row per command"
        out.append((INSERT_COMMANDS, columns(b.command_rows, 4), False))
        out.append((INSERT_EVENTS, columns(b.event_rows, 3), False))
    out.extend(row_statements(b.rows))
    last_seq = b.command_rows[-1][0] if b.command_rows else b.first_seq - 1
    out.append((UPSERT_OFFSET, (last_seq,), False))
    if b.offsets:
        out.append((UPSERT_NAMED_OFFSET, list(b.offsets.items()), True))
    if b.nonces:
        out.append((BUMP_NONCES, [(n, k) for k, n in b.nonces.items()], True))
    if b.snapshot is not None:
        out.append((UPSERT_SNAPSHOT, b.snapshot, False))
    if b.command_rows:
        out.append((NOTIFY_PROJECTED, (str(last_seq),), False))
    return out


def row_statements(r: Rows) -> list[Statement]:
    """The read-model rows of one batch (mirrors ``sqlite.write_rows`` table by table)."""
    out: list[Statement] = []
    if r.order_inserts:
        out.append((INSERT_ORDERS, columns(r.order_inserts, 22), False))
    if r.order_starts:
        out.append(("UPDATE orders SET status = 1 WHERE order_no = %s", r.order_starts, True))
    if r.order_triggers:
        out.append((
            "UPDATE orders SET limit_ticks = CASE WHEN %s > 0 THEN %s ELSE limit_ticks END, "
            "triggered_ticks = %s WHERE order_no = %s",
            [(lim, lim, px, no) for lim, px, no in r.order_triggers], True,
        ))  # fmt: skip
    if r.amend_log:  # before the amend UPDATE (sqlite.KEEP_ORIGINAL_SQL says why)
        out.append((KEEP_ORIGINAL, [(row[-1],) for row in r.amend_log], True))
        out.append((LOG_AMEND, r.amend_log, True))
    # amends before fills (sqlite.write_rows says why)
    if r.order_amends:
        out.append((
            "UPDATE orders SET volume_lots = %s, display_lots = %s, "
            "limit_ticks = CASE WHEN %s > 0 AND stop_ticks = 0 THEN %s ELSE limit_ticks END, "
            "price2_ticks = CASE WHEN %s > 0 AND stop_ticks > 0 THEN %s ELSE price2_ticks END, "
            "stop_ticks = %s, hold_minor = hold_minor + %s, amended = 1 WHERE order_no = %s",
            [(v, d, p, p, p, p, s, h, no) for v, d, p, s, h, no in r.order_amends], True,
        ))  # fmt: skip
    if r.order_fills:
        out.append((
            "UPDATE orders SET filled_lots = filled_lots + %s, cost_minor = cost_minor + %s, "
            "fee_minor = fee_minor + %s, fee_asset = %s, hold_minor = hold_minor - %s WHERE order_no = %s",
            r.order_fills, True,
        ))  # fmt: skip
    if r.order_closes:
        out.append((
            "UPDATE orders SET status = %s, reason = %s, closed_ns = %s, hold_minor = 0 WHERE order_no = %s",
            r.order_closes, True,
        ))  # fmt: skip
    if r.trades:
        out.append((INSERT_TRADES, columns(r.trades, 9), False))
    if r.fills:
        out.append((INSERT_FILLS, columns(r.fills, 12), False))
    if r.ledger:
        out.append((INSERT_LEDGER, columns(r.ledger, 12), False))
    if r.balances:
        keys = list(r.balances)
        out.append((UPSERT_BALANCES, columns([(k[0], k[1], *r.balances[k]) for k in keys], 4), False))
    if r.withdraw_holds:
        out.append(("INSERT INTO withdrawal_holds VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    r.withdraw_holds, True))  # fmt: skip
    if r.withdraw_resolved:
        out.append(("DELETE FROM withdrawal_holds WHERE ref = %s", r.withdraw_resolved, True))
    return out
