"""What this machine charges for the operations every batch of the sequencer does: a few seconds.

Run from the repo root (any Python 3.11; pin it like the server is pinned in the benches)::

    taskset -c 0 python bench/vm_costs.py

Prints the CPU time (this process, user and system) of: a cheap system call, a 1 ms and a 4 ms
sleep, a thread round trip back to back and with idle time between round trips, a 4 KiB
``pwrite`` into the page cache with and without a WAL frame's 24-byte header write before it, and
an ``fdatasync`` after 1 and after 12 written pages (with its wall time). On a dedicated host,
sleeps, wake-ups and fdatasync cost a few µs of CPU each; on a VM that exits to its hypervisor
to idle, they can cost ten times that, and a batch of the sequencer pays several of them
(``bench/README_http.md``, "Fewer pages per commit").
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable

from machine import machine_lines

PAGE = 4096


def cpu_us(action: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        action()
    return (time.process_time() - start) / n * 1e6


def thread_round_trips(n: int, gap_s: float) -> float:
    """CPU µs per round trip to a second thread and back, ``gap_s`` idle between round trips."""
    go, back = threading.Event(), threading.Event()
    stop = False

    def worker() -> None:
        while True:
            go.wait()
            go.clear()
            if stop:
                return
            back.set()

    t = threading.Thread(target=worker)
    t.start()

    def one() -> None:
        go.set()
        back.wait()
        back.clear()
        if gap_s:
            time.sleep(gap_s)

    try:
        return cpu_us(one, n)
    finally:
        stop = True
        go.set()
        t.join()


def disk(n: int) -> list[str]:
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="abyssal-vmcosts-", dir=".") as tmp:
        fd = os.open(os.path.join(tmp, "wal"), os.O_CREAT | os.O_RDWR)
        try:
            os.write(fd, b"\0" * (PAGE * 256))
            os.fsync(fd)
            page = os.urandom(PAGE)
            offsets = iter(range(10**9))

            def one_page() -> None:  # 64 different pages in turn, as a WAL's frames are
                os.pwrite(fd, page, (next(offsets) % 64) * PAGE)

            def frame() -> None:
                off = (next(offsets) % 64) * (PAGE + 24)
                os.pwrite(fd, page[:24], off)
                os.pwrite(fd, page, off + 24)

            out.append(f"pwrite of a 4 KiB page: {cpu_us(one_page, n * 10):.1f} µs")
            out.append(f"a WAL frame (24-byte header, then the page): {cpu_us(frame, n * 10):.1f} µs")
            for pages in (1, 12):
                cpu = wall = 0.0
                for i in range(n):
                    for p in range(pages):
                        os.pwrite(fd, page, ((i * 13 + p) % 256) * PAGE)
                    c0, w0 = time.process_time(), time.perf_counter()
                    os.fdatasync(fd)
                    cpu += time.process_time() - c0
                    wall += time.perf_counter() - w0
                cpu_each, wall_each = cpu / n * 1e6, wall / n * 1e6
                out.append(f"fdatasync after {pages} page(s): {cpu_each:.1f} µs CPU, {wall_each:.1f} µs wall")
        finally:
            os.close(fd)
    return out


def main() -> None:
    print("# What sleeping, waking and syncing cost here (CPU time of this process)")
    for line in machine_lines():
        print(line)
    print(f"getppid (a cheap system call): {cpu_us(lambda: os.getppid() and None, 200_000):.2f} µs")
    print(f"time.sleep(0.001): {cpu_us(lambda: time.sleep(0.001), 2_000):.1f} µs per sleep")
    print(f"time.sleep(0.004): {cpu_us(lambda: time.sleep(0.004), 500):.1f} µs per sleep")
    print(f"thread round trip, back to back: {thread_round_trips(5_000, 0):.1f} µs")
    print(f"thread round trip, 1 ms idle between: {thread_round_trips(2_000, 0.001):.1f} µs (with the sleep)")
    print(f"thread round trip, 4 ms idle between: {thread_round_trips(500, 0.004):.1f} µs (with the sleep)")
    for line in disk(1_000):
        print(line)


if __name__ == "__main__":
    main()
