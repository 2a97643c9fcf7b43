#!/usr/bin/env bash
# Every engine figure in one command: build (mypyc when possible), check compiled == pure,
# lobbench's heapbook baseline and the full Abyssal engine (pure and compiled) in the same run,
# memory per resting order, and a summary with the machine and Python version.
#
#   bench/run.sh                          # from anywhere; about 10 minutes on 2 cores
#   OPS=200000 ORDERS=200000 REPEAT=1 bench/run.sh     # a quick look
#   LOBBENCH=/path/to/lobbench.py PYTHON=python3 bench/run.sh
#
# Outputs land in build/bench/ (ignored by git): one JSON per run and summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
LOBBENCH=${LOBBENCH:-/work/shared/bench/lobbench.py}
OPS=${OPS:-1000000}          # lobbench's standard workload
ORDERS=${ORDERS:-1000000}    # resting orders for the memory figure (0: skip it)
REPEAT=${REPEAT:-3}          # throughput passes per engine, interleaved; the best one counts
OUT=build/bench
LIB=build/mypyc/lib
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.jsonl
[ -f "$LOBBENCH" ] || { echo "run.sh: no lobbench at $LOBBENCH (set LOBBENCH=...)" >&2; exit 2; }
if ls src/abyssal/core/*.so >/dev/null 2>&1; then
    echo "run.sh: src/abyssal/core holds in-place .so files, so 'pure' would not be pure;" >&2
    echo "        run: $PY build_mypyc.py --clean" >&2
    exit 2
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"

echo "== build"
compiled=0
if $PY build_mypyc.py >"$OUT/build.log" 2>&1 && grep -q "^compiled " "$OUT/build.log"; then
    compiled=1
    echo "mypyc build in $LIB"
else
    tail -3 "$OUT/build.log"
    echo "no compiled build: pure Python only"
fi

if [ $compiled = 1 ]; then
    echo "== compiled vs pure: byte-identical events"
    $PY bench/events_diff.py --seeds 1-6
fi

# engine name -> PYTHONPATH and lobbench --engine argument
engines=(heapbook pure)
[ $compiled = 1 ] && engines+=(compiled)
pypath() { case $1 in heapbook) echo "";; pure) echo "bench";; compiled) echo "$LIB:bench";; esac; }
lobarg() { case $1 in heapbook) echo "heapbook";; *) echo "lobbench_adapter:Adapter";; esac; }
lob() {  # lob ENGINE JSON [lobbench options...]
    local e=$1 json=$2; shift 2
    PYTHONPATH=$(pypath "$e") $PY "$LOBBENCH" --engine "$(lobarg "$e")" --ops "$OPS" --json "$json" "$@"
}

echo "== correctness: every event list checked (CheckedAdapter, 200k ops)"
PYTHONPATH=$(pypath "${engines[-1]}") $PY "$LOBBENCH" --adapter lobbench_adapter:CheckedAdapter \
    --ops "$OPS" --max-ops 200000 --no-latency

echo "== lobbench throughput: $OPS ops, $REPEAT passes per engine, interleaved"
for r in $(seq "$REPEAT"); do
    for e in "${engines[@]}"; do lob "$e" "$OUT/tp-$e-$r.json" --no-latency | sed "s/^/[$e] /"; done
done
echo "== lobbench latency: perf_counter_ns around every op"
for e in "${engines[@]}"; do lob "$e" "$OUT/lat-$e.json" | sed "s/^/[$e] /"; done

[ "$ORDERS" = 0 ] || echo "== memory: $ORDERS resting orders"
for e in pure compiled; do
    [ "$ORDERS" = 0 ] && break
    [ $e = compiled ] && [ $compiled = 0 ] && continue
    PYTHONPATH=$(pypath $e) $PY bench/memory.py --orders "$ORDERS" --json | tee -a "$OUT/memory.jsonl"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"

echo "== summary"
$PY - "$OUT" <<'EOF'
import glob, json, os, platform, sys
out = sys.argv[1]
def load(path):
    with open(path) as f:
        return json.load(f)[0]
names = [n for n in ("heapbook", "pure", "compiled") if os.path.exists(f"{out}/lat-{n}.json")]
# every run starts with a timer-free throughput pass (the latency runs too): the best one counts
best = {n: max(load(p)["ops_per_s"] for p in glob.glob(f"{out}/*-{n}*.json")) for n in names}
lat = {n: load(f"{out}/lat-{n}.json") for n in names}
mem = [json.loads(line) for line in open(f"{out}/memory.jsonl")] if os.path.exists(f"{out}/memory.jsonl") else []
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
load_txt = open(f"{out}/load.txt").read().strip().replace("\n", "; ")
lines = [
    f"Python {platform.python_version()}, {platform.machine()}, nproc {os.cpu_count()}, {cpu}",
    f"{load_txt}",
    f"lobbench: {lat[names[0]]['ops']:,} ops after {lat[names[0]]['warmup']:,} warm-up adds, seed {lat[names[0]]['seed']}",
    "",
    "| engine | ops/s (best) | vs heapbook | target | final state |",
    "|---|---:|---:|---|---|",
]
targets = {"pure": 0.5, "compiled": 1.0}
for n in names:
    ratio = best[n] / best["heapbook"]
    t = targets.get(n)
    verdict = "" if t is None else f">= {t}x: {'met' if ratio >= t else 'NOT met'}"
    state = lat[n].get("final_state", {}).get("consistent")
    lines.append(f"| {n} | {best[n]:,.0f} | {ratio:.3f}x | {verdict} | {'OK' if state else state} |")
lines += ["", "| engine | op | n | p50 µs | p99 µs | p99.9 µs | max µs |", "|---|---|---:|---:|---:|---:|---:|"]
for n in names:
    for kind in ("add", "cancel", "take", "all"):
        s = lat[n]["latency"][kind]
        lines.append(f"| {n} | {kind} | {s['n']:,} | {s['p50_ns']/1e3:.2f} | {s['p99_ns']/1e3:.2f} | "
                     f"{s['p99.9_ns']/1e3:.2f} | {s['max_ns']/1e3:.0f} |")
if "compiled" in lat:
    p99 = {k: lat["compiled"]["latency"][k]["p99_ns"] / 1e3 for k in ("add", "cancel")}
    ok = all(v < 5 for v in p99.values())
    lines.append(f"\ncompiled p99 < 5 µs per add and per cancel: {'met' if ok else 'NOT met'} "
                 f"(add {p99['add']:.2f}, cancel {p99['cancel']:.2f})")
if mem:
    lines += ["", "| build | method | resting orders | bytes/order | target <= 400 |", "|---|---|---:|---:|---|"]
    for m in mem:
        lines.append(f"| {m['build']} | {m['method']} | {m['orders']:,} | {m['bytes_per_order']} | "
                     f"{'met' if m['bytes_per_order'] <= 400 else 'NOT met'} |")
text = "\n".join(lines)
print(text)
with open(f"{out}/summary.md", "w") as f:
    f.write(text + "\n")
print(f"\n(written to {out}/summary.md)")
EOF
