"""The one table from engine reasons to Kraken's texts covers every reason the engine can give."""

from __future__ import annotations

from abyssal.core.messages import CloseReason
from abyssal.gateway.errors import CLOSE_REASON_TEXT


def test_every_close_reason_has_a_text() -> None:
    assert set(CLOSE_REASON_TEXT) == set(CloseReason)
    assert all(CLOSE_REASON_TEXT[r] for r in CloseReason if r is not CloseReason.filled)
