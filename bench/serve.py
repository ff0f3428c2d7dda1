"""Serve mode's benchmarks: time to detect and to recover per category, through the whole path a team runs
(veza-synth serve -> the sandbox's Prometheus and the shipped serve.rules.yml -> its Alertmanager -> a
webhook), the soak's memory and open files at its start and end, and what a round costs the platform
(the README's figures per hour).

    .venv/bin/python bench/serve.py          (make bench runs it after bench/run.py)
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veza_synthetics.profile import ENV_DIR  # noqa: E402
from veza_synthetics.sandbox.alerting import WebhookReceiver  # noqa: E402
from veza_synthetics.sandbox.process import SandboxProcess  # noqa: E402

# A fault of each category and the check that must fail for it, read-only (chat messages are writes: the
# websocket category is proven by the idle connection the chat server drops).
DETECTION = {"auth": ("auth.forbidden", "auth.http_401_403"), "database": ("db.slow_queries", "db.degraded_performance"),
             "websocket": ("ws.drop_connections", "ws.disconnects"), "streaming": ("stream.truncate", "stream.audio_cut"),
             "performance": ("perf.errors", "perf.error_rate"), "health": ("infra.redis_down", "health.services")}
INTERVAL_S = 5.0   # the bench's round: the budget scales with it (interval + confirmation + for:)
SOAK_S = 300.0
ALERT = "VezaSyntheticCheckFailingForRounds"
T = TypeVar("T")


def until(ask: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            found = ask()
            if found:
                return found
        time.sleep(0.1)
    raise TimeoutError(f"not within {timeout_s:g} s: {what}")


def metric(text: str, name: str, **labels: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()))


@contextlib.contextmanager
def serving(profile_text: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    folder = Path(tempfile.mkdtemp(prefix="veza-bench-serve-"))
    (folder / "serve.toml").write_text(profile_text)
    proc = subprocess.Popen([sys.executable, "-m", "veza_synthetics", "serve", "--env", str(folder / "serve.toml"),
                             "--listen", "127.0.0.1:0", "--history", str(folder / "history"), *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        found = re.search(r"(http://\S+)/metrics", proc.stdout.readline() if proc.stdout else "")
        if not found:
            raise RuntimeError("veza-synth serve did not start")
        yield proc, found[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)  # its profile and history are the benchmark's own


def time_to_detect(sandbox: SandboxProcess) -> dict[str, Any]:
    """Per category: fault on -> the alert at the webhook, fault off -> resolved there."""
    out: dict[str, Any] = {}
    for category, (fault, check) in DETECTION.items():
        location = f"bench-{category}"
        text = (f'extends = "{sandbox.profile_path}"\nallow = "readonly"\n[serve]\ninterval_s = {INTERVAL_S}\n'
                f'intervals = {{health = {INTERVAL_S}}}\n')
        with serving(text, "--symptoms", check, "--location", location) as (_, url), WebhookReceiver() as hook:
            sandbox.admin.route_alerts(url.removeprefix("http://"), hook.url)
            until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 120, "a first round")
            round_s = metric(httpx.get(f"{url}/metrics", timeout=5).text, "veza_synthetic_round_duration_seconds")
            on = time.monotonic()
            with sandbox.faults_on([fault]):
                hook.wait("firing", ALERT, timeout_s=300, symptom=check, location=location)
                detect_s = time.monotonic() - on
                failing_round_s = metric(httpx.get(f"{url}/metrics", timeout=5).text,
                                         "veza_synthetic_round_duration_seconds")
            off = time.monotonic()
            hook.wait("resolved", ALERT, timeout_s=300, symptom=check, location=location)
            recover_s = time.monotonic() - off
        # two failed rounds (each an interval and the round, its failure confirmed in it), a scrape, a rule
        # evaluation, Alertmanager's group wait
        budget = 2 * (INTERVAL_S + failing_round_s) + 3
        out[category] = {"fault": fault, "check": check, "detect_s": round(detect_s, 1), "recover_s": round(recover_s, 1),
                         "healthy_round_s": round(round_s, 2), "failing_round_s": round(failing_round_s, 2),
                         "budget_s": round(budget, 1)}
    return out


def _process(pid: int) -> dict[str, int]:
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    return {"rss_mib": rss_kb // 1024, "open_files": len(list(Path(f"/proc/{pid}/fd").iterdir()))}


def soak(sandbox: SandboxProcess) -> dict[str, Any]:
    """Every check read-only (health every 2 s, the rest every 20 s) for SOAK_S: the prober's memory and
    open files after its first round and at the end, and the writes and open sessions the sandbox counted."""
    agent = f"veza-synth-bench/{uuid.uuid4().hex[:8]}"
    text = (f'extends = "{sandbox.profile_path}"\nallow = "readonly"\n[tracing]\nuser_agent = "{agent}"\n'
            '[serve]\ninterval_s = 20\nintervals = {health = 2}\n')
    before = sandbox.admin.writes()
    with serving(text, "--location", "bench-soak") as (proc, url):
        until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 180, "a first round")
        start = _process(proc.pid)
        time.sleep(SOAK_S)
        last = httpx.get(f"{url}/metrics", timeout=5).text
        end = _process(proc.pid)
    writes = sandbox.admin.writes(agent)
    return {"seconds": SOAK_S, "rounds": metric(last, "veza_synthetic_rounds_total"),
            "round_errors": metric(last, "veza_synthetic_round_errors_total"), "start": start, "end": end,
            "writes": {"http": writes["http"], "sql": len(writes["sql"]) - len(before["sql"]),
                       "chat": writes["chat"] != before["chat"]},
            "open_sessions_after_stop": sandbox.admin.open_sessions(agent)}


LOAD = ("logins", "api_requests", "chat_messages")


def _load_of_rounds(sandbox: SandboxProcess, serve_section: str, rounds: int, *args: str) -> dict[str, float]:
    """What `rounds` rounds of this schedule cost, from the prober's counters, per round."""
    text = f'extends = "{sandbox.profile_path}"\nallow = "readonly"\n[serve]\n{serve_section}'
    with serving(text, *args) as (_, url):
        done = until(lambda: (lambda t: t if metric(t, "veza_synthetic_rounds_total") >= rounds else None)(
            httpx.get(f"{url}/metrics", timeout=5).text), 300, f"{rounds} rounds")
    counted = metric(done, "veza_synthetic_rounds_total")
    return {name: round(metric(done, f"veza_synthetic_{name}_total") / counted, 1) for name in LOAD}


