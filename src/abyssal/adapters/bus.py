"""The bus port's factory: ``memory://`` (default, in-process) or ``kafka://host:port``."""

from __future__ import annotations

from typing import Protocol

from abyssal.ports import BusMessage, Handler


class Bus(Protocol):
    """Publisher and Subscriber in one object (both adapters are shaped so)."""

    async def publish(self, messages: list[BusMessage]) -> None: ...

    def subscribe(self, topics: list[str], group: str) -> None: ...

    async def run(self, topics: list[str], group: str, handler: Handler) -> None: ...

    async def close(self) -> None: ...

    def audience(self) -> frozenset[str] | None:
        """The topics someone reads through this object, or None when it cannot know."""
        ...


def open_bus(url: str | None) -> Bus:
    if not url or url.startswith("memory://"):
        from abyssal.adapters.memory_bus import MemoryBus

        return MemoryBus()
    if url.startswith("kafka://"):
        from abyssal.adapters.kafka_bus import KafkaBus

        return KafkaBus(url)
    raise ValueError(f"unsupported bus URL {url!r}: use memory:// or kafka://host:port")
