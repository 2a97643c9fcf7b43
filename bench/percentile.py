"""Percentile: the one nearest-rank definition every benchmark reports latencies with."""

from __future__ import annotations


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    assert sorted_values, "no samples"
    assert 0 < pct <= 100
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]
