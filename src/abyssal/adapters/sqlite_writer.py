"""The batch writer as a process of its own: the sequencer's commits without the event loop's GIL.

A thread that writes SQLite shares the GIL with the event loop. Python's ``sqlite3`` lets the GIL
go around each ``sqlite3_step`` and must take it back afterwards; while the loop thread runs
Python, that takes up to the switch interval (5 ms), and mypyc-compiled code does not stop to
hand it over at all. Measured with ``bench/gil_rows.py``: a thread inserting ledger rows made
about 265,000 rows/s alone and about 3,300 rows/s beside a busy thread, so the writer thread got
its work done mostly while the loop sat idle waiting for it, and a batch's apply and its commit
ran one after the other instead of side by side (docs/architecture.md, "The batch writer").

Here the main process sends each ``BatchRecord`` over a pipe, msgpack-encoded, its order writes
already coalesced (``coalesce_orders``: the child is the slower side, so the sender does what it
can), to a child that owns its own connection, with SQLite set for one thread
(``sqlite_for_one_thread``), and runs ``SqliteStore.write_batch``; the reply (the transaction's
start and end, or the error) comes back on a second pipe, read by the event loop. The contract
is the thread's: a batch is acknowledged only after the child answers that its transaction
committed. If the child dies the pending write fails and the sequencer stops (fail-stop); a
restart recovers from the log. The child dies with its parent (``PR_SET_PDEATHSIG``) and exits
when its input closes.

Run as ``python -m abyssal.adapters.sqlite_writer DB SYNCHRONOUS READ_FD WRITE_FD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from abyssal.adapters.sqlite import BatchRecord, SqliteStore, coalesce_orders
from abyssal.runtime.projector import Rows

_LEN = struct.Struct("<I")
SQLITE_OK = 0
SQLITE_CONFIG_MULTITHREAD = 2  # sqlite3.h
SQLITE_CONFIG_MEMSTATUS = 9
START_TIMEOUT_S = 30.0  # the child imports, opens the database and says it is ready
STOP_TIMEOUT_S = 10.0  # the child finishes the batch it has and exits


class WriterGone(RuntimeError):
    """The writer process died or refused a batch: the sequencer stops (fail-stop)."""


class BatchWire(msgspec.Struct, array_like=True):
    """A ``BatchRecord`` on the pipe (Rows field by field; balances as rows). The order writes
    travel coalesced (``coalesce_orders``, run by the sender): the child, which is the slower
    side of the pipeline, then only executes them."""

    first_seq: int
    command_rows: list[tuple[int, int, int, bytes]]
    event_rows: list[tuple[int, int, bytes]]
    order_inserts: list[tuple[Any, ...]]  # coalesced: inserts, fills, fills with their close, closes
    order_fills: list[tuple[int, ...]]
    order_fill_closes: list[tuple[int, ...]]
    order_closes: list[tuple[int, int, int, int]]
    order_starts: list[tuple[int]]
    order_amends: list[tuple[int, int, int, int, int, int]]
    order_triggers: list[tuple[int, int, int]]
    trades: list[tuple[Any, ...]]
    fills: list[tuple[Any, ...]]
    ledger: list[tuple[Any, ...]]
    balances: list[tuple[int, int, int, int]]
    withdraw_holds: list[tuple[str, int, int, int]]
    withdraw_resolved: list[tuple[str]]
    nonces: list[tuple[int, int]]
    offsets: list[tuple[str, int]]
    snapshot: tuple[int, str, bytes] | None
    amend_log: list[tuple[int, int, int, int, int, int, int, int]]


class Reply(msgspec.Struct, array_like=True):
    start_ns: int
    end_ns: int
    error: str = ""


_encode = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(BatchWire).decode
_decode_reply = msgspec.msgpack.Decoder(Reply).decode


def encode_batch(b: BatchRecord) -> bytes:
    r = b.rows
    inserts, fills, fill_closes, closes = coalesce_orders(r) if b.orders is None else b.orders
    return _encode(
        BatchWire(
            b.first_seq, b.command_rows, b.event_rows, inserts, fills, fill_closes, closes,
            r.order_starts, r.order_amends, r.order_triggers, r.trades, r.fills, r.ledger,
            [(k[0], k[1], v[0], v[1]) for k, v in r.balances.items()], r.withdraw_holds,
            r.withdraw_resolved, list(b.nonces.items()), list(b.offsets.items()), b.snapshot, r.amend_log,
        )
    )  # fmt: skip


def decode_batch(data: bytes) -> BatchRecord:
    """The record ``encode_batch`` sent, its order writes coalesced into ``orders``."""
    w = _decode_batch(data)
    rows = Rows(
        [], [], [], w.order_starts, w.order_amends, w.order_triggers, w.trades, w.fills, w.ledger,
        {(a, s): [t, h] for a, s, t, h in w.balances}, w.withdraw_holds, w.withdraw_resolved, w.amend_log,
    )  # fmt: skip
    orders = (w.order_inserts, w.order_fills, w.order_fill_closes, w.order_closes)
    nonces, offsets = dict(w.nonces), dict(w.offsets)
    return BatchRecord(
        w.first_seq, w.command_rows, w.event_rows, rows, nonces, w.snapshot, 0, offsets, orders
    )


def _send_frame(fd: int, data: bytes) -> None:
    """``data`` behind its length, all of it (a pipe may take a large write in parts)."""
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _pop_frame(buf: bytearray) -> bytes | None:
    """The first whole frame in ``buf``, removed from it; None while it is still arriving."""
    if len(buf) < _LEN.size:
        return None
    end = _LEN.size + _LEN.unpack_from(buf)[0]
    if len(buf) < end:
        return None
    frame = bytes(buf[_LEN.size : end])
    del buf[:end]
    return frame


class ProcessBatchWriter:
    """The main side: ``write`` hands a batch to the child and returns a future for its commit."""

    parallel = True  # the child commits beside the event loop (writer_thread.early_handover_pays)

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_child = -1
        self._from_child = -1
        self._buffer = bytearray()
        self._pending: list[asyncio.Future[tuple[int, int]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.gone: str = ""  # why the child can take no more batches

    def start(self) -> None:
        """Spawn the child and wait until it has opened the database (blocking)."""
        batch_r, batch_w = os.pipe()
        reply_r, reply_w = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            argv = [
                sys.executable,
                "-m",
                __name__,
                str(self.path),
                self.synchronous,
                str(batch_r),
                str(reply_w),
            ]
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(batch_r, reply_w),
                env=env,
            )
        finally:
            os.close(batch_r)
            os.close(reply_w)
        self._to_child, self._from_child = batch_w, reply_r
        with contextlib.suppress(OSError):  # a bigger pipe: a batch goes in one write (Linux)
            fcntl.fcntl(batch_w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        ready = self._read_frame_blocking(START_TIMEOUT_S)
        if ready is None or _decode_reply(ready).error:
            self.close()
            raise WriterGone(f"the batch writer did not start: {ready!r}")
        os.set_blocking(reply_r, False)

    def _read_frame_blocking(self, timeout_s: float) -> bytes | None:
        deadline = time.monotonic() + timeout_s
        while (frame := _pop_frame(self._buffer)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                return None
            chunk = os.read(self._from_child, 65_536)
            if not chunk:
                return None
            self._buffer += chunk
        return frame

    def write(self, loop: asyncio.AbstractEventLoop, record: BatchRecord) -> asyncio.Future[tuple[int, int]]:
        """Send one batch; the future resolves to the transaction's (start, end) ns, or fails."""
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        if self.gone:
            future.set_exception(WriterGone(self.gone))
            return future
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._from_child, self._readable)
        try:
            data = encode_batch(record)
        except (AssertionError, OverflowError, TypeError, ValueError) as exc:
            # an int beyond 64 bits, which SQLite would refuse as well: the batch fails like a
            # refused commit, and so does every later one (the log must stay a prefix of the batches)
            self.gone = f"the batch cannot be encoded: {exc!r}"
            future.set_exception(WriterGone(self.gone))
            return future
        try:
            _send_frame(self._to_child, data)
        except OSError as exc:  # the child is gone: this batch never reached it
            self.gone = self.gone or f"the batch writer is gone: {exc!r}"
            future.set_exception(WriterGone(self.gone))
            # The batches before it keep the answers the child wrote before it exited (a commit,
            # or the refusal that made it exit): _readable reads them, then fails the rest at the
            # end of the pipe. Failing them here would report a committed batch as lost.
            return future
        self._pending.append(future)
        return future

    def _readable(self) -> None:
        try:
            chunk = os.read(self._from_child, 65_536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(f"the batch writer is gone: {exc!r}")
            return
        if not chunk:
            code = self._proc.poll() if self._proc is not None else None
            self._fail(f"the batch writer exited (code {code})")
            return
        self._buffer += chunk
        while (frame := _pop_frame(self._buffer)) is not None:
            reply = _decode_reply(frame)
            future = self._pending.pop(0)
            if future.done():
                continue
            if reply.error:  # the child stops after a refused batch
                self.gone = self.gone or reply.error
                future.set_exception(WriterGone(reply.error))
            else:
                future.set_result((reply.start_ns, reply.end_ns))

    def _fail(self, why: str) -> None:
        self.gone = self.gone or why
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._from_child)
        pending, self._pending = self._pending, []
        for future in pending:
            if not future.done():
                future.set_exception(WriterGone(self.gone))

    def close(self) -> None:
        """Close the child's input (it finishes what it has, then exits) and wait for it."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._from_child)
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_child = self._from_child = -1
        self.gone = self.gone or "the batch writer is closed"
        if self._proc is not None:
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._fail(self.gone)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed exchange leaves no writer)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def sqlite_for_one_thread() -> bool:
    """Configure this process's SQLite for a single thread: no mutex per connection call
    (``SQLITE_CONFIG_MULTITHREAD``) and no memory statistics, whose mutex every allocation takes
    (``SQLITE_CONFIG_MEMSTATUS`` off). Both are global settings that SQLite accepts only while no
    connection is open, so this runs first in the writer child, whose one thread owns its one
    connection. Returns whether SQLite took them; any doubt (another library than the one
    ``sqlite3`` uses, a refusal) leaves SQLite as it was, which is only slower.
    """
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_libversion.restype = ctypes.c_char_p
        if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
            return False
        if lib.sqlite3_shutdown() != SQLITE_OK:  # re-initialised below with the new settings
            return False
        ok = lib.sqlite3_config(SQLITE_CONFIG_MULTITHREAD) == SQLITE_OK
        ok = lib.sqlite3_config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == SQLITE_OK and ok
        return bool(lib.sqlite3_initialize() == SQLITE_OK) and ok
    except (OSError, AttributeError):  # no shared libsqlite3 to configure
        return False


def _reply(fd: int, reply: Reply) -> None:
    _send_frame(fd, _encode(reply))


def main(argv: list[str]) -> int:
    path, synchronous, read_fd, write_fd = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 1
    sqlite_for_one_thread()  # before the store opens its connection
    try:
        store = SqliteStore(path, synchronous=synchronous, multirow=True)
    except Exception as exc:
        _reply(write_fd, Reply(0, 0, f"open failed: {exc!r}"))
        return 1
    _reply(write_fd, Reply(0, 0))
    source = os.fdopen(read_fd, "rb", buffering=1 << 20)
    while len(head := source.read(_LEN.size)) == _LEN.size:
        data = source.read(_LEN.unpack(head)[0])
        start_ns = time.time_ns()
        try:
            store.write_batch(decode_batch(data))
        except Exception as exc:  # the parent fails the batch and stops; so do we
            _reply(write_fd, Reply(start_ns, time.time_ns(), repr(exc)))
            return 1
        _reply(write_fd, Reply(start_ns, time.time_ns()))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
