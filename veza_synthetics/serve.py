"""`veza-synth serve`: the catalog's checks in rounds, minutes apart, for Prometheus to scrape.

The nightly finds an outage a night late; a prober that runs the same checks every `serve.interval_s`
(each round taken as a run takes it: holds in the background, a failure confirmed, one session per
account, the run's pace) tells Prometheus within a round, and the Alertmanager a team already has
routes it. `/metrics` holds, per check and location, its outcome (one series per outcome, 1 for the
current), the time of its last round and of its last success, its duration; the rounds and their
duration. Every round joins the run-to-run memory (history.py) as a run does. `/probe?symptom=ID[,ID]`
runs those checks now, for a Prometheus that drives the schedule itself (blackbox_exporter's way),
within the scrape timeout Prometheus sends. `/-/healthy` answers once
serving, `/-/ready` once a first round has finished. Rounds and probes never overlap: one session per
account at a time, as Veza keeps them (B10). SIGTERM lets the round in progress finish (its sessions
logged out), then stops.
"""
from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import history
from .catalog import load as load_catalog
from .errors import SetupError
from .matrix import measure
from .profile import Profile
from .record import SCHEMA_VERSION, CheckRecord

OUTCOMES = ("passed", "degraded", "failed", "no_data", "skipped")
CHECK_LABELS = ["symptom", "variant", "location"]


