"""deploy/nginx/abyssal.conf before a real server, on loopback: TLS, WebSocket upgrade, limits, client IP.

Runs Debian's nginx. Under CI=true a missing nginx is installed with apt-get (never skipped); on a
developer machine without nginx the module is skipped. 127.0.0.2 plays a trusted load balancer,
127.0.0.1 and 127.0.0.3 plain clients (the whole 127/8 reaches the loopback interface).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness import Server, free_port
from tests.ops.tls import make_certificates
from websockets.sync.client import connect

from abyssal.gateway.auth import sign

pytestmark = pytest.mark.slow

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "abyssal.conf"
START_TIMEOUT_S = 15.0
INSTALL_TIMEOUT_S = 900
BALANCER = "127.0.0.2"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if found:
        return found
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("nginx is not installed (CI installs it: apt-get install -y nginx)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=INSTALL_TIMEOUT_S)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "nginx"], check=True, env=env, timeout=INSTALL_TIMEOUT_S
    )
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(found), "apt-get installed nginx"
    return found


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx/abyssal.conf changed: {old!r} not found exactly once"
    return text.replace(old, new)


@dataclass
class Edge:
    server: Server
    https: str
    http: str
    ca: Path
    workdir: Path

    def client(self, local_address: str = "127.0.0.1") -> httpx.Client:
        transport = httpx.HTTPTransport(
            verify=ssl.create_default_context(cafile=str(self.ca)), local_address=local_address
        )
        return httpx.Client(base_url=self.https, transport=transport, timeout=10)


def _write_config(work: Path, upstream_port: int, http_port: int, https_port: int) -> Path:
    ca, cert, key = make_certificates(work)
    site = CONF.read_text()
    site = _replace_once(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")
    site = _replace_once(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace_once(site, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = _replace_once(site, "/etc/nginx/tls/abyssal.crt", str(cert))
    site = _replace_once(site, "/etc/nginx/tls/abyssal.key", str(key))
    site = _replace_once(
        site,
        "set_real_ip_from 10.0.0.0/8;",
        f"set_real_ip_from 10.0.0.0/8;\n    set_real_ip_from {BALANCER};",
    )
    (work / "abyssal.conf").write_text(site)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / d).mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = (
        f"{user}worker_processes 1;\nerror_log {work}/error.log warn;\npid {work}/nginx.pid;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log {work}/access.log;\n  client_body_temp_path {work}/body;\n"
        f"  proxy_temp_path {work}/proxy;\n  fastcgi_temp_path {work}/fastcgi;\n"
        f"  uwsgi_temp_path {work}/uwsgi;\n"
        f"  scgi_temp_path {work}/scgi;\n  include {work}/abyssal.conf;\n}}\n"
    )
    (work / "nginx.conf").write_text(main)
    return ca


def _wait_listening(port: int, proc: subprocess.Popen[bytes], work: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {(work / 'error.log').read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    binary = nginx_binary()
    work = tmp_path_factory.mktemp("nginx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABYSSAL_LOG_LEVEL", "debug")
        mp.setenv("ABYSSAL_LOG_FORMAT", "json")
        server = Server(tmp_path_factory.mktemp("edge") / "data")
        server.start()
    http_port, https_port = free_port(), free_port()
    ca = _write_config(work, server.port, http_port, https_port)
    conf = ["-p", str(work), "-c", str(work / "nginx.conf")]
    checked = subprocess.run([binary, "-t", *conf], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([binary, *conf, "-g", "daemon off;"])
    try:
        _wait_listening(https_port, proc, work)
        yield Edge(server, f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", ca, work)
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.stop()


def _signed(key: dict[str, Any], method: str, nonce: int, **params: str) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode({"nonce": str(nonce), **params}).encode()
    signature = sign(key["api_secret"], f"/0/private/{method}", str(nonce), body)
    return body, {
        "API-Key": key["api_key"],
        "API-Sign": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_tls_terminates_and_signed_calls_pass_through_unchanged(edge: Edge) -> None:
    key = edge.server.account("edge-trader", USD="100000")
    with edge.client() as c:
        time_reply = c.get("/0/public/Time")
        assert time_reply.status_code == 200 and time_reply.json()["error"] == []
        assert time_reply.headers["strict-transport-security"].startswith("max-age=")
        body, headers = _signed(
            key,
            "AddOrder",
            time.time_ns() // 1000,
            pair="XBTUSD",
            type="buy",
            ordertype="limit",
            price="100.0",
            volume="0.01",
        )
        reply = c.post("/0/private/AddOrder", content=body, headers=headers).json()
        assert reply["error"] == [] and len(reply["result"]["txid"]) == 1
        assert c.get("/health/ready").json()["status"] == "ok"


def test_plain_http_is_redirected_to_https(edge: Edge) -> None:
    r = httpx.get(edge.http + "/0/public/Time", follow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["location"].startswith("https://")


def test_oversized_bodies_and_operator_endpoints_stop_at_the_edge(edge: Edge) -> None:
    with edge.client() as c:
        assert c.post("/0/private/AddOrder", content=b"x" * (65 * 1024)).status_code == 413
        assert c.get("/admin/status").status_code == 403
        assert c.get("/metrics").status_code == 403


def test_websocket_upgrade_reaches_the_v2_feed(edge: Edge) -> None:
    context = ssl.create_default_context(cafile=str(edge.ca))
    url = edge.https.replace("https://", "wss://") + "/v2"
    with connect(url, ssl=context, open_timeout=10) as ws:
        status = json.loads(ws.recv(timeout=10))
        assert status["channel"] == "status", status
        ws.send(json.dumps({"method": "ping", "req_id": 7}))
        for _ in range(5):
            reply = json.loads(ws.recv(timeout=10))
            if reply.get("method") == "pong":
                assert reply["req_id"] == 7
                break
        else:
            raise AssertionError("no pong through the proxy")


def test_the_server_sees_the_real_client_address(edge: Edge) -> None:
    spoofed, forwarded = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331b7ad6b7169203331"
    with edge.client("127.0.0.1") as direct:  # a client: its X-Forwarded-For is not believed
        direct.get(
            "/0/public/Time",
            headers={"X-Forwarded-For": "198.51.100.7", "traceparent": f"00-{spoofed}-00f067aa0ba902b7-01"},
        )
    with edge.client(BALANCER) as balancer:  # the trusted balancer: its header names the client
        balancer.get(
            "/0/public/Time",
            headers={"X-Forwarded-For": "203.0.113.9", "traceparent": f"00-{forwarded}-00f067aa0ba902b7-01"},
        )
    deadline = time.monotonic() + 5
    seen: dict[str, str] = {}
    while time.monotonic() < deadline and len(seen) < 2:
        for line in edge.server.log().splitlines():
            if line.startswith("{") and '"http_request"' in line:
                record = json.loads(line)
                if record.get("trace_id") in (spoofed, forwarded):
                    seen[record["trace_id"]] = record["client_ip"]
        time.sleep(0.05)
    assert seen == {spoofed: "127.0.0.1", forwarded: "203.0.113.9"}


def test_rate_limit_answers_429_per_client(edge: Edge) -> None:
    statuses = []
    with edge.client("127.0.0.3") as c:
        for _ in range(120):
            statuses.append(c.get("/0/public/Time").status_code)
    assert statuses.count(200) >= 40, "the burst passes"
    assert statuses.count(429) > 0, "beyond the burst, 429"
    with edge.client("127.0.0.1") as other:
        assert other.get("/0/public/Time").status_code == 200, "another client is not limited"
