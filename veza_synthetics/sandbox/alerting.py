"""The sandbox's Alertmanager (Debian's prometheus-alertmanager), as a team runs it beside Prometheus: the
sandbox's Prometheus sends it every firing rule, the shipped serve.rules.yml among them, and it routes
them to the webhook a test (or a person trying the prober) names (WebhookReceiver is one): `PUT /alertmanager/webhook` on the
admin port. Until one is named it routes to no receiver. Grouping waits a second, not minutes: the
sandbox measures time to detect, and the rest of the route is a production route's shape."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from ..errors import SetupError
from .processes import LOOPBACK, _stop, free_port, wait_for_port

BINARY = "prometheus-alertmanager"


class Alertmanager:
    def __init__(self, workdir: Path, binary: str):
        self.binary = binary
        self.dir = workdir / "alertmanager"
        self.dir.mkdir()
        self.port = free_port()
        self.config = self.dir / "alertmanager.yml"
        self.webhook = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return shutil.which(BINARY)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _write_config(self) -> None:
        receiver = (f"  - name: webhook\n    webhook_configs:\n      - url: '{self.webhook}'\n        send_resolved: true\n"
                    if self.webhook else "  - name: webhook\n")
        self.config.write_text(
            "route:\n  receiver: webhook\n  group_by: [alertname, symptom, variant, location]\n"
            "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            f"receivers:\n{receiver}")

    def start(self) -> None:
        self._write_config()
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.path={self.dir / 'data'}",
             f"--web.listen-address={LOOPBACK}:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "alertmanager.log", "wb"), start_new_session=True)
        wait_for_port(self.port, 15, self.proc, BINARY)

    def route_to(self, webhook: str) -> None:
        """Send every alert to this webhook from now on (a config reload, as an operator's deploy does)."""
        if not webhook.startswith(("http://", "https://")):
            raise SetupError(f"alertmanager webhook must be an http(s) URL, not {webhook!r}")
        self.webhook = webhook
        self._write_config()
        try:
            httpx.post(f"{self.url}/-/reload", timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            raise SetupError(f"sandbox: Alertmanager did not reload its configuration: {exc}") from None

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class WebhookReceiver:
    """An Alertmanager webhook receiver on a free loopback port: every alert it was sent, as (status,
    labels, annotations), for the tests and benchmarks that measure an alert's way from a fault to a team."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, dict[str, str], dict[str, str]]] = []
        received, arrived = self.alerts, threading.Condition()
        self._arrived = arrived

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with arrived:
                    received.extend((str(a["status"]), dict(a["labels"]), dict(a.get("annotations") or {}))
                                    for a in body.get("alerts", []))
                    arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass
        self.server = ThreadingHTTPServer((LOOPBACK, 0), Receive)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, name="veza-webhook", daemon=True).start()

    def wait(self, status: str, alertname: str, timeout_s: float, **labels: str) -> dict[str, str]:
        """The annotations of the first alert of this status and name whose labels include these; TimeoutError
        past timeout_s."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                found = next((notes for st, lab, notes in self.alerts if st == status and lab.get("alertname") == alertname
                              and all(lab.get(k) == v for k, v in labels.items())), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {status} {alertname} {labels} at the webhook within {timeout_s:g} s "
                                       f"(received: {self.alerts})")
                self._arrived.wait(left)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
