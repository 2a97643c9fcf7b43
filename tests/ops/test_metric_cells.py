"""The hot-path cells expose exactly what prometheus_client's Counter and Histogram expose."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from abyssal.metric_cells import CounterCells, HistogramCells

BUCKETS = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)


def _exposition(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 20, allow_nan=False) | st.sampled_from(BUCKETS)),
        max_size=40,
    )
)
def test_cells_and_prometheus_client_expose_the_same_text(observations: list[tuple[str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("x_seconds", "Doc.", ["endpoint"], buckets=BUCKETS, registry=theirs)
    c1 = Counter("x_requests", "Doc.", ["endpoint"], registry=theirs)
    b1 = Counter("x_batches", "Doc.", registry=theirs)
    n1 = Histogram("x_batch_commands", "Doc.", buckets=(1, 2, 4, 8), registry=theirs)
    h2 = HistogramCells("x_seconds", "Doc.", ["endpoint"], buckets=BUCKETS, registry=ours)
    c2 = CounterCells("x_requests", "Doc.", ["endpoint"], registry=ours)
    b2 = CounterCells("x_batches", "Doc.", registry=ours)
    n2 = HistogramCells("x_batch_commands", "Doc.", buckets=(1, 2, 4, 8), registry=ours)
    for label, value in observations:
        h1.labels(label).observe(value)
        h2.labels(label).observe(value)
        c1.labels(label).inc(2)
        c2.labels(label).inc(2)
        b1.inc()
        b2.inc()
        n1.observe(int(value))
        n2.observe(int(value))
    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("x_seconds_count", {"endpoint": "a"}) == theirs.get_sample_value(
        "x_seconds_count", {"endpoint": "a"}
    )
