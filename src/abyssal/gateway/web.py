"""Static pages served next to the API: the built trading page (web/dist) at ``/``, else a placeholder.

Hashed assets under ``/assets/`` are cached for a year (their names change with their content);
``index.html`` is revalidated on every load. A path without a file extension that names no file is a
route of the single-page app and gets ``index.html``. Text files are gzipped once and kept in memory.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abyssal.gateway.app import Scope, Send

WEB_DIR_ENV = "ABYSSAL_WEB_DIR"
FILE_BYTES_MAX = 8 * 1024 * 1024  # a built asset larger than this is not served from memory
FILES_CACHED_MAX = 512
GZIP_BYTES_MIN = 1024
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".mjs": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".json": b"application/json",
    ".map": b"application/json",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".webp": b"image/webp",
    ".woff2": b"font/woff2",
    ".txt": b"text/plain; charset=utf-8",
    ".webmanifest": b"application/manifest+json",
}
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        b"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    ),
]

LANDING = b"""<!doctype html><html><head><meta charset="utf-8"><title>Abyssal</title></head>
<body><h1>Abyssal</h1><p>A Kraken-compatible spot exchange. REST under
<code>/0/public</code> and <code>/0/private</code>; see the README for clients.</p>
<p>The trading page is not built. Build it with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>
(Node.js 20.19 or later), or start the server with <code>./scripts/serve</code>, which builds it
when Node.js is installed; then reload this page.</p></body></html>"""


@dataclass(frozen=True, slots=True)
class _File:
    mtime_ns: int
    content_type: bytes
    body: bytes
    gzipped: bytes | None


def web_dir() -> Path:
    """ABYSSAL_WEB_DIR, else web/dist of the source checkout this package runs from."""
    env = os.environ.get(WEB_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "web" / "dist"


_cache: dict[Path, _File] = {}


def _load(path: Path) -> _File | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached.mtime_ns == stat.st_mtime_ns:
        return cached
    if stat.st_size > FILE_BYTES_MAX:
        return None
    body = path.read_bytes()
    content_type = CONTENT_TYPES.get(path.suffix, b"application/octet-stream")
    compressible = content_type.startswith((b"text/", b"application/json", b"image/svg"))
    gzipped = gzip.compress(body, 6, mtime=0) if compressible and len(body) >= GZIP_BYTES_MIN else None
    entry = _File(stat.st_mtime_ns, content_type, body, gzipped)
    if len(_cache) >= FILES_CACHED_MAX:
        _cache.clear()
    _cache[path] = entry
    return entry


def resolve(root: Path, path: str) -> tuple[Path, bool] | None:
    """(file, is_hashed_asset) for a URL path under ``root``; the SPA fallback; None for a miss."""
    relative = path.lstrip("/")
    if relative in ("", "index.html"):
        return root / "index.html", False
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        return None  # ../ out of the web root
    if candidate.is_file():
        return candidate, relative.startswith("assets/")
    if "." in relative.rsplit("/", 1)[-1]:
        return None  # a missing file, not a page route
    return root / "index.html", False


def _accepts_gzip(scope: Scope | None) -> bool:
    if scope is None:
        return False
    return any(k == b"accept-encoding" and b"gzip" in v for k, v in scope["headers"])


async def serve_static(path: str, method: str, send: Send, scope: Scope | None = None) -> bool:
    """Answer a static path; False when there is none."""
    if method not in ("GET", "HEAD"):
        return False
    root = web_dir()
    if not (root / "index.html").is_file():
        if path not in ("/", "/index.html"):
            return False
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", REVALIDATE)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else LANDING})
        return True
    found = resolve(root, path)
    entry = None if found is None else _load(found[0])
    if found is None or entry is None:
        return False
    headers = [
        (b"content-type", entry.content_type),
        (b"cache-control", IMMUTABLE if found[1] else REVALIDATE),
        (b"vary", b"accept-encoding"),
        *SECURITY_HEADERS,
    ]
    body = entry.body
    if entry.gzipped is not None and _accepts_gzip(scope):
        body = entry.gzipped
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
    return True
