"""Machine: the facts a benchmark prints and the process controls it needs (CPU, load, disk, limits)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from percentile import percentile

FSYNC_PROBES = 200


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names: Iterable[str]) -> str:
    """``name version`` of each installed distribution, comma-separated."""
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)


def machine_lines() -> list[str]:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        f"python -V: Python {platform.python_version()} ({sys.executable})",
        f"CPU: {cpu_model()}; nproc: {nproc}; kernel {platform.release()}",
        f"SQLite {sqlite3.sqlite_version}, {package_versions(['uvloop'])}",
        f"abyssal: {abyssal_build()}",
        f"other load now: {contention()}",
    ]


def abyssal_build() -> str:
    """Which abyssal this run imports (and its servers and children, which inherit PYTHONPATH): the
    sources, or a compiled build, and whether that build still matches ``src/``. A build is a
    copy of the whole package, so a stale one runs yesterday's code, pure modules included; the
    figures of such a run belong to no commit. Stale builds are also reported on stderr."""
    import abyssal

    package = Path(abyssal.__file__).resolve().parent
    out = package.parent.parent  # build/mypyc for build/mypyc/lib/abyssal
    if not (out / "digest").is_file():
        return f"pure Python ({package})"
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("build_mypyc", root / "build_mypyc.py")
    assert spec is not None and spec.loader is not None
    build_mypyc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_mypyc)
    if build_mypyc.is_current(out):
        return f"compiled build ({package.parent}), current"
    line = f"compiled build ({package.parent}) STALE: src/ changed since it was made (python build_mypyc.py)"
    print(f"warning: abyssal {line}", file=sys.stderr)
    return line


def contention() -> str:
    """Load average and CPU pressure (PSI): other work on the machine makes every figure lower."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        fields = dict(
            f.split("=") for f in Path("/proc/pressure/cpu").read_text().splitlines()[0].split()[1:]
        )
        psi = f"; CPU pressure (some) {fields['avg10']} % over 10 s, {fields['avg60']} % over 60 s"
    except (OSError, IndexError, KeyError, ValueError):
        psi = ""
    return f"load average {load}{psi}"


def raise_fd_limit() -> int:
    """Raise the open-files soft limit to the hard limit (thousands of sockets); returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin(cpu: int) -> None:
    """Pin this process to one CPU, where the machine has it."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def process_cpu_s(pid: int) -> float:
    """User + system CPU of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid: int) -> float:
    """``process_cpu_s`` of an ``abyssal serve`` and of its live child processes (the batch writer,
    adapters/sqlite_writer.py), plus its children that have exited and been waited for (forked
    snapshots)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    for child in children(pid):
        with contextlib.suppress(OSError):  # a child may end meanwhile
            total += server_cpu_s(child)
    return total


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (of all its threads)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end meanwhile
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def children_cpu_s() -> float:
    """User + system CPU of this process's finished children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fdatasync_ms(directory: Path) -> tuple[float, float]:
    """(p50, p99) of fdatasync after a 4 KiB overwrite in ``directory``.

    That is the wait at the heart of each SQLite WAL commit with synchronous=FULL (the WAL is
    rewritten in place once it has wrapped, so no size change forces a journal commit).
    """
    path = directory / "fdatasync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    samples = []
    try:
        os.write(fd, b"\0" * 4096 * FSYNC_PROBES)
        os.fsync(fd)
        for i in range(FSYNC_PROBES):
            os.pwrite(fd, b"x" * 4096, 4096 * i)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()
    return percentile(samples, 50), percentile(samples, 99)


def fs_type(path: Path) -> str:
    out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True, check=False)
    lines = out.stdout.split()
    return f"filesystem {lines[-1]}" if len(lines) > 1 else "filesystem unknown"


# The benchmarks drive tens of thousands of resting orders from one or two accounts on one pair:
# far past the packaged per-pair open-orders limit (Kraken's 225), which they do not measure
BENCH_CONFIG_TOML = "[limits]\nopen_orders_per_pair_max = 100000  # the most the config takes\n"


def bench_config() -> Any:
    """The packaged defaults with the open-orders limit raised for load (``BENCH_CONFIG_TOML``)."""
    from abyssal.config import config_from_toml

    return config_from_toml(BENCH_CONFIG_TOML, "bench/machine.py")
