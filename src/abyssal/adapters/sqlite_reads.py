"""Read-model queries for the private REST endpoints (blocking; run on the reader pool).

Portable SQL: the PostgreSQL store runs the same strings (``adapters.postgres.translate``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from abyssal.adapters.store import Store

PAGE_ROWS = 50  # Kraken's page size for closed orders, trades and ledgers
OPEN_STATUSES = (0, 1)  # pending, open
CLOSED_STATUSES = (2, 3, 4)  # closed, canceled, expired


@dataclass(frozen=True, slots=True)
class Window:
    """Time filters in ns (0: unbounded); start exclusive, end inclusive, as Kraken does."""

    start_ns: int = 0
    end_ns: int = 0
    offset: int = 0


def _rows(store: Store, sql: str, args: tuple[object, ...]) -> list[sqlite3.Row]:
    c = store.conn()
    c.row_factory = sqlite3.Row
    try:
        return list(c.execute(sql, args).fetchall())
    finally:
        c.row_factory = None


def _time_window(column: str, w: Window, where: str, args: list[object]) -> str:
    """Kraken's time filters on one column: start exclusive, end inclusive."""
    if w.start_ns:
        where += f" AND {column} > ?"
        args.append(w.start_ns)
    if w.end_ns:
        where += f" AND {column} <= ?"
        args.append(w.end_ns)
    return where


def _page(
    store: Store, source: str, select: str, where: str, args: list[object], order: str, offset: int
) -> tuple[list[sqlite3.Row], int]:
    """One page of ``PAGE_ROWS`` rows, newest first, and the total count across pages."""
    count = _rows(store, f"SELECT COUNT(*) AS n FROM {source} WHERE {where}", tuple(args))[0]["n"]
    rows = _rows(
        store,
        f"SELECT {select} FROM {source} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        (*args, PAGE_ROWS, offset),
    )
    return rows, int(count)


def open_orders(store: Store, account: int, userref: int | None, cl_ord_id: str | None) -> list[sqlite3.Row]:
    sql = "SELECT * FROM orders WHERE account = ? AND status < 2"  # orders_open
    args: list[object] = [account]
    if userref is not None:
        sql += " AND userref = ?"
        args.append(userref)
    if cl_ord_id is not None:
        sql += " AND cl_ord_id = ?"
        args.append(cl_ord_id)
    return _rows(store, sql + " ORDER BY order_no DESC", tuple(args))


def closed_orders(
    store: Store, account: int, w: Window, closetime: str, userref: int | None, cl_ord_id: str | None
) -> tuple[list[sqlite3.Row], int]:
    where = "account = ? AND status >= 2"  # orders_closed
    args: list[object] = [account]
    column = "opened_ns" if closetime == "open" else "closed_ns"
    if w.start_ns:
        where += f" AND {column} > ?" if closetime != "both" else " AND (opened_ns > ? OR closed_ns > ?)"
        args.extend([w.start_ns] if closetime != "both" else [w.start_ns, w.start_ns])
    if w.end_ns:
        where += f" AND {column} <= ?" if closetime != "both" else " AND (opened_ns <= ? OR closed_ns <= ?)"
        args.extend([w.end_ns] if closetime != "both" else [w.end_ns, w.end_ns])
    if userref is not None:
        where += " AND userref = ?"
        args.append(userref)
    if cl_ord_id is not None:
        where += " AND cl_ord_id = ?"
        args.append(cl_ord_id)
    return _page(store, "orders", "*", where, args, "closed_ns DESC, order_no DESC", w.offset)


def orders_by_number(store: Store, account: int, numbers: list[int]) -> list[sqlite3.Row]:
    marks = ",".join("?" * len(numbers))
    return _rows(
        store, f"SELECT * FROM orders WHERE account = ? AND order_no IN ({marks})", (account, *numbers)
    )


def order_opened_ns(store: Store, account: int, order_no: int) -> int | None:
    rows = _rows(
        store, "SELECT opened_ns FROM orders WHERE account = ? AND order_no = ?", (account, order_no)
    )
    return int(rows[0]["opened_ns"]) if rows else None


def order_amends(store: Store, order_no: int) -> list[sqlite3.Row]:
    """An amended order's log, the order as entered (amend_no 0) first; [] if never amended."""
    return _rows(store, "SELECT * FROM order_amends WHERE order_no = ? ORDER BY amend_no", (order_no,))


def trades_of_orders(store: Store, numbers: list[int]) -> dict[int, list[tuple[int, int]]]:
    """order_no -> [(pair, trade_no)] in time order."""
    if not numbers:
        return {}
    marks = ",".join("?" * len(numbers))
    out: dict[int, list[tuple[int, int]]] = {}
    for r in _rows(
        store,
        f"SELECT order_no, pair, trade_no FROM fills WHERE order_no IN ({marks}) ORDER BY ts_ns",
        tuple(numbers),
    ):
        out.setdefault(int(r["order_no"]), []).append((int(r["pair"]), int(r["trade_no"])))
    return out


