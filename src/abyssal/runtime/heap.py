"""How a long-running Abyssal process keeps the cyclic garbage collector out of its way.

An exchange holds a large, long-lived heap (the book, the orders, the accounts) and makes many
short-lived containers per command (events, rows, futures). With CPython's defaults (a young
collection every 700 allocations, a full one every 100 young ones) the full collections walk the
whole book, 20-125 ms each with a large one, and the young ones run every few commands. After
start-up the recovered state is frozen (never collected again: it lives as long as the process)
and young objects are collected less often.
"""

from __future__ import annotations

import gc

GC_GEN0_THRESHOLD = 50_000  # CPython's default is 700
GC_GEN1_THRESHOLD = 20
GC_GEN2_THRESHOLD = 100


def settle_heap() -> None:
    """Collect once, freeze what survives, and collect young objects less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, GC_GEN2_THRESHOLD)