class Metrics:
    """The prober's figures, in Prometheus's conventions (base units, _seconds, _total)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.outcome = Gauge("veza_synthetic_check_outcome", "1 for the outcome of the check's last round, 0 for the others",
                             [*CHECK_LABELS, "outcome"], registry=r)
        self.last_round = Gauge("veza_synthetic_check_last_round_timestamp_seconds", "When the check last finished a round",
                                CHECK_LABELS, registry=r)
        self.last_success = Gauge("veza_synthetic_check_last_success_timestamp_seconds",
                                  "When the check last passed (or degraded without failing)", CHECK_LABELS, registry=r)
        self.duration = Gauge("veza_synthetic_check_duration_seconds", "How long the check's last round took",
                              CHECK_LABELS, registry=r)
        self.rounds = Counter("veza_synthetic_rounds", "Rounds finished", ["location"], registry=r)
        self.round_errors = Counter("veza_synthetic_round_errors", "Rounds that could not complete (the prober's own "
                                    "fault, never a check's verdict)", ["location"], registry=r)
        self.round_duration = Gauge("veza_synthetic_round_duration_seconds", "How long the last round took",
                                    ["location"], registry=r)

    def record(self, records: list[CheckRecord], location: str, finished: float) -> None:
        for rec in records:
            labels = {"symptom": rec.id, "variant": rec.variant, "location": location}
            for outcome in OUTCOMES:
                self.outcome.labels(**labels, outcome=outcome).set(1 if rec.outcome == outcome else 0)
            self.last_round.labels(**labels).set(finished)
            self.duration.labels(**labels).set(rec.duration_s)
            if rec.outcome in ("passed", "degraded"):
                self.last_success.labels(**labels).set(finished)


class Prober:
    def __init__(self, profile: Profile, symptom_ids: list[str], location: str, history_dir: Path):
        if profile.serve.interval_s <= 0:
            raise SetupError(f"profile {profile.source}: 'serve.interval_s' must be > 0 (seconds between rounds), "
                             f"not {profile.serve.interval_s!r}")
        self.profile, self.ids, self.location, self.history_dir = profile, symptom_ids, location, history_dir
        self.metrics = Metrics()
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.busy = threading.Lock()  # a round or a probe: never two Targets, two sessions of one account, at once
        self.known = set(load_catalog().symptoms)

    def one_round(self) -> None:
        started, started_at = time.monotonic(), dt.datetime.now(dt.UTC)
        try:
            with self.busy:
                records = measure(self.profile, self.ids)
            self._remember(records, started_at)
        except Exception as exc:  # the prober's own failure: counted and said, the schedule goes on
            self.metrics.round_errors.labels(self.location).inc()
            print(f"veza-synth serve: a round could not complete: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        self.metrics.record(records, self.location, time.time())
        self.metrics.rounds.labels(self.location).inc()
        self.metrics.round_duration.labels(self.location).set(round(time.monotonic() - started, 3))
        self.ready.set()

    def _remember(self, records: list[CheckRecord], started_at: dt.datetime) -> None:
        """The round into the run-to-run memory of this env and location, its trends computed as a run's are."""
        p = self.profile
        run = {"schema_version": SCHEMA_VERSION, "env": p.name, "location": self.location, "mode": "serve",
               "started_at": started_at.isoformat(), "finished_at": dt.datetime.now(dt.UTC).isoformat(),
               "checks": [r.to_json() for r in records]}
        run = history.annotate(run, history.load(self.history_dir, p.name, self.location), p.history)
        history.add(self.history_dir, run, p.history.keep)

    def run(self) -> None:
        """Rounds until stopped; a stop lets the round in progress finish."""
        while not self.stopping.is_set():
            started = time.monotonic()
            self.one_round()
            self.stopping.wait(max(0.0, self.profile.serve.interval_s - (time.monotonic() - started)))


    def probe(self, symptom_ids: list[str], timeout_s: float) -> tuple[int, bytes]:
        """The checks now, in a registry of their own; 503 when a round holds the platform past the timeout,
        504 when the checks outlast it (they go on, each call bounded, and the next round reports them)."""
        deadline = time.monotonic() + timeout_s
        if not self.busy.acquire(timeout=max(0.0, timeout_s)):
            return 503, b"a round is running: try again at the next scrape\n"
        done: dict[str, list[CheckRecord]] = {}

        def run() -> None:
            try:
                done["records"] = measure(self.profile, symptom_ids)
            finally:
                self.busy.release()
        worker = threading.Thread(target=run, name="veza-serve-probe", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if "records" not in done:
            return 504, f"the checks outlasted the scrape timeout ({timeout_s:g} s)\n".encode()
        metrics = Metrics()
        metrics.record(done["records"], self.location, time.time())
        metrics.round_duration.labels(self.location).set(round(time.monotonic() - started, 3))
        return 200, generate_latest(metrics.registry)


PROBE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
DEFAULT_PROBE_TIMEOUT_S = 120.0  # without the header (a person with curl)


def _probe(prober: Prober, query: str, timeout_header: str | None) -> tuple[int, bytes]:
    asked = [s for value in parse_qs(query).get("symptom", []) for s in value.split(",") if s]
    unknown = sorted(set(asked) - prober.known)
    if not asked or unknown:
        return 400, (f"unknown check(s) {', '.join(unknown)}; " if unknown else "name ?symptom=ID[,ID]; ").encode() + \
            f"known: {', '.join(sorted(prober.known))}\n".encode()
    try:
        timeout_s = float(timeout_header or DEFAULT_PROBE_TIMEOUT_S) - 0.5  # time left to answer
    except ValueError:
        return 400, f"{PROBE_TIMEOUT_HEADER} must be seconds\n".encode()
    return prober.probe(asked, timeout_s)


def _handler(prober: Prober) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path, _, query = self.path.partition("?")
            if path == "/probe":
                status, body = _probe(prober, query, self.headers.get(PROBE_TIMEOUT_HEADER))
                self._answer(status, body, CONTENT_TYPE_LATEST if status == 200 else "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._answer(200, generate_latest(prober.metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/-/healthy":
                self._answer(200, b"serving\n")
            elif path == "/-/ready":
                ready = prober.ready.is_set()
                self._answer(200 if ready else 503, b"ready\n" if ready else b"no round finished yet\n")
            else:
                self._answer(404, b"/metrics, /probe?symptom=ID, /-/healthy, /-/ready\n")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            pass  # scrapes are not news
    return Handler


def listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise SetupError(f"'serve.listen' must be HOST:PORT (e.g. 127.0.0.1:9464), not {value!r}")
    return host or "127.0.0.1", int(port)


def serve(profile: Profile, symptom_ids: list[str], location: str, listen: str, history_dir: Path) -> int:
    prober = Prober(profile, symptom_ids, location, history_dir)
    server = ThreadingHTTPServer(listen_address(listen), _handler(prober))
    threading.Thread(target=server.serve_forever, name="veza-serve-http", daemon=True).start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"veza-synth serve: http://{host}:{port}/metrics, a round of {len(symptom_ids)} checks every "
          f"{profile.serve.interval_s:g} s ({profile.name}, {location})", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        prober.stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        prober.run()
    finally:
        server.server_close()  # the listening socket; its daemon thread ends with the process
    return 0
