"""Benchmarks: what a run costs and how far its figures can be trusted, measured side by side.

    .venv/bin/python bench/run.py            (or: make bench)

Writes bench/results/<UTC>.json and bench/results/latest.json, and prints a table.
Sections: run time (phases, full suite, each marker, -n 2, the full run against its floor, production's
holds against the longest of them), accuracy (injected vs measured), overhead (sampler vs curl vs bare
httpx), scale (x1, x4, x16), detection time per category.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veza_synthetics.matrix import TIMING_UNITS  # noqa: E402
from veza_synthetics.probes import http as http_probe  # noqa: E402
from veza_synthetics.probes.transport import Transport  # noqa: E402
from veza_synthetics.profile import ENV_DIR, Profile, load  # noqa: E402
from veza_synthetics.sandbox.process import SandboxProcess  # noqa: E402
from veza_synthetics.target import Target  # noqa: E402

UNPACED = 1e6  # requests a second: the sampler's own capacity, not a polite pace
MARKERS = ["health", "auth", "database", "websocket", "streaming", "performance"]
DETECTION = {"auth": "auth.forbidden", "database": "db.slow_queries", "websocket": "ws.drop_messages",
             "streaming": "stream.truncate", "performance": "perf.errors", "health": "infra.rules_missing"}
DETECTED_BY = {"auth.forbidden": "auth.http_401_403", "db.slow_queries": "db.degraded_performance",
               "ws.drop_messages": "ws.message_loss", "stream.truncate": "stream.audio_cut",
               "perf.errors": "perf.error_rate", "infra.rules_missing": "health.monitoring"}


def pytest_run(*args: str) -> tuple[float, int, dict | None]:
    reports = Path(tempfile.mkdtemp(prefix="veza-bench-"))
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "-p", "no:cacheprovider", "-q",
                          "--reports-dir", str(reports), *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    results_file = reports / "latest" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    shutil.rmtree(reports, ignore_errors=True)
    return elapsed, run.returncode, results


def checks_phase_s(results: dict) -> float:
    """Wall time from the first check's start to the last check's end (pytest and xdist start-up excluded)."""
    ended = {i: dt.datetime.fromisoformat(c["finished_at"]).timestamp() for i, c in enumerate(results["checks"])
             if "finished_at" in c}
    return round(max(ended.values()) - min(ended[i] - results["checks"][i]["duration_s"] for i in ended), 2)


def run_time(sandbox: SandboxProcess) -> dict:
    out: dict = {}
    elapsed, code, results = pytest_run()  # starts and stops its own sandbox
    out["full_with_sandbox_start_s"] = round(elapsed, 2)
    out["full_passed"] = code == 0
    profile = str(sandbox.profile_path)
    seq, _, seq_results = pytest_run("--env", profile)
    par, _, par_results = pytest_run("--env", profile, "-n", "2")
    out["full_sequential_s"], out["full_n2_s"] = round(seq, 2), round(par, 2)
    out["checks_phase_sequential_s"], out["checks_phase_n2_s"] = checks_phase_s(seq_results), checks_phase_s(par_results)
    out["speedup_n2_checks_phase"] = round(out["checks_phase_sequential_s"] / out["checks_phase_n2_s"], 2)
    out["per_check_s"] = {f"{c['id']} ({c['variant']})": c["duration_s"] for c in seq_results["checks"]}
    out["timing_headroom"] = timing_headroom({"sequential": seq_results, "n2": par_results})
    out["per_marker_s"] = {}
    for marker in MARKERS:
        elapsed, _, _ = pytest_run("--env", profile, "-m", marker)
        out["per_marker_s"][marker] = round(elapsed, 2)
    started, _, _ = pytest_run("-m", "streaming")
    out["streaming_with_sandbox_start_s"] = round(started, 2)
    out["sandbox_phases_s"] = sandbox.admin.faults()["started_in_s"]
    out.update(floor_ratio())
    out.update(production_holds(sandbox))
    out.update(sandbox_ready())
    return out


def timing_headroom(runs: dict[str, dict | None]) -> dict:
    """Each timed figure of a healthy run beside its warning and fail levels: how far under them the sandbox
    answers (the tests accept a latency warning crossed under make test's load, matrix.meets)."""
    out: dict = {}
    for name, results in runs.items():
        for c in (results or {}).get("checks", []):
            for cond in c["conditions"]:
                level = c["thresholds"].get(cond["threshold"], {})
                if level.get("unit") in TIMING_UNITS and cond["value"] is not None:
                    figure = re.split(r" [\d.e+-]+ (?:ms|s)\b", cond["text"])[0]  # "health p95", "A-to-B delivery p95"
                    row = out.setdefault(f"{c['id']}: {figure}",
                                         {"warn": level.get("warn"), "fail": level.get("fail")})
                    row[name] = cond["value"]
    return out


def median_of_3(*args: str) -> float:
    return round(statistics.median(pytest_run(*args)[0] for _ in range(3)), 2)


def floor_ratio() -> dict:
    """The whole healthy run (sandbox start included) against its floor: the websocket-only run, which is
    the sandbox start plus the longest deliberate hold (the idle WebSocket). Whole processes, median of 3."""
    full, floor = median_of_3(), median_of_3("-m", "websocket")
    return {"full_median_s": full, "websocket_only_median_s": floor, "full_vs_floor": round(full / floor, 2)}


def production_holds(sandbox: SandboxProcess) -> dict:
    """The whole run on a running sandbox with production's holds (WebSocket idle 60 s, session 30 s),
    against the longest of them: what the nightly and the gate cost beyond the wait they must make."""
    profile = Path(tempfile.mkdtemp(prefix="veza-bench-")) / "production-holds.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n[holds]\nws_idle_s = 60.0\nsession_s = 30.0\n')
    elapsed, code, _ = pytest_run("--env", str(profile))
    n2, n2_code, _ = pytest_run("--env", str(profile), "-n", "2")
    return {"production_holds_run_s": round(elapsed, 2), "production_holds_passed": code == 0,
            "production_holds_vs_longest": round(elapsed / 60.0, 3),
            "production_holds_n2_run_s": round(n2, 2), "production_holds_n2_passed": n2_code == 0,
            "production_holds_n2_vs_longest": round(n2 / 60.0, 3)}


def sandbox_ready() -> dict:
    """A fresh sandbox until its profile is written (ready for checks; Prometheus's first scrapes go on
    while the checks that do not read it run), split by part."""
    fresh = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml", wait_prometheus=False)
    started = time.perf_counter()
    fresh.start()
    ready = time.perf_counter() - started
    try:
        phases = fresh.admin.faults()["started_in_s"]
    finally:
        fresh.stop()
    return {"sandbox_ready_s": round(ready, 2), "sandbox_ready_phases_s": phases}


def accuracy(sandbox: SandboxProcess, profile: Profile) -> list[dict]:
    """Injected fault size against the figure the suite measures. The API delay is measured one
    request at a time against a baseline taken just before, so the sandbox's own queueing
    under concurrency does not blur it."""
    serial = profile.with_changes("sampling", requests=40, concurrency=1, max_rps=UNPACED)
    target = Target(serial)

    def tracks_p50(attempt: int) -> float:
        return target.http_sample(attempt).evidence["per_endpoint"]["tracks"]["p50_ms"]

    rows = []
    cases = [("perf.latency", s, 1000 * s, "ms") for s in (0.05, 0.2, 0.4)]
    cases += [("ws.latency", s, 1000 * s, "ms") for s in (0.1, 0.3)]
    cases += [("stream.throttle", s, s, "x bitrate") for s in (0.5, 0.8)]
    for attempt, (fault, size, injected, unit) in enumerate(cases, 1):
        baseline = tracks_p50(1000 + attempt) if fault == "perf.latency" else 0.0
        with sandbox.faults_on([fault], {fault: size}):
            if fault == "perf.latency":
                measured = tracks_p50(attempt) - baseline
            elif fault == "ws.latency":
                measured = target.chat_delivery(attempt).measurements["delivery_p50_ms"]
            else:
                measured = target.stream_download(attempt).measurements["speed_ratio"]
        error = measured - injected
        rows.append({"fault": fault, "injected": injected, "measured": round(measured, 3), "unit": unit,
                     "error": round(error, 3), "error_pct": round(100 * error / injected, 2),
                     "within_goal": abs(error) <= max(0.05 * injected, 5 if unit == "ms" else 0)})
    target.close()
    return rows


def overhead(profile: Profile) -> dict:
    """The sampler against curl and a bare httpx client on one cheap URL (the stream server's
    /health through the TLS front door, no database behind it), so the figures are the client's,
    not the sandbox's; and the sampler's own phase split (connect, TLS, first byte, total)."""
    url = f"{profile.stream.url}/health"
    way = Transport(ca_file=profile.tls.ca_file, trusted=tuple(profile.urls()))  # unpaced: the client's own cost
    n = 200
    curl = []
    for _ in range(n):
        run = subprocess.run(["curl", "-s", "--cacert", profile.tls.ca_file, "-o", "/dev/null", "-w", "%{time_total}",
                              url], capture_output=True, text=True)
        curl.append(float(run.stdout) * 1000)
    bare = []
    with httpx.Client(timeout=5, verify=way.tls(url)) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.get(url)
            bare.append((time.perf_counter() - started) * 1000)
    sampled = http_probe.sample(way, profile.stream.url, {"health": "/health"}, {}, http_probe.Pace(n, 1, UNPACED), 5)
    sampler_p50 = sampled.evidence["per_endpoint"]["health"]["p50_ms"]
    phases = {phase: sampled.evidence["phases"][phase]["p50_ms"] for phase in ("connect_ms", "tls_ms", "first_byte_ms",
                                                                              "total_ms")}
    concurrency = profile.sampling.concurrency
    started = time.perf_counter()
    http_probe.sample(way, profile.stream.url, {"health": "/health"}, {}, http_probe.Pace(2000, concurrency, UNPACED), 5)
    throughput = 2000 / (time.perf_counter() - started)
    return {"url": "stream /health", "curl_p50_ms": round(statistics.median(curl), 2),
            "httpx_p50_ms": round(statistics.median(bare), 2), "sampler_p50_ms": sampler_p50,
            "sampler_vs_curl": round(sampler_p50 / statistics.median(curl), 2),
            "sampler_phases_p50_ms": phases, "connections_opened": sampled.evidence["phases"]["connections_opened"],
            "sampler_requests_per_s": round(throughput, 1), "concurrency": concurrency,
            "within_goal": sampler_p50 <= 1.2 * statistics.median(curl)}


def scale(profile: Profile) -> list[dict]:
    rows = []
    for factor in (1, 4, 16):
        scaled = profile.with_changes("sampling", requests=200 * factor, chat_messages=50 * factor)
        target = Target(scaled)
        started = time.perf_counter()
        target.http_sample(1)
        http_s = time.perf_counter() - started
        started = time.perf_counter()
        target.chat_delivery(1)
        chat_s = time.perf_counter() - started
        target.close()
        rows.append({"factor": factor, "requests": scaled.sampling.requests, "http_s": round(http_s, 2),
                     "chat_messages": scaled.sampling.chat_messages, "chat_s": round(chat_s, 2)})
    return rows


def detection(sandbox: SandboxProcess) -> dict:
    out = {}
    for category, fault in DETECTION.items():
        started = time.perf_counter()
        with sandbox.faults_on([fault]):
            _, _, results = pytest_run("--env", str(sandbox.profile_path), "--symptoms", DETECTED_BY[fault])
        failed = results and any(c["outcome"] == "failed" for c in results["checks"])
        out[category] = {"fault": fault, "check": DETECTED_BY[fault], "seconds": round(time.perf_counter() - started, 2),
                         "detected": bool(failed)}
    return out


DEAD_PROFILE = """name = "dead"
allow = "readonly"
[backend]
url = "http://127.0.0.1:{port}"
[chat]
url = "ws://127.0.0.1:{port}/chat"
health_url = "http://127.0.0.1:{port}/health"
[stream]
url = "http://127.0.0.1:{port}"
canary_track_id = 1
[postgres]
host = "127.0.0.1"
port = {port}
user = "monitor"
password = "${{VEZA_BENCH_PASSWORD}}"
[redis]
url = "redis://127.0.0.1:{port}/0"
[prometheus]
url = "http://127.0.0.1:{port}"
[accounts]
user_email = "synthetic@veza.local"
user_password = "${{VEZA_BENCH_PASSWORD}}"
"""


def dead_platform() -> dict:
    """A run at production's pace and timeouts (0.4 requests a second, 5 s) against a platform where nothing
    listens, and one that accepts connections and never answers: seconds until every check has failed."""
    import socket
    out = {}
    for kind in ("refused", "hung"):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if kind == "hung":
            listener.listen(256)
        else:
            listener.close()
        folder = Path(tempfile.mkdtemp(prefix="veza-bench-dead-"))
        (folder / "dead.toml").write_text(DEAD_PROFILE.format(port=port))
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "veza_synthetics", "run", "--env", str(folder / "dead.toml"),
                              "--reports-dir", str(folder / "r")], cwd=REPO, capture_output=True, text=True,
                             timeout=900, env={**os.environ, "VEZA_BENCH_PASSWORD": "bench-only"})
        out[kind] = {"seconds": round(time.perf_counter() - started, 1), "exit": run.returncode}
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def main() -> int:
    sandbox = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml")
    sandbox.start()
    try:
        profile = load(str(sandbox.profile_path))
        result = {
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "run_time": run_time(sandbox),
            "accuracy": accuracy(sandbox, profile),
            "overhead": overhead(profile),
            "scale": scale(profile),
            "detection_time": detection(sandbox),
            "dead_platform": dead_platform(),
        }
    finally:
        sandbox.stop()
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out_dir / f"{result['measured_at'][:19].replace(':', '')}.json").write_text(text)
    (out_dir / "latest.json").write_text(text)
    print(table(result))
    return 0


