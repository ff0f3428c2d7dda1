"""The sandbox as a child process: started once per run (by pytest's controller or a test), stopped at the end;
under a guard (guard.py), so that it stops, and leaves nothing running, when this process is killed."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from ..errors import SetupError
from ..sandbox_admin import AdminClient
from .guard import OWNER_DIR_VAR, die_with_parent
from .limits import TIME_SCALE

START_TIMEOUT_S = 120  # the first start encodes the canary MP3s (~8 s); later ones take a few seconds


class SandboxProcess:
    def __init__(self, inject: Sequence[str] = (), base_profile: Path | None = None, wait_prometheus: bool = True,
                 variant: str = "contract", time_scale: float = TIME_SCALE):
        self.variant, self.time_scale = variant, time_scale
        self.inject = list(inject)
        self.wait_prometheus = wait_prometheus
        self.base_profile = base_profile
        self.dir = Path(tempfile.mkdtemp(prefix="veza-sandbox-run-"))
        self.profile_path = self.dir / "profile.toml"
        self.log_path = self.dir / "sandbox.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "veza_synthetics.sandbox.guard",  # nothing outlives the sandbox, or this process
               sys.executable, "-m", "veza_synthetics", "sandbox", "up", "--profile-out", str(self.profile_path)]
        if self.inject:
            cmd += ["--inject", ",".join(self.inject)]
        if self.base_profile:
            cmd += ["--base-profile", str(self.base_profile)]
        if self.variant != "contract":
            cmd += ["--variant", self.variant]
        if not self.wait_prometheus:
            cmd.append("--no-wait-prometheus")
        if self.time_scale != TIME_SCALE:
            cmd += ["--time-scale", f"{self.time_scale:g}"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent, env={**os.environ, OWNER_DIR_VAR: str(self.dir)})
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.profile_path.exists():
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                self.stop()
                raise SetupError("the sandbox could not start: " + " | ".join(tail))
            if time.monotonic() > deadline:
                self.stop()
                raise SetupError(f"the sandbox did not start within {START_TIMEOUT_S} s (log: {self.log_path})")
            time.sleep(0.1)
        return str(self.profile_path)

    def admin_url(self) -> str:
        import tomllib
        return str(tomllib.loads(self.profile_path.read_text())["sandbox"]["admin_url"])

    @property
    def admin(self) -> AdminClient:
        """Its admin API: fault switches, the write recorder, sessions, logs, alert routing."""
        return AdminClient(self.admin_url())

    @contextlib.contextmanager
    def faults_on(self, faults: list[str], params: dict[str, float] | None = None) -> Iterator[list[str]]:
        """These faults on for the block, and none after it, whatever happened inside (each switch returns once
        Prometheus sees it, off as on)."""
        active = self.admin.set_faults(faults, params)
        try:
            yield active
        finally:
            self.admin.set_faults([])
            self._errors_out_of_the_window()

    def _errors_out_of_the_window(self, wait_s: float = 20.0) -> None:
        """Return once the 5xx a fault made have left the rate window its profile's checks read the platform's
        own error ratio over (PostgreSQL stopped answers 5xx for seconds): the next test starts clean."""
        from ..profile import load
        cfg = load(str(self.profile_path)).prometheus
        if not cfg.url:
            return
        query = f'sum(rate(http_requests_total{{status=~"5.."}}[{cfg.rate_window}]))'
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                result = httpx.get(f"{cfg.url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
            except (httpx.HTTPError, ValueError, KeyError):
                return
            if not result or float(result[0]["value"][1]) == 0:
                return
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
