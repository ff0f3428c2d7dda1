"""When the platform is dead or mad, every check still finishes, fails with the right reason, and never passes.

Real servers on loopback play the broken platform: nothing listening, a port that
accepts and never answers, a server that answers HTML to everything, a TLS endpoint
with a self-signed certificate.
"""
import json
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from veza_synthetics.catalog import load as load_catalog

REPO = Path(__file__).resolve().parents[1]
SECRET = "dead-target-password-4242"
TIMEOUTS = {"connect_s": 0.5, "request_s": 0.5, "stream_read_s": 0.5, "stream_s": 3.0, "ws_s": 0.5}
# Each check runs at most twice (confirmation); the slowest waits a few timeouts per attempt.
RUN_BUDGET_S = 150


class _HtmlHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(2)
        try:
            self.request.recv(65536)
            body = b"<html><body>502 Bad Gateway (nginx)</body></html>"
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    refused = socket.socket()  # bound and never listening: connections are refused, and no other server of the
    refused.bind(("127.0.0.1", 0))  # machine (another worker's sandbox) can be handed its port meanwhile
    refused_port = refused.getsockname()[1]
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)  # the kernel completes handshakes; nobody ever reads or answers
    html = _serve(_Server(("127.0.0.1", 0), _HtmlHandler))
    certs = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=wrong.example",
                    "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem")], check=True, capture_output=True)
    tls = _Server(("127.0.0.1", 0), _HtmlHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    _serve(tls)
    yield {"refused": ("http", refused_port), "blackhole": ("http", blackhole.getsockname()[1]),
           "html": ("http", html.server_address[1]), "tls": ("https", tls.server_address[1])}
    for server in (html, tls):
        server.shutdown()
    refused.close()
    blackhole.close()


def profile_for(tmp_path: Path, scheme: str, port: int, production_pace: bool = False) -> Path:
    """A profile of the dead target: short timeouts and a fast pace, or production's defaults (0.4 requests
    a second, 5 s request timeouts, a 60 s chat hold, 80 sampled requests)."""
    ws_scheme = "wss" if scheme == "https" else "ws"
    base = f"{scheme}://127.0.0.1:{port}"
    timeouts = "\n".join(f"{k} = {v}" for k, v in TIMEOUTS.items())
    fast = f"""[timeouts]
{timeouts}
[holds]
session_s = 0.2
ws_idle_s = 0.5
[sampling]
concurrency = 8
max_rps = 200.0
chat_messages = 5
db_connects = 2
search_calls = 2
"""
    path = tmp_path / "dead.toml"
    path.write_text(f"""name = "dead"
allow = "readonly"
[backend]
url = "{base}"
[chat]
url = "{ws_scheme}://127.0.0.1:{port}/chat"
health_url = "{base}/health"
synthetic_conversation = "veza-synthetics-canary"
[stream]
url = "{base}"
canary_track_id = 1
[postgres]
host = "127.0.0.1"
port = {port}
user = "monitor"
password = "${{VEZA_DEAD_PASSWORD}}"
[redis]
url = "redis://127.0.0.1:{port}/0"
password = "${{VEZA_DEAD_PASSWORD}}"
[prometheus]
url = "{base}"
[accounts]
user_email = "synthetic@veza.local"
user_password = "${{VEZA_DEAD_PASSWORD}}"
""" + ("" if production_pace else fast))
    return path


EXPECTED_WORDS = {"refused": ("unreachable", "could not connect"),
                  "blackhole": ("timeout", "unreachable", "handshake failed", "could not connect"),
                  "html": ("bad response", "not json", "status", "handshake", "decode", "http 200", "could not connect"),
                  "tls": ("tls error", "unreachable", "handshake failed", "could not connect")}


def _run(tmp_path: Path, profile: Path, budget_s: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "veza_synthetics", "run", "--env", str(profile),
                          "--reports-dir", str(tmp_path / "reports")], cwd=REPO, capture_output=True, text=True,
                         timeout=budget_s + 60, env={**__import__("os").environ, "VEZA_DEAD_PASSWORD": SECRET})
    return run, time.monotonic() - started


@pytest.mark.parametrize("kind", ["refused", "blackhole", "html", "tls"])
def test_every_check_fails_in_bounded_time_with_the_reason(servers, tmp_path, kind):
    scheme, port = servers[kind]
    run, elapsed = _run(tmp_path, profile_for(tmp_path, scheme, port), RUN_BUDGET_S)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert elapsed < RUN_BUDGET_S, f"a dead target took {elapsed:.0f} s"
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"] if c["variant"] == "read-only"}
    assert set(by_id) == set(load_catalog().symptoms)  # every check of the catalog, whatever their number
    if kind != "html":  # nothing answers: every check says it could not evaluate, not that a condition was false
        assert [sid for sid, check in by_id.items() if not check["errors"]] == []
    passed = [i for i, c in by_id.items() if c["outcome"] == "passed"]
    assert not passed, f"checks passed against a {kind} target: {passed}"
    for sid, check in by_id.items():
        assert check["outcome"] == "failed", f"{sid}: {check['outcome']}: {check['summary']}"
        assert check["summary"].startswith(sid + ":")
        assert "Traceback" not in check["summary"] and "could not complete" not in check["summary"], check["summary"]
        text = check["summary"].lower()
        assert any(word in text for word in EXPECTED_WORDS[kind]), f"{sid} under {kind}: {check['summary']}"
    if kind in ("refused", "blackhole"):  # a dead target is not hammered: the sample stops once nothing succeeds
        sample = by_id["perf.error_rate"]
        assert sample["measurements"]["sample.requests"] < 80 and sample["measurements"]["sample.abandoned"]
        # stopped early, or not begun: earlier calls found the API not answering (probes/answering.py)
        assert (any(n.startswith("sample stopped early: ") for n in sample["notes"])
                or "not sent: the last 3 exchanges" in sample["summary"]), sample
    assert SECRET not in run.stdout + run.stderr
    for file in (p for p in (tmp_path / "reports" / "latest").rglob("*") if p.is_file()):
        assert SECRET not in file.read_text(errors="replace"), f"{file.name} leaks the password"


# Production's pace (0.4 requests a second, 5 s request timeouts): a dead platform is reported within 30 s, a hung
# one within 60 s. Turns of requests that never reached it are given back, and an endpoint that left three
# exchanges unanswered is not asked again by every call (probes/answering.py).
PRODUCTION_BUDGET_S = {"refused": 30, "blackhole": 60}


@pytest.mark.parametrize("kind", sorted(PRODUCTION_BUDGET_S))
def test_a_dead_or_hung_platform_is_reported_in_time_at_productions_pace(servers, tmp_path, kind):
    scheme, port = servers[kind]
    run, elapsed = _run(tmp_path, profile_for(tmp_path, scheme, port, production_pace=True), PRODUCTION_BUDGET_S[kind])
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert elapsed <= PRODUCTION_BUDGET_S[kind], f"a {kind} platform took {elapsed:.0f} s at production's pace"
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"] if c["variant"] == "read-only"}
    assert set(by_id) == set(load_catalog().symptoms)
    for sid, check in by_id.items():
        assert check["outcome"] == "failed" and check["errors"], f"{sid}: {check['outcome']}: {check['summary']}"
        assert any(word in check["summary"].lower() for word in EXPECTED_WORDS[kind]), check["summary"]
