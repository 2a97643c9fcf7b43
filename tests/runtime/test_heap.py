"""The heap-settling step the exchange (and the sequencer benchmark) runs once recovered."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from abyssal.runtime.heap import GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, GC_GEN2_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = gc.get_threshold()
    # no real collection here: it would finalise whatever earlier tests of the session left in
    # cycles (their warnings would land on this test); the freeze and thresholds are the point
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)
    yield
    # what it froze stays frozen, as after every exchange a test opens: unfrozen, a later
    # collection would finalise what earlier tests left in cycles, under another test's name
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_the_living_heap_and_collects_young_objects_less_often() -> None:
    kept = [[i] for i in range(1_000)]  # a long-lived structure, like a recovered book
    settle_heap()
    assert gc.get_threshold() == (GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, GC_GEN2_THRESHOLD)
    assert GC_GEN0_THRESHOLD > 700  # CPython's default: the point is to collect less often
    assert gc.get_freeze_count() >= len(kept)  # out of every later collection
    collected = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert not any(id(x) in collected for x in kept)
