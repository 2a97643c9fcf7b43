"""Named fault points for crash tests: no-ops unless ``ABYSSAL_FAULT`` arms one.

``ABYSSAL_FAULT=relay.after_publish_before_mark:exit`` makes the process ``os._exit(137)`` the
first time the relay reaches that point; ``...:sleep_ms=2000`` sleeps there instead (async points
only); ``...:raise`` raises ``FaultInjected`` (in-process tests of rollback paths). Several points
may be armed, separated by commas. Production never sets the variable.
"""

from __future__ import annotations

import asyncio
import os

EXIT_CODE = 137
_armed: dict[str, str] = {}


class FaultInjected(RuntimeError):
    """Raised at an armed ``raise`` point."""


def arm(name: str, action: str) -> None:
    _armed[name] = action


def disarm(name: str) -> None:
    _armed.pop(name, None)


def arm_from_env() -> None:
    _armed.clear()
    for item in filter(None, os.environ.get("ABYSSAL_FAULT", "").split(",")):
        name, _, action = item.partition(":")
        _armed[name.strip()] = action.strip() or "exit"


def point(name: str) -> None:
    """A synchronous fault point (inside a transaction, in a worker thread)."""
    action = _armed.get(name)
    if action == "exit":
        os._exit(EXIT_CODE)
    if action == "raise":
        raise FaultInjected(name)


async def apoint(name: str) -> None:
    """An asynchronous fault point: may also sleep, to hold a request in flight."""
    action = _armed.get(name)
    if action is None:
        return
    if action.startswith("sleep_ms="):
        await asyncio.sleep(int(action.removeprefix("sleep_ms=")) / 1000)
        return
    point(name)


arm_from_env()
