"""Memory per resting order: the engine's footprint with 1M resting orders, in bytes per order.

    python bench/memory.py                    # both methods, each in a fresh process
    python bench/memory.py --method rss       # RSS delta (what the OS sees, allocator slack included)
    python bench/memory.py --method tracemalloc --orders 200000

The book is built through ``Engine.apply`` with the lobbench adapter's mapping (XBTUSD, two
funded accounts), so each order costs what it costs in production: the ``Order``, its entry in
``EngineState.orders`` (the one order index), its number in its account's ``open_nos``, its
deque slot, and its share of the price levels.
Orders rest 1..LEVELS_PER_SIDE ticks from the mid on both sides (about 1,000 orders per level at
1M); nothing crosses. Events are dropped after each command, as a host does after journaling.
The figure is (memory after - memory before) / orders, after ``gc.collect()`` both times.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lobbench_adapter import Adapter  # bench/ is not a package: imported from its own directory

ORDERS_DEFAULT = 1_000_000
LEVELS_PER_SIDE = 500
MID_TICKS = 100_000
SEED = 7
TARGET_BYTES_PER_ORDER = 400


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def build(adapter: Adapter, orders: int) -> None:
    """Rest ``orders`` orders; lobbench oids 1..orders are the engine's order numbers."""
    rng = random.Random(SEED)
    for oid in range(1, orders + 1):
        is_buy = oid % 2 == 0
        offset = rng.randint(1, LEVELS_PER_SIDE)
        price = MID_TICKS - offset if is_buy else MID_TICKS + offset
        adapter.add(oid, is_buy, price, rng.randint(1, 100))


def measure(method: str, orders: int) -> dict[str, object]:
    adapter = Adapter()
    if method == "tracemalloc":
        tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else rss_bytes()
    t0 = time.perf_counter()
    build(adapter, orders)
    elapsed_s = time.perf_counter() - t0
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else rss_bytes()
    resting, best_bid, best_ask = adapter.snapshot()
    assert resting == orders, f"{resting} of {orders} orders rest"
    assert best_bid == MID_TICKS - 1 and best_ask == MID_TICKS + 1, (best_bid, best_ask)
    import abyssal.core.book as book_module

    return {
        "method": method,
        "orders": orders,
        "bytes_per_order": round((after - before) / orders, 1),
        "delta_bytes": after - before,
        "build": "compiled" if str(book_module.__file__).endswith(".so") else "pure",
        "place_s": round(elapsed_s, 2),
        "python": sys.version.split()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("rss", "tracemalloc", "both"), default="both")
    ap.add_argument("--orders", type=int, default=ORDERS_DEFAULT)
    ap.add_argument("--json", action="store_true", help="print one JSON object per method")
    args = ap.parse_args()
    if args.method == "both":  # each method in a fresh process: neither may see the other's heap
        for method in ("rss", "tracemalloc"):
            cmd = [sys.executable, __file__, "--method", method, "--orders", str(args.orders)]
            subprocess.run(cmd + (["--json"] if args.json else []), check=True)
        return 0
    result = measure(args.method, args.orders)
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "ok" if float(str(result["bytes_per_order"])) <= TARGET_BYTES_PER_ORDER else "over target"
        print(
            f"memory {result['build']:8s} {result['method']:11s} {result['orders']:,} resting orders: "
            f"{result['bytes_per_order']} bytes/order ({verdict}: <= {TARGET_BYTES_PER_ORDER})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