def table(r: dict) -> str:
    rt = r["run_time"]
    lines = [f"machine: {r['machine']['cpus']} cores, Python {r['machine']['python']}",
             f"full run incl. sandbox start {rt['full_with_sandbox_start_s']} s (goal < 30 s)",
             f"-m streaming incl. sandbox start {rt['streaming_with_sandbox_start_s']} s (goal < 10 s)",
             f"full on a running sandbox: sequential {rt['full_sequential_s']} s, -n 2 {rt['full_n2_s']} s; "
             f"checks phase {rt['checks_phase_sequential_s']} s vs {rt['checks_phase_n2_s']} s "
             f"(x{rt['speedup_n2_checks_phase']})",
             f"sandbox phases: {rt['sandbox_phases_s']}",
             f"full vs websocket-only (median of 3, sandbox start included): {rt['full_median_s']} s vs "
             f"{rt['websocket_only_median_s']} s (x{rt['full_vs_floor']}, goal <= 1.2)",
             f"production holds (60 s / 30 s): run {rt['production_holds_run_s']} s "
             f"(x{rt['production_holds_vs_longest']} the longest hold, goal <= 1.15); -n 2: "
             f"{rt['production_holds_n2_run_s']} s (x{rt['production_holds_n2_vs_longest']})",
             f"sandbox ready {rt['sandbox_ready_s']} s (goal < 5 s): {rt['sandbox_ready_phases_s']}",
             "per marker (running sandbox): " + ", ".join(f"{k} {v} s" for k, v in rt["per_marker_s"].items()),
             "", "timing headroom of a healthy run (sequential / -n 2, against the warning or fail level):"]
    lines += [f"  {figure:<58} {row.get('sequential')} / {row.get('n2')} of {row['warn'] or row['fail']}"
              for figure, row in rt["timing_headroom"].items()]
    lines += ["", "accuracy (goal: within 5 % or 5 ms):"]
    lines += [f"  {a['fault']:<16} injected {a['injected']:>7} {a['unit']:<9} measured {a['measured']:>8} "
              f"error {a['error']:+.3f} ({a['error_pct']:+.1f} %) {'ok' if a['within_goal'] else 'MISSED'}"
              for a in r["accuracy"]]
    o = r["overhead"]
    lines += ["", f"overhead: curl p50 {o['curl_p50_ms']} ms, httpx {o['httpx_p50_ms']} ms, sampler {o['sampler_p50_ms']} ms "
              f"(x{o['sampler_vs_curl']} curl, goal <= 1.2); {o['sampler_requests_per_s']} req/s at concurrency "
              f"{o['concurrency']}",
              "sampler phases p50: " + ", ".join(f"{k.removesuffix('_ms')} {v} ms" for k, v in o["sampler_phases_p50_ms"].items())
              + f" ({o['connections_opened']} connections opened for {200} requests)", "", "scale:"]
    lines += [f"  x{s['factor']:<3} {s['requests']:>5} requests {s['http_s']:>6} s   {s['chat_messages']:>4} messages "
              f"{s['chat_s']:>6} s" for s in r["scale"]]
    d = r["dead_platform"]
    lines += ["", f"a dead platform at production's pace (0.4/s, 5 s timeouts): nothing listening {d['refused']['seconds']} s "
              f"(goal <= 30 s), accepting and never answering {d['hung']['seconds']} s (goal <= 60 s)"]
    lines += ["", "detection time (fault on -> failed check in the report):"]
    lines += [f"  {k:<12} {v['fault']:<22} {v['seconds']:>6} s {'detected' if v['detected'] else 'NOT DETECTED'}"
              for k, v in r["detection_time"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
