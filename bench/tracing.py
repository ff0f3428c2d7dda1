"""What tracing costs a run: the same checks against the sandbox without a collector, with a dead one (a closed
port) and with a real Jaeger (tools/jaeger), alternating, three times each. A dead collector must cost nothing.

    .venv/bin/python bench/tracing.py        (make bench runs it)
"""
from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from veza_synthetics.profile import ENV_DIR  # noqa: E402
from veza_synthetics.sandbox.jaeger import Jaeger  # noqa: E402
from veza_synthetics.sandbox.process import SandboxProcess  # noqa: E402

SYMPTOMS = "health.services,auth.http_401_403,auth.jwt_expired,stream.audio_cut,perf.high_response_time"
ROUNDS = 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(profile: Path, reports: Path) -> tuple[float, dict[str, str]]:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile), "--symptoms", SYMPTOMS,
                    "-p", "no:cacheprovider", "--reports-dir", str(reports)], cwd=REPO, capture_output=True, timeout=600)
    elapsed = time.monotonic() - started
    checks = json.loads((reports / "latest" / "results.json").read_text())["checks"]
    return elapsed, {c["id"]: c["outcome"] for c in checks if c["variant"] == "read-only"}


def main() -> int:
    sandbox, jaeger = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml"), Jaeger()
    sandbox.start()
    jaeger.start()
    work = Path(tempfile.mkdtemp(prefix="veza-bench-tracing-"))
    ways = {"no collector": "", "dead collector": f"http://127.0.0.1:{_closed_port()}", "Jaeger": jaeger.otlp_endpoint}
    profiles = {}
    for name, endpoint in ways.items():
        path = work / f"{name.replace(' ', '-')}.toml"
        path.write_text(f'extends = "{sandbox.profile_path}"\n[tracing]\notlp_endpoint = "{endpoint}"\n')
        profiles[name] = path
    times: dict[str, list[float]] = {name: [] for name in ways}
    outcomes: dict[str, dict[str, str]] = {}
    try:
        for i in range(ROUNDS):
            for name, path in profiles.items():
                elapsed, outcomes[name] = _run(path, work / f"r-{i}-{name.replace(' ', '-')}")
                times[name].append(elapsed)
    finally:
        jaeger.stop()
        sandbox.stop()
    print(f"tracing's cost: {SYMPTOMS.count(',') + 1} checks against the sandbox, {ROUNDS} runs each (wall seconds)")
    for name in ways:
        same = "same verdicts" if outcomes[name] == outcomes["no collector"] else f"DIFFERENT: {outcomes[name]}"
        print(f"  {name:<15} median {statistics.median(times[name]):6.2f} s  (runs {', '.join(f'{t:.2f}' for t in times[name])})"
              f"  {same}")
    return 0 if all(outcomes[name] == outcomes["no collector"] for name in ways) else 1


if __name__ == "__main__":
    raise SystemExit(main())
