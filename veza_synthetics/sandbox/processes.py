"""The sandbox's real servers: PostgreSQL, Redis and Prometheus as child processes.

Each one owns a folder under the sandbox's temp dir, listens on 127.0.0.1 on a free
port, and can be stopped and started again (the infra.*_down faults do that).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from ..errors import SetupError

LOOPBACK = "127.0.0.1"
# `veza-synth serve` scraped by the sandbox's Prometheus once someone runs one (PUT /prometheus/prober on
# the admin port), its shipped rules loaded: what a team's Prometheus does with the prober.
PROBER_JOB = "veza_synthetics_serve"
PROBER_RULES = Path(__file__).resolve().parents[1] / "serve.rules.yml"


# Ports handed out and not yet bound are claimed here, machine-wide: sandboxes start side by side (one per
# xdist worker), and a port the kernel offers one of them while another's child has yet to bind it (Redis
# starts seconds after its port is chosen) would let a Redis client reach somebody's HTTP server.
PORT_CLAIMS = Path(tempfile.gettempdir()) / "veza-sandbox-ports"
CLAIM_TTL_S = 120.0  # the longest a port stays chosen and unbound (a start's slowest phase)


def free_port() -> int:
    """A loopback port no other sandbox component on this machine was handed within CLAIM_TTL_S."""
    PORT_CLAIMS.mkdir(mode=0o777, exist_ok=True)
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        claim = PORT_CLAIMS / str(port)
        with contextlib.suppress(FileNotFoundError):
            if time.time() - claim.stat().st_mtime > CLAIM_TTL_S:
                claim.unlink()
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue  # another sandbox's, not yet bound: ask again
        return port
    raise SetupError("sandbox: no free loopback port found in 100 tries")


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None, name: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SetupError(f"sandbox: {name} exited with code {proc.returncode} at start")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SetupError(f"sandbox: {name} did not listen on port {port} within {timeout_s:.0f} s")


def find_binary(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SetupError(f"sandbox: '{name}' not found. {hint}")
    return path


def _stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 5) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


class Postgres:
    """A private PostgreSQL 13+ cluster; as root it runs as the `postgres` user (initdb refuses root)."""

    def __init__(self, workdir: Path, superuser_password: str):
        self.bindir = self._bindir()
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self.password = superuser_password
        self._as_postgres = os.geteuid() == 0

    @staticmethod
    def _bindir() -> Path:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        for path in [*reversed(candidates), *(os.path.dirname(p) for p in [shutil.which("initdb")] if p)]:
            if Path(path, "initdb").exists() and Path(path, "pg_ctl").exists():
                return Path(path)
        raise SetupError("sandbox: PostgreSQL server binaries (initdb, pg_ctl) not found. "
                         "Install them: `make setup` (apt-get install postgresql postgresql-contrib)")

    def _run(self, *args: str, timeout_s: float = 60) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise SetupError(f"sandbox: {args[0]} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    def init(self) -> None:
        self.datadir.mkdir(mode=0o700)
        pwfile = self.datadir.parent / "pgpass.txt"
        pwfile.write_text(self.password)
        if self._as_postgres:
            pg = pwd.getpwnam("postgres")
            os.chown(self.datadir, pg.pw_uid, pg.pw_gid)
            os.chown(pwfile, pg.pw_uid, pg.pw_gid)
        try:
            self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth-local=trust",
                      "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8")
        finally:
            pwfile.unlink()

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.datadir} -c listen_addresses={LOOPBACK} "
                "-c shared_preload_libraries=pg_stat_statements -c fsync=off -c max_connections=40 "
                "-c superuser_reserved_connections=3 -c pg_stat_statements.track=all "
                f"-c log_statement=mod -c log_line_prefix=@%a@")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", opts, "-l", str(self.datadir / "server.log"),
                  "-w", "-t", "30", "start")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30", "stop")

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, background workers)."""
        try:
            postmaster = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        try:  # the kernel's own list (CONFIG_PROC_CHILDREN): no scan of every process twice a second
            return [postmaster, *map(int, Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split())]
        except OSError:
            pass
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def suite_writes(self, application: str = "veza-synthetics") -> list[str]:
        """Statements other than reads (log_statement=mod) sent by the suite's connections."""
        log = self.datadir / "server.log"
        if not log.exists():
            return []
        marker = f"@{application}@"
        return [line.split("statement:", 1)[1].strip() for line in log.read_text(errors="replace").splitlines()
                if line.startswith(marker) and "statement:" in line]

    @property
    def socket_dsn(self) -> str:
        """Superuser connection over the Unix socket (trust): the sandbox's own control path."""
        return f"host={self.datadir} port={self.port} user=postgres dbname=postgres"


