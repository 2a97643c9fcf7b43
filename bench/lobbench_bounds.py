"""What the engine's speed goals leave for the engine: lobbench's standard workload, with bounds.

Run from the repository root with the project venv (about 3 minutes)::

    python bench/lobbench_bounds.py                  # 1M ops, 2 interleaved passes
    python bench/lobbench_bounds.py --ops 200000 --passes 1

Issue 2 asks the compiled engine for 1.0 times lobbench's ``heapbook`` and pure Python for 0.5
times. ``heapbook`` is a bare book, interpreted. This measures, in the same run and interleaved:

- ``heapbook``: the baseline, interpreted (lobbench's own);
- ``heapbook, compiled``: the same algorithm compiled by mypyc (``heapbook_typed.py``, built here
  into ``build/bounds``): what compiling buys a bare book with no holds, fees, index or events;
- ``commands only``: lobbench's loop and ``lobbench_adapter.CommandsOnly``, which builds each
  op's ``PlaceOrder`` or ``CancelOrders`` as the real adapter does and applies nothing: what any
  engine behind this command interface pays before its first instruction;
- the Abyssal engine, compiled (``build/mypyc/lib``, when built) and pure.

It prints ops/s and µs per op for each, and the budget the compiled goal leaves the engine: the
time of one ``heapbook`` op, minus the adapter's share, against what the compiled bare book alone
takes. ``bench/README.md`` ("The bounds of the engine goals") has the figures and the reading.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOBBENCH_DEFAULT = Path(os.environ.get("LOBBENCH", "/work/shared/bench/lobbench.py"))
BOUNDS_DIR = ROOT / "build" / "bounds"
COMPILED_LIB = ROOT / "build" / "mypyc" / "lib"


def build_typed_heapbook() -> Path:
    """Compile ``heapbook_typed.py`` with mypyc into ``build/bounds``; returns that directory."""
    BOUNDS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "bench" / "heapbook_typed.py", BOUNDS_DIR / "heapbook_typed.py")
    mypyc = Path(sys.executable).with_name("mypyc")
    subprocess.run([str(mypyc), "heapbook_typed.py"], cwd=BOUNDS_DIR, check=True, capture_output=True)
    if not list(BOUNDS_DIR.glob("heapbook_typed.*.so")):
        raise SystemExit("lobbench_bounds: mypyc built no heapbook_typed extension")
    return BOUNDS_DIR


def run(lobbench: Path, engine: str, path: list[Path], ops: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    cmd = [sys.executable, str(lobbench), "--engine", engine, "--ops", str(ops), "--no-latency",
           "--json", "-"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    if "error" in r:
        raise SystemExit(f"lobbench_bounds: {engine}: {r['error']}")
    state = r.get("final_state")
    if state is not None and not state["consistent"]:  # the book differs from lobbench's reference
        raise SystemExit(f"lobbench_bounds: {engine}: final state {state}")
    return {"ops_per_s": float(r["ops_per_s"]), "us": float(r["mean_us_per_op"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--passes", type=int, default=2, help="interleaved passes; the best counts")
    ap.add_argument("--lobbench", type=Path, default=LOBBENCH_DEFAULT)
    args = ap.parse_args(argv)
    bench = ROOT / "bench"
    typed = build_typed_heapbook()
    rows: list[tuple[str, str, list[Path]]] = [
        ("lobbench's loop only", "noop", []),
        ("heapbook", "heapbook", []),
        ("heapbook, compiled", "heapbook_typed:HeapBookTyped", [typed]),
        ("commands only", "lobbench_adapter:CommandsOnly", [bench]),
        ("Abyssal, pure", "lobbench_adapter:Adapter", [ROOT / "src", bench]),
    ]
    if any(COMPILED_LIB.glob("abyssal/core/*.so")):
        rows.append(("Abyssal, compiled", "lobbench_adapter:Adapter", [COMPILED_LIB, bench]))
    else:
        print("no compiled build in build/mypyc/lib (python build_mypyc.py): the compiled row is left out")
    version = sys.version.split()[0]
    print(f"# lobbench bounds: {args.ops:,} ops, {args.passes} interleaved passes, Python {version}")
    best: dict[str, dict[str, float]] = {}
    for n in range(1, args.passes + 1):
        for label, engine, path in rows:
            r = run(args.lobbench, engine, path, args.ops)
            print(f"pass {n}  {label:20s} {r['ops_per_s']:>12,.0f} ops/s  {r['us']:.3f} µs/op", flush=True)
            if label not in best or r["ops_per_s"] > best[label]["ops_per_s"]:
                best[label] = r
    base = best["heapbook"]
    print()
    print("| engine | ops/s (best) | µs per op | vs heapbook |")
    print("|---|---:|---:|---:|")
    for label, r in best.items():
        ratio = r["ops_per_s"] / base["ops_per_s"]
        print(f"| {label} | {r['ops_per_s']:,.0f} | {r['us']:.3f} | {ratio:.3f}x |")
    loop_us = best["lobbench's loop only"]["us"]
    adapter_us = best["commands only"]["us"]  # lobbench's loop included
    book_us = best["heapbook, compiled"]["us"] - loop_us
    engine_us = base["us"] - adapter_us
    print()
    print(f"compiled goal (1.0x): {base['us']:.3f} µs per op in all. The loop and the adapter's commands "
          f"take {adapter_us:.3f}, so the engine has {engine_us:.3f} µs per op; a bare book, compiled, "
          f"takes {book_us:.3f} of it, which leaves {engine_us - book_us:.3f} µs for holds, fees, the "
          "order index and the events")  # fmt: skip
    left = 2 * base["us"] - adapter_us - (base["us"] - loop_us)
    print(f"pure goal (0.5x): {2 * base['us']:.3f} µs per op in all. The loop and the commands take "
          f"{adapter_us:.3f} and the interpreted bare book {base['us'] - loop_us:.3f}, which leaves "
          f"{left:.3f} µs for the rest, interpreted")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
