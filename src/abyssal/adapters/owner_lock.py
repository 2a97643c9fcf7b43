"""One exchange per SQLite database: an exclusive lock held for the exchange's whole life.

Two servers on one data directory would each replay the log into an engine of their own and then
write batches with the same sequence numbers: the second one's first batch fails, and a second
server that could not bind its port still wrote its shutdown snapshot into the live database. So
``take`` locks ``<database>-owner`` (``flock``, never blocking) before the store is opened, and a
second exchange is refused at once, with the holder's pid.

The lock is on a file of its own, never the database: closing any descriptor of the database file
would drop SQLite's POSIX locks on it. The descriptor is close-on-exec, so the batch writer child
(a new program) does not keep it; a forked snapshot child shares it and lets go when it exits. The
kernel releases it when the process dies, however it dies, so a crash never leaves it stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

SUFFIX = "-owner"


class DatabaseInUse(RuntimeError):
    """Another live process holds the database."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


def holder(database: Path) -> str:
    """The pid written by the process that holds (or last held) the lock, or '' if unknown."""
    with contextlib.suppress(OSError):
        return lock_path(database).read_text().strip()
    return ""


def is_held(database: Path) -> bool:
    """Whether a live process holds the database now (for tools that only read it)."""
    try:
        fd = os.open(lock_path(database), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def take(database: Path) -> int:
    """Lock ``database`` for this process; returns the descriptor to pass to ``release``."""
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = holder(database)
        by = f" by process {pid}" if pid else ""
        raise DatabaseInUse(
            f"{database} is in use{by}: another abyssal exchange runs on this data directory"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
