"""`veza-synth serve`: the catalog's checks in rounds, minutes apart, for Prometheus to scrape.

The nightly finds an outage a night late; a prober that runs the same checks on a schedule (schedule.py:
health and performance every minute, the hard failures' checks every 2, the rest every 15 by default, a failed
check again 30 s later) tells Prometheus within a round,
and the Alertmanager a team already has routes it (serve.rules.yml). prober.py takes the rounds on one
client within its budgets, metrics.py is /metrics, web.py the HTTP routes, webconfig.py their TLS and basic
auth. SIGTERM halts the pace: the round in progress ends at its next request (not reported), the prober's
sessions are logged out, then it stops.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from ..catalog import Catalog
from ..errors import SetupError
from ..profile import Profile
from ..quarantine import Entry
from ..reports.ecs import EcsLog
from .prober import Prober
from .web import Server, handler
from .webconfig import WebConfig

STOP_GRACE_S = 300.0  # the longest a stop waits for a /probe in progress (its own calls are each bounded)


def stop_on_signal(prober: Prober) -> None:
    """SIGTERM and SIGINT stop the prober at once, from a thread of their own woken by the signal's byte
    (signal.set_wakeup_fd): the kernel may hand a signal to any thread, native ones included, and Python runs its
    handler only when the main thread next runs code, which a wait of the schedule or the budget would delay by a
    minute or more. The Python handler itself does nothing: stopping from inside an interrupted wait could take a
    lock the main thread holds."""
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, frame: None)

    def stop_when_woken() -> None:
        while os.read(woken, 1)[0] not in (signal.SIGTERM, signal.SIGINT):
            continue  # another signal's byte
        prober.stop()
    threading.Thread(target=stop_when_woken, name="veza-serve-signals", daemon=True).start()


def listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise SetupError(f"'serve.listen' must be HOST:PORT (e.g. 127.0.0.1:9464), not {value!r}")
    return host or "127.0.0.1", int(port)


def plan(prober: Prober) -> str:
    groups = [f"{len(ids)} every {interval:g} s" for interval, ids in prober.schedule.by_interval().items()]
    return f"checks: {', '.join(groups)}"


def serve(profile: Profile, catalog: Catalog, symptom_ids: list[str], location: str, listen: str,
          history_dir: Path, web: WebConfig | None = None, quarantined: Mapping[str, Entry] | None = None,
          log_format: str = "text") -> int:
    """`log_format` "ecs": each round's results as ECS lines on stdout (reports/ecs.py), the prober's own lines on
    stderr."""
    web = web or WebConfig()
    ecs_log = EcsLog(sys.stdout, profile.name, location, profile.redactor()) if log_format == "ecs" else None
    prober = Prober(profile, catalog, symptom_ids, location, history_dir, quarantined, ecs_log)
    try:
        server = Server(listen_address(listen), handler(prober, web))
    except OSError as exc:
        raise SetupError(f"'serve.listen' {listen}: cannot listen there ({exc.strerror})") from None
    threading.Thread(target=server.serve_forever, name="veza-serve-http", daemon=True).start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    scheme = "https" if web.tls else "http"
    prober.external_url = prober.external_url or f"{scheme}://{host}:{port}"
    print(f"veza-synth serve: {scheme}://{host}:{port}/metrics ({profile.name}, {location}; {plan(prober)}; "
          f"/report {profile.serve.report})", flush=True, file=sys.stderr if ecs_log else sys.stdout)

    stop_on_signal(prober)
    try:
        prober.run()
        if prober.busy.acquire(timeout=STOP_GRACE_S):  # a /probe in progress finishes
            prober.close()  # then the prober's sessions are logged out
            prober.busy.release()
    finally:
        server.server_close()  # the listening socket; its daemon thread ends with the process
    return 0
