"""The prober's HTTP face: /metrics, /probe (blackbox_exporter's way: Prometheus drives the schedule, within
the scrape timeout it sends), /report (each check's last round, the same blocks as report.html),
/-/healthy and /-/ready."""
from __future__ import annotations

import datetime as dt
import html
import ipaddress
import ssl
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..outcome import rank
from ..reports.html import STYLE, block
from .prober import Answer, Prober
from .webconfig import WebConfig

PROBE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
DEFAULT_PROBE_TIMEOUT_S = 120.0  # without the header (a person with curl)
TEXT = "text/plain; charset=utf-8"
CLIENT_TIMEOUT_S = 30.0
ROUTES = b"/metrics, /probe?symptom=ID[,ID] or ?module=CATEGORY, /report, /-/healthy, /-/ready\n"


def probe(prober: Prober, query: str, timeout_header: str | None) -> Answer:
    params, catalog = parse_qs(query), prober.catalog
    asked = [s for value in params.get("symptom", []) for s in value.split(",") if s]
    modules = [m for value in params.get("module", []) for m in value.split(",") if m]
    categories = sorted({s.category for s in catalog.symptoms.values()})
    unknown = sorted(set(asked) - set(catalog.symptoms)) + sorted(set(modules) - set(categories))
    if unknown or not (asked or modules):
        head = (f"unknown check(s) or module(s) {', '.join(unknown)}; " if unknown
                else "name ?symptom=ID[,ID] or ?module=CATEGORY; ")
        return Answer(400, (head + f"known: {', '.join(sorted(catalog.symptoms))}; modules: {', '.join(categories)}\n").encode())
    asked += [s.id for s in catalog.symptoms.values() if s.category in modules]
    try:
        timeout_s = float(timeout_header or DEFAULT_PROBE_TIMEOUT_S) - 0.5  # time left to answer
    except ValueError:
        return Answer(400, f"{PROBE_TIMEOUT_HEADER} must be seconds\n".encode())
    return prober.probe(sorted(set(asked)), timeout_s)


def report(prober: Prober) -> bytes:
    """Every check's last round, the worst first: a self-contained page (secrets redacted by block())."""
    records = sorted(prober.latest.values(), key=lambda r: (-rank(r.outcome), r.id, r.variant))
    rows = "".join(f"<tr><td>{html.escape(r.id)}</td><td>{html.escape(r.variant)}</td><td>{html.escape(r.outcome)}</td>"
                   f"<td>{html.escape(r.finished_at)}</td></tr>" for r in records)
    p = prober.profile
    head = (f"<h1>veza-synth serve: {html.escape(p.name)} from {html.escape(prober.location)}</h1>"
            f"<p>Each check's last round, at {html.escape(dt.datetime.now(dt.UTC).isoformat(timespec='seconds'))}. "
            "The same verdicts, evidence and remedies as a run's report.html.</p>"
            f"<table class='veza'><tr><th>check</th><th>variant</th><th>outcome</th><th>finished</th></tr>{rows}</table>")
    by_cause: dict[str, list[str]] = {}
    for sid, why in sorted(prober.blocked.items()):
        by_cause.setdefault(why, []).append(sid)
    causes = "".join(f"<p><b>ROOT CAUSE {html.escape(why)}: {len(ids)} check(s) blocked: {html.escape(', '.join(ids))}</b></p>"
                     for why, ids in sorted(by_cause.items(), key=lambda item: -len(item[1])))
    body = causes + ("".join(block(r.to_json(), prober.redactor) for r in records) or "<p>No round has finished yet.</p>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>veza-synth serve: {html.escape(p.name)}</title>{STYLE}</head><body>{head}{body}</body></html>")
    return prober.redactor.text(page).encode()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


Reply = tuple[int, bytes, str, dict[str, str]]  # status, body, Content-Type, other headers


def _report_route(prober: Prober, client: str) -> Reply:
    mode = prober.profile.serve.report
    if mode == "off":
        return 404, b"/report is off (serve.report = \"off\")\n", TEXT, {}
    if mode == "loopback" and not _is_loopback(client):
        return 403, b"/report answers local clients only (serve.report = \"loopback\")\n", TEXT, {}
    return 200, report(prober), "text/html; charset=utf-8", {}


def _probe_route(prober: Prober, query: str, timeout_header: str | None) -> Reply:
    answer = probe(prober, query, timeout_header)
    return answer.status, answer.body, CONTENT_TYPE_LATEST if answer.status == 200 else TEXT, answer.headers


def _ready_route(prober: Prober) -> Reply:
    ready = prober.ready.is_set()
    return (200, b"ready\n", TEXT, {}) if ready else (503, b"no round finished yet\n", TEXT, {})


def _not_found() -> Reply:
    return 404, ROUTES, TEXT, {}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that failed its TLS handshake or went away is not news; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def handler(prober: Prober, web: WebConfig) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT_S  # a client that never finishes its request does not hold a thread forever

        def setup(self) -> None:
            if web.tls is not None:  # the handshake in this connection's own thread, bounded by the timeout
                self.request.settimeout(CLIENT_TIMEOUT_S)
                self.request = web.tls.wrap_socket(self.request, server_side=True)
            super().setup()

        def do_GET(self) -> None:
            if not web.allows(self.headers.get("Authorization")):
                self._send(401, b"unauthorized\n", TEXT, {"WWW-Authenticate": 'Basic realm="veza-synth serve"'})
                return
            path, _, query = self.path.partition("?")
            routes: dict[str, Callable[[], Reply]] = {
                "/metrics": lambda: (200, generate_latest(prober.metrics.registry), CONTENT_TYPE_LATEST, {}),
                "/probe": lambda: _probe_route(prober, query, self.headers.get(PROBE_TIMEOUT_HEADER)),
                "/report": lambda: _report_route(prober, self.client_address[0]),
                "/-/healthy": lambda: (200, b"serving\n", TEXT, {}),
                "/-/ready": lambda: _ready_route(prober),
            }
            self._send(*routes.get(path, _not_found)())

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes are not news
    return Handler
