"""serve at production's pace: time to detect and to recover per category, in real seconds, as a team that
leaves it running against Veza's production server would see them.

The production-server twin with B12's real windows (`sandbox up --time-scale 1`: 3 logins per 15 minutes, 8
refreshes an hour, 30 requests a minute per address), one prober for the whole benchmark with the shipped
defaults (`sampling.max_rps = 0.4`, production's timeouts and holds, a chat heartbeat every 30 s; the
budgets: 1 login per 15 minutes, 5 refreshes an hour, 10 requests a minute; serve's default schedule, a failed
check retried after 30 s; a 10-minute window of samples), the whole way a page takes (serve -> the twin's
Prometheus and serve.rules.yml -> Alertmanager -> a webhook).
One fault per category, one after another: fault on -> firing at the webhook, fault off -> resolved there.
The platform's own count of the prober's logins and of the 429s it answered the prober's address (which must be
0) comes beside; 429s to the twin's other clients are listed apart (HAProxy's health checks, every 5 s from
haproxy.OWN_ADDRESS, meet B12's 500 GETs an hour after 42 minutes: the real server exempts only 127.0.0.1 and ::1).

    .venv/bin/python bench/serve_production.py [--categories health,performance]   (make bench runs it)

It takes tens of minutes per category outside health and performance: it is a benchmark.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from serve import ALERT, metric, serving, until  # noqa: E402

from veza_synthetics.profile import ENV_DIR, SANDBOX_VARIANTS  # noqa: E402
from veza_synthetics.sandbox.alerting import WebhookReceiver  # noqa: E402
from veza_synthetics.sandbox.haproxy import OWN_ADDRESS  # noqa: E402
from veza_synthetics.sandbox.process import SandboxProcess  # noqa: E402
from veza_synthetics.sandbox.processes import LOOPBACK  # noqa: E402
from veza_synthetics.settings import Holds, Sampling, Serve, Timeouts  # noqa: E402

# A fault of each category that applies to the public code's shape, and the check that must fail for it; and two
# degradations: a slower API, a lower bitrate.
DETECTION = {"health": ("infra.redis_down", "health.services"), "performance": ("perf.errors", "perf.error_rate"),
             "auth": ("auth.forbidden", "auth.http_401_403"), "database": ("db.slow_connect", "db.connection_timeout"),
             "websocket": ("ws.drop_connections", "ws.disconnects"), "streaming": ("stream.truncate", "stream.audio_cut"),
             "latency": ("perf.latency", "perf.high_response_time"),
             "quality": ("stream.low_bitrate", "stream.quality_degraded")}
# What the issue promises: a hard failure (refused, a dead stream, a closed chat, connections refused) pages within
# 5 minutes, a degradation (one request in twenty answers 500, 400 ms more per answer, a lower bitrate) within 10.
PROMISE_S = {"health": 300, "performance": 600, "auth": 300, "database": 300, "websocket": 300, "streaming": 300,
             "latency": 600, "quality": 600}
WAIT_S = 3600.0  # the longest a fault waits for its page, or its end for the page to resolve
HEARTBEAT_S = 30.0  # chat.client_heartbeat_s: an application Ping every 30 s keeps nginx's 60 s read timeout away


def production_profile(sandbox: SandboxProcess, agent: str) -> str:
    """The twin's profile at production's pace: the shipped defaults of sampling.max_rps, the timeouts, the holds
    and serve's schedule and budgets (the sandbox profiles compress them 125 times); and the chat heartbeat a team
    behind nginx's 60 s read timeout sets for the public chat, which never pings (C3)."""
    serve = {k: v for k, v in asdict(Serve()).items() if k not in ("listen", "report", "external_url")}
    return tomli_w.dumps({"extends": str(sandbox.profile_path), "allow": "readonly", "tracing": {"user_agent": agent},
                          "sampling": {"max_rps": Sampling().max_rps}, "timeouts": asdict(Timeouts()),
                          "holds": asdict(Holds()), "chat": {"client_heartbeat_s": HEARTBEAT_S}, "serve": serve})


