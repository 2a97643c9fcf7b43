"""What the sequencer reports about each committed batch: metrics, DEBUG records and spans.

Runs on the event loop after the batch's commit, for every batch: the counters cost a few
dictionary lookups per command; the per-command fields are built only when DEBUG logging or
tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from abyssal import tracing
from abyssal.core import ids
from abyssal.core.messages import (
    AmendOrder,
    CancelAllAfter,
    CancelOrders,
    Command,
    Deposit,
    EditOrder,
    Event,
    Fill,
    OrderAccepted,
    OrderClosed,
    PlaceBatch,
    PlaceOrder,
    Reject,
    Rejected,
    Withdraw,
)
from abyssal.metric_cells import CounterCell
from abyssal.observability import (
    APPLY_SECONDS,
    BATCH_COMMANDS,
    BATCHES,
    COMMANDS,
    COMMIT_SECONDS,
    FILLS,
    REJECTS,
    debug_enabled,
)

__all__ = ["command_fields", "command_name", "event_fields", "observe_batch"]

_command_children: dict[type, CounterCell] = {}
_reject_children: dict[int, CounterCell] = {}
_fill_children: dict[str, CounterCell] = {}
_batch_log = structlog.get_logger("abyssal.sequencer")


def _command_counter(kind: type) -> CounterCell:
    child = _command_children.get(kind)
    if child is None:
        child = _command_children[kind] = COMMANDS.labels(command_name(kind))
    return child


def command_name(kind: type) -> str:
    tag = getattr(kind, "__struct_config__", None)
    return str(tag.tag) if tag is not None and tag.tag else kind.__name__


def observe_batch(
    results: Sequence[tuple[int, Command, list[Event]]],
    traces: Sequence[tracing.Trace | None],
    pair_names: Sequence[str],
    *,
    apply_ns: int,
    commit_window_ns: tuple[int, int],
    batch_start_ns: int,
) -> None:
    """Metrics for one committed batch; DEBUG records and spans for its commands when they are on."""
    assert len(results) == len(traces)
    n = len(results)
    BATCHES.inc()
    BATCH_COMMANDS.observe(n)
    APPLY_SECONDS.observe(apply_ns / 1e9)
    COMMIT_SECONDS.observe((commit_window_ns[1] - commit_window_ns[0]) / 1e9)
    # counted locally, then one inc per label: each inc takes the metric's lock
    kinds: dict[type, int] = {}
    rejects: dict[int, int] = {}
    fills: dict[int, int] = {}
    for _, command, events in results:
        kind = type(command)
        kinds[kind] = kinds.get(kind, 0) + 1
        for e in events:
            if type(e) is Rejected:
                rejects[e.reason] = rejects.get(e.reason, 0) + 1
            elif type(e) is Fill:
                fills[e.pair] = fills.get(e.pair, 0) + 1
    for kind, count in kinds.items():
        _command_counter(kind).inc(count)
    for reason, count in rejects.items():
        _rejects(reason).inc(count)
    for pair, count in fills.items():
        _fills(pair_names[pair]).inc(count)
    debug = debug_enabled()
    if not (debug or tracing.enabled()):
        return
    for (seq, command, events), trace in zip(results, traces, strict=True):
        fields = command_fields(seq, command, events, pair_names)
        if debug:
            trace_id = trace.trace_id if trace is not None else None
            _batch_log.debug("command_committed", trace_id=trace_id, **fields)
        if trace is not None and trace.span is not None:
            tracing.record_command(
                trace,
                {k: v for k, v in fields.items() if v is not None and k != "events"},
                ((type(e).__name__, event_fields(e, pair_names)) for e in events),
                batch_start_ns=batch_start_ns,
                commit_window_ns=commit_window_ns,
                batch_commands=n,
            )


def _fills(pair_name: str) -> CounterCell:
    child = _fill_children.get(pair_name)
    if child is None:
        child = _fill_children[pair_name] = FILLS.labels(pair_name)
    return child


def _rejects(reason: int) -> CounterCell:
    child = _reject_children.get(reason)
    if child is None:
        name = Reject(reason).name if reason in Reject._value2member_map_ else str(reason)
        child = _reject_children[reason] = REJECTS.labels(name)
    return child


def command_fields(
    seq: int, c: Command, events: Iterable[Event], pair_names: Sequence[str]
) -> dict[str, Any]:
    """The vocabulary's fields for one sequenced command and what it did."""
    fields: dict[str, Any] = {"seq": seq, "shard": 0, "command": command_name(type(c))}
    if isinstance(c, PlaceBatch) and c.orders:
        fields["account_id"] = c.orders[0].account
        fields["pair"] = pair_names[c.orders[0].pair]
    account = getattr(c, "account", None)
    if account is not None:
        fields["account_id"] = account
    if isinstance(c, PlaceOrder):
        fields["pair"] = pair_names[c.pair]
        if c.cl_ord_id:
            fields["cl_ord_id"] = c.cl_ord_id
    if isinstance(c, (AmendOrder, EditOrder)) and c.order_no:
        fields["order_id"] = ids.order_id(c.order_no)
    if isinstance(c, CancelOrders) and c.order_nos:
        fields["order_id"] = ",".join(ids.order_id(n) for n in c.order_nos[:8])
    if isinstance(c, CancelAllAfter):
        fields["key_no"] = c.key_no
    if isinstance(c, (Deposit, Withdraw)):
        fields["ref"] = c.ref
    kinds: list[str] = []
    for e in events:
        kinds.append(type(e).__name__)
        if isinstance(e, OrderAccepted) and "order_id" not in fields:
            fields["order_id"] = ids.order_id(e.order_no)
        elif isinstance(e, Rejected) and "reason" not in fields:
            fields["reason"] = Reject(e.reason).name if e.reason in Reject._value2member_map_ else e.reason
    fields["events"] = kinds
    return fields


def event_fields(e: Event, pair_names: Sequence[str]) -> Mapping[str, Any]:
    """Span-event attributes of one engine event: its ids in the vocabulary."""
    if isinstance(e, Fill):
        return {
            "trade_id": ids.trade_id(e.pair, e.trade_no),
            "pair": pair_names[e.pair],
            "order_id": ids.order_id(e.taker_order),
            "maker_order_id": ids.order_id(e.maker_order),
        }
    if isinstance(e, (OrderAccepted, OrderClosed)):
        return {"order_id": ids.order_id(e.order_no), "account_id": e.account}
    if isinstance(e, Rejected):
        return {"reason": Reject(e.reason).name if e.reason in Reject._value2member_map_ else str(e.reason)}
    return {}