def fill_costs(store: Store, numbers: list[int]) -> dict[int, tuple[int, int]]:
    """order_no -> (raw cost, lots): ``sum(price_ticks * volume_lots)`` and ``sum(volume_lots)`` over
    the order's fills, the average price's numerator and denominator; orders without fills absent.

    Read from ``fills`` (``fills_order``), so every database written so far answers it as it is.
    SQL sums the lots at each price and this multiplies: a price times a volume can pass the 64 bits
    both stores' integers hold (SQLite would turn the product into a float, PostgreSQL refuse it;
    USDTUSD's raw unit is 10**-12 USD), while a sum of an order's lots stays within its volume.
    One row per order and price, usually far fewer than its fills.
    """
    if not numbers:
        return {}
    marks = ",".join("?" * len(numbers))
    out: dict[int, tuple[int, int]] = {}
    for r in _rows(
        store,
        f"SELECT order_no, price_ticks, SUM(volume_lots) AS lots FROM fills WHERE order_no IN ({marks}) "
        "GROUP BY order_no, price_ticks",
        tuple(numbers),
    ):
        order_no, price_ticks, lots = int(r["order_no"]), int(r["price_ticks"]), int(r["lots"])
        assert price_ticks > 0 and lots > 0, "a fill has a price and a volume"
        raw, total = out.get(order_no, (0, 0))
        out[order_no] = (raw + price_ticks * lots, total + lots)
    return out


def fills(store: Store, account: int, w: Window) -> tuple[list[sqlite3.Row], int]:
    args: list[object] = [account]
    where = _time_window("f.ts_ns", w, "f.account = ?", args)
    source = "fills f JOIN orders o ON o.order_no = f.order_no"
    select = "f.*, o.ordertype AS ordertype"
    return _page(store, source, select, where, args, "f.ts_ns DESC, f.trade_no DESC", w.offset)


def fills_by_trade(store: Store, account: int, keys: list[tuple[int, int]]) -> list[sqlite3.Row]:
    out: list[sqlite3.Row] = []
    for pair, trade_no in keys:
        out.extend(
            _rows(
                store,
                "SELECT f.*, o.ordertype AS ordertype FROM fills f JOIN orders o ON o.order_no = f.order_no "
                "WHERE f.account = ? AND f.pair = ? AND f.trade_no = ?",
                (account, pair, trade_no),
            )
        )
    return out


def trade_ledger_ids(
    store: Store, account: int, refids: list[str], ts_min_ns: int, ts_max_ns: int
) -> dict[str, list[int]]:
    """trade id -> the account's ledger entry numbers of that trade, in entry order. A trade's
    entries carry its fill's time, so the time bounds let the account's index do the search."""
    if not refids:
        return {}
    marks = ",".join("?" * len(refids))
    out: dict[str, list[int]] = {}
    for r in _rows(
        store,
        "SELECT entry_no, refid FROM ledger WHERE account = ? AND ts_ns >= ? AND ts_ns <= ? "
        f"AND type = 'trade' AND refid IN ({marks}) ORDER BY entry_no",
        (account, ts_min_ns, ts_max_ns, *refids),
    ):
        out.setdefault(str(r["refid"]), []).append(int(r["entry_no"]))
    return out


def ledger(
    store: Store, account: int, assets: list[int] | None, kind: str | None, w: Window
) -> tuple[list[sqlite3.Row], int]:
    where = "account = ?"
    args: list[object] = [account]
    if assets:
        where += f" AND asset IN ({','.join('?' * len(assets))})"
        args.extend(assets)
    if kind:
        where += " AND type = ?"
        args.append(kind)
    where = _time_window("ts_ns", w, where, args)
    return _page(store, "ledger", "*", where, args, "entry_no DESC", w.offset)


def ledger_by_number(store: Store, account: int, numbers: list[int]) -> list[sqlite3.Row]:
    marks = ",".join("?" * len(numbers))
    return _rows(
        store, f"SELECT * FROM ledger WHERE account = ? AND entry_no IN ({marks})", (account, *numbers)
    )


def balances(store: Store, account: int) -> list[sqlite3.Row]:
    return _rows(
        store, "SELECT asset, total, held FROM balances WHERE account = ? ORDER BY asset", (account,)
    )


def account_by_name(store: Store, name: str) -> int | None:
    rows = _rows(store, "SELECT id FROM accounts WHERE name = ?", (name,))
    return int(rows[0]["id"]) if rows else None


def audit(store: Store) -> list[str]:
    """Ledger invariants over the whole store; returns the problems found (empty when sound)."""
    problems: list[str] = []
    for r in _rows(
        store,
        "SELECT asset, SUM(amount - fee) AS s FROM ledger GROUP BY asset HAVING SUM(amount - fee) != 0",
        (),
    ):
        problems.append(f"asset {r['asset']}: ledger entries sum to {r['s']}, not 0")
    for r in _rows(
        store,
        "SELECT b.account, b.asset, b.total, COALESCE(SUM(l.amount - l.fee), 0) AS s FROM balances b "
        "LEFT JOIN ledger l ON l.account = b.account AND l.asset = b.asset "
        "GROUP BY b.account, b.asset HAVING COALESCE(SUM(l.amount - l.fee), 0) != b.total",
        (),
    ):
        problems.append(
            f"account {r['account']} asset {r['asset']}: balance {r['total']} != entries {r['s']}"
        )
    for r in _rows(
        store,
        "SELECT * FROM (SELECT b.account, b.asset, b.held, COALESCE(SUM(o.hold_minor), 0) + (SELECT "
        "COALESCE(SUM(w.amount_minor), 0) FROM withdrawal_holds w WHERE w.account = b.account AND w.asset = "
        "b.asset) AS h FROM balances b "
        "LEFT JOIN orders o ON o.account = b.account AND o.hold_asset = b.asset AND o.status < 2 "
        "WHERE b.account >= 0 GROUP BY b.account, b.asset) t WHERE h != held",
        (),
    ):
        problems.append(
            f"account {r['account']} asset {r['asset']}: held {r['held']} != open holds {r['h']} "
            "(orders and pending withdrawals)"
        )
    for r in _rows(
        store, "SELECT account, asset FROM balances WHERE account >= 0 AND (held < 0 OR total < held)", ()
    ):
        problems.append(f"account {r['account']} asset {r['asset']}: negative available or held")
    return problems
