"""What a private handler sees: the exchange, the caller's key, the time, and how to run commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from abyssal.core.messages import Command, Event, Rejected
from abyssal.gateway.errors import reject_text
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.params import ParamError
from abyssal.runtime.sequencer import Busy, Unavailable, Unjournalable

if TYPE_CHECKING:
    from abyssal.runtime.exchange import Exchange


@dataclass(slots=True)
class Ctx:
    exchange: Exchange
    key: ApiKey
    now_ns: int
    nonce: int

    @property
    def account(self) -> int:
        return self.key.account

    async def run(self, command: Command) -> list[Event]:
        """Sequence a command; the answer comes once it is durable. Busy and faults become errors."""
        try:
            return await self.exchange.execute(command, (self.key.key_no, self.nonce))
        except Busy:
            raise ParamError("EService:Busy") from None
        except Unavailable:
            raise ParamError("EService:Unavailable") from None
        except Unjournalable:
            raise ParamError("EGeneral:Invalid arguments") from None


def first_rejection(events: list[Event], batch_index: int = -1) -> Rejected | None:
    for e in events:
        if isinstance(e, Rejected) and e.batch_index == batch_index:
            return e
    return None


def raise_if_rejected(events: list[Event]) -> None:
    r = first_rejection(events)
    if r is not None:
        raise ParamError(reject_text(r.reason, r.detail))
