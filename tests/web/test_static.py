"""The built page as served by `abyssal serve`: content types, caching, SPA fallback, no escapes."""

from __future__ import annotations

import gzip
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.harness import Server

from abyssal.gateway.web import LANDING, resolve

pytestmark = pytest.mark.slow
DIST = Path(__file__).resolve().parents[2] / "web" / "dist"


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_resolve_maps_routes_assets_and_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "assets" / "app-1a2b.js").write_text("x")
    assert resolve(tmp_path, "/") == (tmp_path / "index.html", False)
    assert resolve(tmp_path, "/assets/app-1a2b.js") == ((tmp_path / "assets" / "app-1a2b.js").resolve(), True)
    assert resolve(tmp_path, "/keys") == (tmp_path / "index.html", False)  # a page route
    assert resolve(tmp_path, "/assets/missing.js") is None
    assert resolve(tmp_path, "/../../etc/passwd") is None


def test_served_build(web_server: Server) -> None:
    if not (DIST / "index.html").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("web/dist is missing under CI=true: (cd web && npm ci && npm run build)")
        pytest.skip("the trading page is not built: (cd web && npm ci && npm run build)")
    status, headers, body = get(web_server.url + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-cache" and b'<div id="root">' in body
    assert "default-src 'self'" in headers["content-security-policy"]
    asset = next((DIST / "assets").glob("index-*.js")).name
    status, headers, body = get(f"{web_server.url}/assets/{asset}", **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == (DIST / "assets" / asset).read_bytes()
    status, _, body = get(web_server.url + "/keys")
    assert status == 200 and b'<div id="root">' in body  # SPA fallback
    status, _, _ = get(web_server.url + "/assets/nope.js")
    assert status == 404


def test_placeholder_without_a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABYSSAL_WEB_DIR", str(tmp_path / "no-build"))
    server = Server(tmp_path / "data")
    server.start()
    try:
        status, _, body = get(server.url + "/")
        assert status == 200 and body == LANDING and b"npm run build" in body
        assert get(server.url + "/keys")[0] == 404
    finally:
        server.stop()
