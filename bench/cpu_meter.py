"""CPU meter: CPU seconds used over a window, by process kind, plus this client's own."""

from __future__ import annotations

import time
from collections.abc import Callable

from machine import process_cpu_s

Groups = Callable[[], dict[str, list[int]]]  # process kind -> its pids, asked anew at each sample


def cpu_s(pid: int) -> float:
    """``process_cpu_s``, 0 for a process that is gone (a killed engine, a closed backend)."""
    try:
        return process_cpu_s(pid)
    except OSError:
        return 0.0


class CpuMeter:
    """CPU seconds by process kind: the deployment's processes, PostgreSQL's backends, this client."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        out = {name: {pid: cpu_s(pid) for pid in pids} for name, pids in self.groups().items()}
        out["client"] = {0: time.process_time()}
        return out

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        used = {}
        for name, pids in end.items():
            before = self._start.get(name, {})
            used[name] = sum(v - before.get(pid, 0.0) for pid, v in pids.items())
        return used
