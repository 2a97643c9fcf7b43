"""Static pages served next to the API: the landing page at ``/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abyssal.gateway.app import Send

LANDING = b"""<!doctype html><html><head><meta charset="utf-8"><title>Abyssal</title></head>
<body><h1>Abyssal</h1><p>A Kraken-compatible spot exchange. REST under
<code>/0/public</code> and <code>/0/private</code>; see the README for clients.</p></body></html>"""


async def serve_static(path: str, method: str, send: Send) -> bool:
    """Answer a static path; False when there is none."""
    if path != "/" or method not in ("GET", "HEAD"):
        return False
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")]})  # fmt: skip
    await send({"type": "http.response.body", "body": LANDING})
    return True
