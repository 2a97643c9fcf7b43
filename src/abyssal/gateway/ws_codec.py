"""WebSocket v2 text: exact JSON numbers, RFC 3339 times, request decoding and reply envelopes.

Kraken's v2 numbers are JSON numbers written with the pair's precision and trailing zeros
(``"qty":0.01100000``). A binary float cannot carry that (nor can ``Decimal`` through msgspec,
which writes ``0E-8``), so every number leaves as ``msgspec.Raw`` text built from integers in
their unit (``num``) or from a Decimal with ``format(d, "f")`` (``dec``). Incoming floats are
decoded straight to ``Decimal`` from their text, never through a binary float.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from abyssal.core.instruments import format_fixed

Json = dict[str, Any]

NS_PER_S: Final = 1_000_000_000
REQ_ID_MAX: Final = 2**63 - 1

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(float_hook=Decimal)


class FrameError(Exception):
    """An incoming frame that is not a JSON object: answered once, the connection lives on."""


def num(value: int, decimals: int) -> msgspec.Raw:
    """An integer in units of ``10**-decimals`` as a JSON number with exactly that many decimals."""
    assert decimals >= 0
    return msgspec.Raw(format_fixed(value, decimals).encode())


def dec(value: Decimal) -> msgspec.Raw:
    """A finite Decimal as a plain JSON number (``format "f"`` keeps its digits, never ``1E-8``)."""
    assert value.is_finite(), "only finite numbers go on the wire"
    return msgspec.Raw(format(value, "f").encode())


def utc_text(time_ns: int, decimals: int = 6) -> str:
    """RFC 3339 UTC, truncated to ``decimals`` fraction digits (6 for trades, 9 for level3)."""
    assert 0 <= decimals <= 9
    seconds, fraction_ns = divmod(time_ns, NS_PER_S)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        text += "." + str(fraction_ns).rjust(9, "0")[:decimals]
    return text + "Z"


def encode(message: object) -> bytes:
    return _encoder.encode(message)


def decode_request(data: str | bytes) -> Json:
    """A request object, or ``FrameError`` (malformed JSON, a non-object, runaway nesting)."""
    try:
        value = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise FrameError("Malformed request") from None
    if not isinstance(value, dict):
        raise FrameError("Malformed request")
    return value


def req_id_of(request: Json) -> int | None:
    """The request's ``req_id`` when it is a usable integer (echoed in every reply)."""
    value = request.get("req_id")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= REQ_ID_MAX:
        return value
    return None


class Reply:
    """One request's reply envelope: method, req_id and the time the request arrived."""

    __slots__ = ("method", "req_id", "time_in_ns")

    def __init__(self, method: str, req_id: int | None, time_in_ns: int) -> None:
        self.method = method
        self.req_id = req_id
        self.time_in_ns = time_in_ns

    def _head(self) -> Json:
        head: Json = {"method": self.method} if self.method else {}
        if self.req_id is not None:
            head["req_id"] = self.req_id
        return head

    def _times(self, body: Json) -> bytes:
        body["time_in"] = utc_text(self.time_in_ns)
        body["time_out"] = utc_text(time.time_ns())
        return encode(body)

    def ok(self, result: object | None = None, **top: object) -> bytes:
        """``success: true``; ``result`` when given, extra top-level fields (batch_cancel's count)."""
        body = self._head()
        if result is not None:
            body["result"] = result
        body.update(top)
        body["success"] = True
        return self._times(body)

    def error(self, text: str, symbol: str | None = None) -> bytes:
        """``success: false`` with ``error`` as a string (an array only on REST)."""
        body: Json = {"error": text, **self._head(), "success": False}
        if symbol is not None:
            body["symbol"] = symbol
        return self._times(body)

    def pong(self) -> bytes:
        body: Json = {"method": "pong"}
        if self.req_id is not None:
            body["req_id"] = self.req_id
        return self._times(body)


def channel_frame(channel: str, kind: str, data: object, **extra: object) -> bytes:
    """A data frame ``{"channel", "type", "data", ...}`` (private channels add ``sequence``)."""
    body: Json = {"channel": channel, "type": kind, "data": data}
    body.update(extra)
    return encode(body)


HEARTBEAT: Final = encode({"channel": "heartbeat"})
