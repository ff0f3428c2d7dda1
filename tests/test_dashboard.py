"""The Grafana dashboard: generated from the catalog (grafana/veza-synthetics.json is current), and every panel's
query answered with data by the sandbox's real Prometheus while serve runs."""
import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from veza_synthetics import catalog, dashboard
from veza_synthetics.profile import load
from veza_synthetics.sandbox.alerting import WebhookReceiver

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "grafana" / "veza-synthetics.json"
# What Grafana puts in a query before Prometheus sees it: every location, a rate window of a few scrapes
GRAFANA = {"$location": ".*", "$__rate_interval": "1m"}


def _expressions(board: dict) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])]


def test_the_shipped_dashboard_is_the_catalogs():
    assert SHIPPED.read_text() == dashboard.render(catalog.load()), "regenerate: veza-synth dashboard --out " + str(SHIPPED)


def test_every_panel_has_data_while_serve_runs(sandbox, tmp_path):
    prometheus = load(str(sandbox.profile_path)).prometheus.url
    proc = subprocess.Popen([sys.executable, "-m", "veza_synthetics", "serve", "--env", str(sandbox.profile_path),
                             "--listen", "127.0.0.1:0", "--history", str(tmp_path / "history")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(https?://\S+)/metrics", proc.stdout.readline())[1]
        with WebhookReceiver() as hook:
            sandbox.admin.route_alerts(url.removeprefix("http://"), hook.url)
            deadline = time.monotonic() + 180
            while httpx.get(f"{url}/-/ready", timeout=5).status_code != 200:  # a first round of every check
                assert time.monotonic() < deadline and proc.poll() is None, "no first round"
                time.sleep(1)
            empty = _empty(prometheus, json.loads(dashboard.render(catalog.load())), deadline)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        proc.wait(timeout=120)
    assert not empty, empty


def _empty(prometheus: str, board: dict, deadline: float) -> list[tuple[str, str]]:
    """The panels' queries Prometheus still answers with nothing once it scraped the prober's first round."""
    pending = _expressions(board)
    while pending and time.monotonic() < deadline:
        pending = [(title, expr) for title, expr in pending if not _answered(prometheus, expr)]
        time.sleep(1)
    return pending


def _answered(prometheus: str, expr: str) -> bool:
    for variable, value in GRAFANA.items():
        expr = expr.replace(variable, value)
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return bool(answer["data"]["result"])
