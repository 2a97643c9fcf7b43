"""``abyssal loadtest``'s settings, results and report: the summary table, the JSON and the plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("place", "cancel", "query")
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True, slots=True)
class Settings:
    url: str
    rate_per_s: float
    duration_s: float
    scenario: str = "rest-orders"
    accounts: int = 4
    connections: int = 32
    arrival: str = "uniform"  # or "poisson"
    mix: tuple[int, int, int] = (50, 30, 20)  # place, cancel, query
    pair: str = "XBTUSD"
    cross_percent: int = 10  # share of orders priced to trade at once
    seed: int = 1
    timeout_s: float = 10.0
    admin_token: str | None = None
    progress: bool = True
    plot: Path | None = None
    json_out: Path | None = None


@dataclass(slots=True)
class Result:
    kind: str
    intended_s: float  # offset from the start of the run
    latency_ns: int
    outcome: str  # "ok", a Kraken error, "http 5xx", "timeout" or "connection"


@dataclass(slots=True)
class Summary:
    settings: Settings
    results: list[Result]
    elapsed_s: float
    table: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def _row(latencies_ns: list[int], ok: int, elapsed_s: float) -> dict[str, float]:
    values = sorted(latencies_ns)
    row: dict[str, float] = {
        "count": len(values),
        "ok": ok,
        "errors": len(values) - ok,
        "per_s": len(values) / elapsed_s if elapsed_s > 0 else 0.0,
    }
    for p in PERCENTILES:
        row[f"p{p:g}_ms"] = percentile(values, p) / 1e6
    row["max_ms"] = (values[-1] if values else 0) / 1e6
    return row


def summarise(settings: Settings, results: list[Result], elapsed_s: float) -> Summary:
    summary = Summary(settings, results, elapsed_s)
    for kind in (*KINDS, "all"):
        mine = [r for r in results if kind in ("all", r.kind)]
        if mine:
            ok = sum(r.outcome == "ok" for r in mine)
            summary.table[kind] = _row([r.latency_ns for r in mine], ok, elapsed_s)
    for r in results:
        if r.outcome != "ok":
            summary.errors[r.outcome] = summary.errors.get(r.outcome, 0) + 1
    return summary


def format_table(summary: Summary) -> str:
    s = summary.settings
    head = (
        f"scenario {s.scenario}: target {s.rate_per_s:g}/s for {s.duration_s:g} s ({s.arrival} arrivals), "
        f"{s.accounts} accounts, {s.connections} connections; latency from each intended send time"
    )
    cols = ["count", "ok", "errors", "per_s", *(f"p{p:g}_ms" for p in PERCENTILES), "max_ms"]
    lines = [head, f"{'kind':<8}" + "".join(f"{c:>11}" for c in cols)]
    for kind, row in summary.table.items():
        cells = "".join(
            f"{row[c]:>11.0f}" if c in ("count", "ok", "errors") else f"{row[c]:>11.2f}" for c in cols
        )
        lines.append(f"{kind:<8}{cells}")
    for outcome, n in sorted(summary.errors.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>8} x {outcome}")
    return "\n".join(lines)


def plot(summary: Summary, path: Path) -> None:
    """PNG: latency percentiles per second of intended send time, and completions per second."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib (pip install 'abyssal[loadtest]')") from exc
    seconds = int(summary.elapsed_s) + 1
    buckets: list[list[int]] = [[] for _ in range(seconds)]
    done = [0] * seconds
    for r in summary.results:
        buckets[min(seconds - 1, int(r.intended_s))].append(r.latency_ns)
        done[min(seconds - 1, int(r.intended_s + r.latency_ns / 1e9))] += 1
    xs = list(range(seconds))
    sent = [x for x in xs if buckets[x]]  # seconds in which requests were due (no zeros on a log scale)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for p in (50.0, 90.0, 99.0, 100.0):
        label = "max" if p == 100.0 else f"p{p:g}"
        top.plot(sent, [percentile(sorted(buckets[x]), p) / 1e6 for x in sent], marker=".", label=label)
    top.set_yscale("log")
    top.set_ylabel("latency, ms (from intended send)")
    top.set_title("latency by second of intended send", fontsize=10)
    top.legend()
    top.grid(True, which="both", alpha=0.3)
    bottom.plot(xs, done, label="completed/s")
    bottom.axhline(summary.settings.rate_per_s, color="grey", linestyle="--", label="target/s")
    bottom.set_title("completions by second", fontsize=10)
    bottom.set_xlabel("seconds since start")
    bottom.set_ylabel("requests/s")
    bottom.legend()
    bottom.grid(True, alpha=0.3)
    fig.suptitle(f"abyssal loadtest: {summary.settings.scenario} at {summary.settings.rate_per_s:g}/s")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def to_json(summary: Summary) -> dict[str, Any]:
    s = summary.settings
    return {
        "scenario": s.scenario,
        "rate_per_s": s.rate_per_s,
        "duration_s": s.duration_s,
        "elapsed_s": summary.elapsed_s,
        "table": summary.table,
        "errors": summary.errors,
    }
