"""Counters and histograms for the hot paths: every request and every batch.

prometheus_client's own children take a lock and, for a histogram, walk the buckets in Python
on every observation: about 7,500 instructions a call, several calls per request and per batch.
Here an observation is a ``bisect`` and two additions on plain numbers. The registry reads them
through ``collect`` at scrape time. The series, names, labels and buckets are the ones
``prometheus_client.Counter`` and ``Histogram`` expose, except for their ``_created`` samples.

Observations come from the event loop's thread. A scrape may read a count while it is being
added to, and then sees it one observation early or late, as with any scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ["CounterCells", "HistogramCells"]


class HistogramCell:
    """One label set's buckets: ``counts[i]`` observations at most ``bounds[i]`` (and above the
    previous bound); the last count is above every bound (``+Inf``)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class CounterCell:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        assert amount >= 0, "counters only go up"
        self.value += amount


def _bound_text(bound: float) -> str:
    return repr(float(bound))  # as prometheus_client writes ``le``: 0.005, 1.0, 64.0


class HistogramCells:
    """A histogram (optionally labelled) registered in ``registry`` under ``name``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        assert list(buckets) == sorted(set(buckets)), "buckets ascend"
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        self._cells: dict[tuple[str, ...], HistogramCell] = {}
        if not self.labelnames:
            self._cells[()] = HistogramCell(self.bounds)
        registry.register(self)

    def labels(self, *values: str) -> HistogramCell:
        assert len(values) == len(self.labelnames), "one value per label"
        cell = self._cells.get(values)
        if cell is None:
            cell = self._cells[values] = HistogramCell(self.bounds)
        return cell

    def observe(self, amount: float) -> None:
        self._cells[()].observe(amount)

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        texts = [_bound_text(b) for b in self.bounds] + ["+Inf"]
        for values, cell in list(self._cells.items()):
            running, buckets = 0, []
            for text, count in zip(texts, list(cell.counts), strict=True):
                running += count
                buckets.append((text, running))
            family.add_metric(list(values), buckets, cell.sum)
        yield family


class CounterCells:
    """A counter (optionally labelled); the exposition adds ``_total`` to ``name``."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._cells: dict[tuple[str, ...], CounterCell] = {}
        if not self.labelnames:
            self._cells[()] = CounterCell()
        registry.register(self)

    def labels(self, *values: str) -> CounterCell:
        assert len(values) == len(self.labelnames), "one value per label"
        cell = self._cells.get(values)
        if cell is None:
            cell = self._cells[values] = CounterCell()
        return cell

    def inc(self, amount: float = 1) -> None:
        self._cells[()].inc(amount)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, cell in list(self._cells.items()):
            family.add_metric(list(values), cell.value)
        yield family