def cost(sandbox: SandboxProcess) -> dict[str, Any]:
    """A round of every check (one round an hour: nothing else due) and a health round, read-only; the
    default schedule is 4 of the first and 56 of the second an hour."""
    full = _load_of_rounds(sandbox, "interval_s = 3600\nintervals = {health = 3600}\n", 1)
    health = _load_of_rounds(sandbox, "interval_s = 1\nintervals = {health = 1}\n", 10,
                             "--symptoms", "health.services,health.monitoring")
    return {"full_round": full, "health_round": health,
            "default_schedule_per_hour": {name: round(4 * full[name] + 56 * health[name]) for name in LOAD}}


def run(sandbox: SandboxProcess) -> dict[str, Any]:
    return {"time_to_detect": time_to_detect(sandbox), "soak": soak(sandbox), "cost": cost(sandbox)}


def table(r: dict[str, Any]) -> str:
    lines = [f"serve: time to detect / to recover, round every {INTERVAL_S:g} s (fault on -> alert at the webhook "
             "through Prometheus and Alertmanager; budget: 2 x (interval + round) + 3 s):"]
    lines += [f"  {k:<12} {v['fault']:<18} detect {v['detect_s']:>6} s  recover {v['recover_s']:>6} s  "
              f"budget {v['budget_s']:>6} s" for k, v in r["time_to_detect"].items()]
    s = r["soak"]
    lines += [f"serve soak {s['seconds']:g} s, {s['rounds']:g} rounds ({s['round_errors']:g} could not complete): "
              f"memory {s['start']['rss_mib']} -> {s['end']['rss_mib']} MiB, open files {s['start']['open_files']} -> "
              f"{s['end']['open_files']}; writes {s['writes']}; sessions open after stop {s['open_sessions_after_stop']}"]
    c = r["cost"]
    lines += [f"serve load, read-only: a round of every check {c['full_round']}; a health round {c['health_round']}; "
              f"the default schedule (health every 60 s, the rest every 900 s) an hour: {c['default_schedule_per_hour']}"]
    return "\n".join(lines)


def main() -> int:
    sandbox = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml")
    sandbox.start()
    try:
        result = run(sandbox)
    finally:
        sandbox.stop()
    out = REPO / "bench" / "results" / "serve-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
