"""Engine snapshots taken in a forked child, so the sequencer never stops for them.

Serialising the engine costs about 6 µs per open order in pure Python (about 0.4 s for 65,000
orders), and the engine must not change while it runs. Taken inline, that is a pause of the whole
exchange every ``snapshot_every_commands``. Instead, at the batch boundary where a snapshot is due,
the process forks: the child holds a copy-on-write image of the engine exactly at that sequence
number, serialises it at the lowest CPU priority and streams it back through a pipe, while the
parent goes on applying commands. The parent pays for the fork (copying page tables: about 9 ms
for a 274 MB process on the 2-vCPU VM of bench/README.md) and for the pages it changes while the
child runs; memory grows by at most the pages either side touches until the child exits.

The child only runs ``snapshot`` and ``hashlib`` and leaves with ``os._exit``: it never touches
the event loop, the database, logging or any lock another thread may have held at the fork. It
closes every inherited descriptor but its pipe first, so a listening socket or a database file
never outlives a killed parent in an orphaned child.

Wire format on the pipe: one status byte; ``0`` then the 64-byte hex SHA-256 and the blob, or ``1``
then the child's error text.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import signal
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from abyssal.core.engine import Engine

log = structlog.get_logger("abyssal.snapshots")

HASH_HEX_BYTES = 64
STATUS_OK = 0
STATUS_FAILED = 1


class SnapshotChildError(Exception):
    """The child could not produce a snapshot (its error text, or how it ended)."""


def fork_available() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


@dataclass
class ForkedSnapshot:
    """A child serialising the engine as it was at ``seq``; ``collect`` blocks until it is done."""

    seq: int
    pid: int
    fd: int
    started_ns: int = field(default_factory=time.perf_counter_ns)

    def collect(self) -> tuple[str, bytes]:
        """(hex SHA-256, blob); raises SnapshotChildError if the child failed. Call it once."""
        try:
            with open(self.fd, "rb", closefd=True) as pipe:
                data = pipe.read()
        finally:
            _, status = os.waitpid(self.pid, 0)
        if not data or data[0] != STATUS_OK:
            text = data[1:].decode("utf-8", "replace") if data else "no output"
            raise SnapshotChildError(f"snapshot child (exit status {status}): {text}")
        if status != 0 or len(data) <= 1 + HASH_HEX_BYTES:
            raise SnapshotChildError(f"snapshot child ended with status {status} after {len(data)} bytes")
        digest = data[1 : 1 + HASH_HEX_BYTES].decode("ascii")
        blob = data[1 + HASH_HEX_BYTES :]
        if hashlib.sha256(blob).hexdigest() != digest:
            raise SnapshotChildError("snapshot child: the blob does not match its hash")
        return digest, blob

    def kill(self) -> None:
        """Stop a child whose result is no longer wanted (shutdown); ``collect`` reaps it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def fork_snapshot(engine: Engine, seq: int) -> ForkedSnapshot:
    """Fork a child that serialises ``engine`` as it is now. Raises OSError if the fork fails."""
    read_fd, write_fd = os.pipe()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork in a threaded process; the child below only runs
            # code that takes no lock another thread could hold, then calls os._exit.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # pragma: no cover - the child's coverage is never collected (os._exit)
        _child(engine, write_fd)
    os.close(write_fd)
    return ForkedSnapshot(seq, pid, read_fd)


def _child(engine: Engine, write_fd: int) -> None:  # pragma: no cover - runs in the child
    status = 1
    try:
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, os.sysconf("SC_OPEN_MAX"))
        gc.disable()  # a short life: nothing to collect, and a collection would copy every page
        with contextlib.suppress(OSError):
            os.nice(19)
        from abyssal.core.snapshot import snapshot

        try:
            blob = snapshot(engine)
            out = bytes([STATUS_OK]) + hashlib.sha256(blob).hexdigest().encode("ascii") + blob
        except Exception as exc:  # reported to the parent, which logs it
            out = bytes([STATUS_FAILED]) + repr(exc).encode("utf-8", "replace")
        view = memoryview(out)
        while view:
            view = view[os.write(write_fd, view) :]
        status = 0 if out[0] == STATUS_OK else 1
    finally:
        os._exit(status)


class BackgroundSnapshots:
    """At most one forked snapshot at a time, written through the writer once its batch is durable.

    ``write`` stores one snapshot and runs on ``writer``: the sequencer passes the store's
    ``write_snapshot`` and its writer thread (started once the batch that reached its seq is durable,
    whichever batch writer committed it), a scaled-out engine node its own database thread.
    """

    def __init__(self, write: Callable[[int, str, bytes], None], writer: Executor) -> None:
        self.enabled = fork_available()
        self._write = write
        self._writer = writer
        self._collector = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abyssal-snapshot")
        self._child: ForkedSnapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.failed = 0

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, engine: Engine, seq: int, committed: Awaitable[object] | None) -> bool:
        """Fork a child for the engine as it is now (at ``seq``); False when that is not possible.

        ``committed`` resolves when the batch holding ``seq`` is durable (None: it already is). On
        False the caller takes the snapshot inline.
        """
        if not self.enabled or self.busy or self._closing:
            return False
        try:
            child = fork_snapshot(engine, seq)
        except OSError as exc:  # e.g. ENOMEM: inline this time
            log.warning("snapshot_fork_failed", error=repr(exc), seq=seq)
            return False
        self._child = child
        self._task = asyncio.get_running_loop().create_task(self._complete(child, committed))
        return True

    async def _complete(self, child: ForkedSnapshot, committed: Awaitable[object] | None) -> None:
        loop = asyncio.get_running_loop()
        try:
            digest, blob = await loop.run_in_executor(self._collector, child.collect)
        except SnapshotChildError as exc:
            if not self._closing:
                self.failed += 1
                log.error("snapshot_failed", error=str(exc), seq=child.seq)
            return
        finally:
            self._child = None
        try:
            if committed is not None:
                await committed  # its seq must be durable before the snapshot is
        except Exception:  # the batch failed: the sequencer stops; this snapshot is not valid
            return
        try:
            await loop.run_in_executor(self._writer, self._write, child.seq, digest, blob)
        except Exception as exc:  # the log is complete without it; the next one is taken later
            self.failed += 1
            log.error("snapshot_write_failed", error=repr(exc), seq=child.seq)
            return
        self.written += 1
        elapsed_us = (time.perf_counter_ns() - child.started_ns) // 1_000
        log.info("snapshot_written", seq=child.seq, bytes=len(blob), duration_us=elapsed_us)

    async def close(self) -> None:
        """Shutdown: a running child is killed (the final snapshot supersedes it)."""
        self._closing = True
        if self._child is not None:
            self._child.kill()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._collector.shutdown(wait=True)