def run(categories: list[str]) -> dict[str, Any]:
    sandbox = SandboxProcess(base_profile=ENV_DIR / SANDBOX_VARIANTS["production-server"], variant="production-server",
                             time_scale=1.0)
    sandbox.start()
    agent = f"veza-synth-bench-production/{uuid.uuid4().hex[:8]}"
    out: dict[str, Any] = {"categories": {}}
    try:
        before = sandbox.admin.writes()
        started = time.monotonic()
        with serving(production_profile(sandbox, agent), "--location", "bench-production") as (_, url), \
                WebhookReceiver() as hook:
            sandbox.admin.route_alerts(url.removeprefix("http://"), hook.url)
            until(lambda: httpx.get(f"{url}/-/ready", timeout=5).status_code == 200, WAIT_S, "a first round")
            out["first_round_s"] = round(time.monotonic() - started, 1)
            for category in categories:
                fault, check = DETECTION[category]
                row: dict[str, Any] = {"fault": fault, "check": check}
                on = time.monotonic()
                try:
                    with sandbox.faults_on([fault]):
                        hook.wait("firing", ALERT, timeout_s=WAIT_S, symptom=check, location="bench-production")
                        row["detect_s"] = round(time.monotonic() - on, 1)
                    off = time.monotonic()
                    hook.wait("resolved", ALERT, timeout_s=WAIT_S, symptom=check, location="bench-production")
                    row["recover_s"] = round(time.monotonic() - off, 1)
                except TimeoutError as exc:
                    row["error"] = str(exc)[:300]
                row["promise_s"] = PROMISE_S.get(category)
                out["categories"][category] = row
                print(json.dumps({category: row}), flush=True)
            last = httpx.get(f"{url}/metrics", timeout=10).text
        after = sandbox.admin.writes()
        out["seconds"] = round(time.monotonic() - started, 1)
        out["prober"] = {name: metric(last, f"veza_synthetic_{name}_total") for name in ("logins", "api_requests", "rounds")}
        refused = {address: n - before["throttled"].get(address, 0) for address, n in after["throttled"].items()}
        out["platform"] = {"logins": sum(after["logins"].values()) - sum(before["logins"].values()),
                           "answered_429": refused.get(LOOPBACK, 0),
                           "answered_429_to_others": {a: n for a, n in refused.items() if a != LOOPBACK and n}}
    finally:
        sandbox.stop()
    return out


def table(r: dict[str, Any]) -> str:
    lines = [f"serve at production's pace (B12's real windows, max_rps 0.4, the shipped budgets and schedule), "
             f"{r['seconds']:g} s; first round {r['first_round_s']:g} s:"]
    for category, row in r["categories"].items():
        promise = f"promise {row['promise_s']} s" if row.get("promise_s") else ""
        lines.append(f"  {category:<12} {row['fault']:<20} " + (f"detect {row['detect_s']:>7} s  recover "
                     f"{row['recover_s']:>7} s  {promise}" if "recover_s" in row else f"ERROR {row.get('error')}"))
    lines.append(f"  the prober: {r['prober']}; the platform counted {r['platform']['logins']} logins and answered "
                 f"{r['platform']['answered_429']} 429s to the prober's address")
    if r["platform"]["answered_429_to_others"]:
        lines.append(f"  429s to the twin's other clients (HAProxy's health checks come from {OWN_ADDRESS}): "
                     f"{r['platform']['answered_429_to_others']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", default=",".join(DETECTION), help="comma-separated (default: all)")
    categories = [c for c in parser.parse_args().categories.split(",") if c]
    unknown = sorted(set(categories) - set(DETECTION))
    if unknown:
        print(f"--categories: unknown {', '.join(unknown)}; known: {', '.join(DETECTION)}", file=sys.stderr)
        return 2
    result = run(categories)
    out = REPO / "bench" / "results" / "serve-production-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    return 0 if all("recover_s" in row for row in result["categories"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
