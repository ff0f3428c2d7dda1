"""The Grafana dashboard: generated from the catalog (grafana/veza-synthetics.json is current), and every panel's
query answered with data by a real Prometheus scraping serve, and the Pushgateway a run pushed to."""
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from veza_synthetics import catalog, dashboard
from veza_synthetics.reports.pushgateway import push
from veza_synthetics.sandbox.guard import die_with_parent
from veza_synthetics.sandbox.processes import PROBER_JOB, Prometheus, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "grafana" / "veza-synthetics.json"
# What Grafana puts in a query before Prometheus sees it: every location, a rate window of a few scrapes
GRAFANA = {"$location": ".*", "$__rate_interval": "1m"}


def _expressions(board: dict) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])]


def test_the_shipped_dashboard_is_the_catalogs():
    assert SHIPPED.read_text() == dashboard.render(catalog.load()), "regenerate: veza-synth dashboard --out " + str(SHIPPED)


def test_every_panel_has_data_while_serve_runs_and_a_run_pushed(sandbox, tmp_path):
    gateway_binary, prometheus_binary = shutil.which("prometheus-pushgateway"), Prometheus.available()
    assert gateway_binary and prometheus_binary, "make setup installs Prometheus and its Pushgateway"
    gateway_port = free_port()
    gateway = subprocess.Popen([gateway_binary, f"--web.listen-address=127.0.0.1:{gateway_port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    prometheus = Prometheus(tmp_path, prometheus_binary, ["pushgateway"])
    proc = subprocess.Popen([sys.executable, "-m", "veza_synthetics", "serve", "--env", str(sandbox.profile_path),
                             "--listen", "127.0.0.1:0", "--history", str(tmp_path / "history")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=die_with_parent)
    try:
        wait_for_port(gateway_port, 15, gateway, "pushgateway")
        failure = push(f"http://127.0.0.1:{gateway_port}", {"env": "sandbox", "location": "ci", "checks": [
            {"id": "health.services", "variant": "read-only", "outcome": "passed", "duration_s": 1.5, "conditions": []}]})
        assert failure is None, failure
        url = re.search(r"(https?://\S+)/metrics", proc.stdout.readline())[1]
        prometheus.configure("groups: []\n")
        prometheus.start()
        prometheus.set_targets({PROBER_JOB: [int(url.rsplit(":", 1)[1])], "pushgateway": [gateway_port]})
        deadline = time.monotonic() + 180
        while httpx.get(f"{url}/-/ready", timeout=5).status_code != 200:  # a first round of every check
            assert time.monotonic() < deadline and proc.poll() is None, "no first round"
            time.sleep(1)
        empty = _empty(f"http://127.0.0.1:{prometheus.port}", json.loads(dashboard.render(catalog.load())), deadline)
    finally:
        for running in (proc, gateway):
            with contextlib.suppress(ProcessLookupError):
                running.terminate()
            running.wait(timeout=120)
        prometheus.stop()
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