class Redis:
    """A private redis-server with a password, no persistence, and sessions kept from eviction (or, where it
    holds none, the eviction the public code's compose file sets: allkeys-lru, D2)."""

    def __init__(self, workdir: Path, password: str, eviction: str = "noeviction"):
        self.binary = find_binary("redis-server", "Install it: `make setup` (apt-get install redis-server)")
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.password, self.eviction = password, eviction
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.dir / "redis.conf"
        conf.write_text(
            f"port {self.port}\nbind {LOOPBACK}\ndir {self.dir}\nsave \"\"\nappendonly no\n"
            f"maxmemory 64mb\nmaxmemory-policy {self.eviction}\nrequirepass {self.password}\n"
        )
        conf.chmod(0o600)
        self.proc = subprocess.Popen([self.binary, str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port, 10, self.proc, "redis-server")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class Prometheus:
    """Prometheus scraping the sandbox every second, with the veza_alerts rule group.

    It starts first, with no targets: its discovery hands targets to the scrapers only every 5 s from its
    start, so those 5 s pass while the rest of the stack starts. The targets come later, through files
    (file_sd), once their ports are known."""

    def __init__(self, workdir: Path, binary: str, jobs: list[str]):
        self.binary = binary
        self.dir = workdir / "prometheus"
        self.dir.mkdir()
        self.port = free_port()
        self.rules = self.dir / "rules.yml"
        self.jobs = jobs
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return shutil.which("prometheus")

    def configure(self, rules_text: str, alertmanager_port: int | None = None) -> None:
        """Scrape every job from its file; the sandbox's rules and the prober's shipped rules; alerts to the
        sandbox's Alertmanager when it runs one."""
        jobs = "".join(f"  - job_name: {job}\n    file_sd_configs:\n      - files: ['{self.dir / job}.json']\n"
                       for job in (*self.jobs, PROBER_JOB))
        alerting = (f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{LOOPBACK}:{alertmanager_port}']\n"
                    if alertmanager_port else "")
        (self.dir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {self.rules}\n  - {PROBER_RULES}\n{alerting}scrape_configs:\n{jobs}"
        )
        self.rules.write_text(rules_text)
        self.set_targets({PROBER_JOB: []})

    def set_targets(self, targets: dict[str, list[int]]) -> None:
        """Each job's scrape targets, written whole then renamed into place (the file watcher sees one change)."""
        for job, ports in targets.items():
            staged = self.dir / f".{job}.json"
            staged.write_text(json.dumps([{"targets": [f"{LOOPBACK}:{port}" for port in ports]}]))
            staged.rename(self.dir / f"{job}.json")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address={LOOPBACK}:{self.port}", "--web.enable-lifecycle", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "prometheus.log", "wb"), start_new_session=True,
        )
        wait_for_port(self.port, 15, self.proc, "prometheus")

    def reload(self, rules_text: str) -> None:
        """Swap the rule file and reload (SIGHUP), as an operator's deploy would."""
        self.rules.write_text(rules_text)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(1)

    def rules_loaded(self, present: bool, timeout_s: float = 10) -> None:
        """Wait until Prometheus serves the sandbox's rule groups (present) or none of them, after a reload
        (the prober's shipped rules stay loaded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                groups = httpx.get(f"http://{LOOPBACK}:{self.port}/api/v1/rules", timeout=2).json()["data"]["groups"]
                if any(g["file"] == str(self.rules) for g in groups) == present:
                    return
            time.sleep(0.1)
        raise SetupError(f"Prometheus did not {'load' if present else 'drop'} its rules within {timeout_s:g} s")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class Exporter:
    """One of the Prometheus exporters production runs (Debian's packages), on a free loopback port."""

    PACKAGES = {"node": "prometheus-node-exporter", "postgres": "prometheus-postgres-exporter",
                "redis": "prometheus-redis-exporter"}

    def __init__(self, workdir: Path, kind: str, args: list[str], env: dict[str, str]):
        package = self.PACKAGES[kind]
        self.binary = find_binary(package, f"Install it: `make setup` (apt-get install {package})")
        self.kind = kind
        self.port = free_port()
        self.args = args
        self.env = env
        self.log = workdir / f"{package}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        listen = [f"--web.listen-address={LOOPBACK}:{self.port}"] if self.kind != "redis" else \
            ["-web.listen-address", f"{LOOPBACK}:{self.port}"]
        self.proc = subprocess.Popen([self.binary, *listen, *self.args], env={**os.environ, **self.env},
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"), start_new_session=True)
        wait_for_port(self.port, 10, self.proc, self.PACKAGES[self.kind])

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None
