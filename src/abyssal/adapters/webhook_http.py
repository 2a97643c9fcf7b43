"""A minimal HTTP/1.1 POST over asyncio streams (http and https), for webhook deliveries.

No connection reuse and no redirects: one request per connection, ``Connection: close``, the
whole exchange bounded by the caller's timeout. The status code is all a delivery needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

RESPONSE_HEAD_BYTES_MAX = 16 * 1024
_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """Built once (it reads the CA bundle from disk), then shared by every delivery."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


async def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST ``body``; returns the response status. Raises on connection faults and timeouts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported webhook URL {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(
            parts.hostname, port, ssl=_tls_context() if secure else None
        )
        try:
            head = [
                f"POST {target} HTTP/1.1",
                f"Host: {parts.netloc}",
                "Connection: close",
                f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items()),
            ]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
            if len(status_line) > RESPONSE_HEAD_BYTES_MAX:
                raise ValueError("response status line too long")
            fields = status_line.split(b" ", 2)
            return int(fields[1])
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
