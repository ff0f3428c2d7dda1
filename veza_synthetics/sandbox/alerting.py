"""The sandbox's Alertmanager (Debian's prometheus-alertmanager), as a team runs it beside Prometheus: the
sandbox's Prometheus sends it every firing rule, the shipped serve.rules.yml among them, and it routes
them to the webhook a test (or a person trying the prober) names: `PUT /alertmanager/webhook` on the
admin port. Until one is named it routes to no receiver. Grouping waits a second, not minutes: the
sandbox measures time to detect, and the rest of the route is a production route's shape."""
from __future__ import annotations

import shutil
import subprocess
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
