"""One run of the checks, on the controller: a plugin object registered with pytest's plugin manager.

It owns what the run knows (the profile, the sandbox it may have started, the records gathered from
the process that ran the checks or from every xdist worker, the report folder), decides the exit
status, adds root causes and trends, and announces the finished run (hooks.pytest_veza_run_finished)
to the report writers. Running the checks is checking.py's part; what pytest-html and the terminal show
of the run is reports/presentation.py's.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from . import __version__, dependencies, git_commit, history, quarantine, reports
from . import checking as checking_mod
from .catalog import Catalog
from .errors import SetupError
from .hooks import RunFinished
from .profile import ENV_DIR, SANDBOX_VARIANTS, Profile
from .profile import load as load_profile
from .record import CheckRecord
from .run_result import RunFacts, RunResult
from .sandbox_admin import AdminClient

if TYPE_CHECKING:
    from .sandbox.process import SandboxProcess

NO_DATA_EXIT = 6  # a check measured nothing (pytest's own codes are 0-5); veza-synth run says 3
PROFILE_VAR = "veza_profile"  # the resolved profile's path, handed to xdist workers
HOLDS_TOGETHER_VAR = "veza_holds_together"  # the controller sends every holding check to one worker
RUN_PLUGIN = "veza-run"


def current(config: pytest.Config) -> Run | None:
    run = config.pluginmanager.get_plugin(RUN_PLUGIN)
    return run if isinstance(run, Run) else None


class Run:
    def __init__(self, profile: Profile, config: pytest.Config, profile_path: str, catalog: Catalog):
        self.profile, self.profile_path, self.config, self.catalog = profile, profile_path, config, catalog
        self.sandbox: SandboxProcess | None = None
        self.faults: list[str] = []
        self.records: list[CheckRecord] = []
        self.started_at = dt.datetime.now(dt.UTC)
        self.location: str = config.getoption("--location") or profile.location
        self.report_dir: Path | None = None
        self.final: RunResult | None = None  # the run's result once it finished, root causes and trends included
        self.reported: list[str] = []  # the checks whose test reported a verdict: each must have its record
        self.logins = 0  # made by the run, every process's target together
        self.redactor = profile.redactor()  # every file, page and line this run writes masks its secrets

    @classmethod
    def start(cls, config: pytest.Config, catalog: Catalog) -> Run:
        env = config.getoption("--env") or os.environ.get("VEZA_ENV") or "sandbox"
        faults = catalog.validate_faults(checking_mod.option_list(config, "--inject"))
        unknown = set(checking_mod.option_list(config, "--symptoms")) - set(catalog.symptoms)
        if unknown:
            raise SetupError(f"--symptoms: unknown check id(s): {', '.join(sorted(unknown))}")
        if env != "sandbox" and faults:
            raise SetupError("--inject switches sandbox faults: it needs --env sandbox (the default)")
        if config.getoption("--quarantine"):  # an expired entry stops the run before anything starts
            quarantine.load(Path(config.getoption("--quarantine")), dt.date.today())
        sandbox = _start_sandbox(faults, config.getoption("--sandbox-variant")) if env == "sandbox" else None
        path = str(sandbox.profile_path) if sandbox else str(env)
        try:
            profile = load_profile(path)
        except SetupError:
            if sandbox:
                sandbox.stop()
            raise
        run = cls(profile, config, path, catalog)
        run.sandbox = sandbox
        run.faults = faults or run.sandbox_faults()
        run.report_dir = reports.prepare_dir(config, profile.name)
        return run

    def sandbox_faults(self) -> list[str]:
        """Faults already on in a sandbox this run did not start (the matrix switches them)."""
        admin = self.profile.sandbox.admin_url
        if not admin:
            return []
        try:
            return [str(fault) for fault in AdminClient(admin).faults()["active"]]
        except (httpx.HTTPError, SetupError, KeyError):
            return []

    # -- xdist: only ever called on the controller ----------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: the workers use the controller's profile (and so its one sandbox), and learn whether the
        holding checks all come to the worker that gets one of them."""
        node.workerinput[PROFILE_VAR] = self.profile_path
        node.workerinput[HOLDS_TOGETHER_VAR] = _holds_together(self.config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """-n (xdist's load distribution): the same, with the holding checks as one unit of work."""
        if not _holds_together(config):
            return None
        from .scheduling import HoldsTogether
        return HoldsTogether(config, log, self.catalog)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker's records, sent through workeroutput when it finished."""
        output = getattr(node, "workeroutput", None) or {}
        self.records += [CheckRecord.from_json(r) for r in json.loads(output.get(checking_mod.RECORDS_KEY, "[]"))]
        self.logins += int(output.get(checking_mod.LOGINS_KEY, 0))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.reported += [str(value) for key, value in report.user_properties if key == "symptom"]

    # -- the end of the run ---------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        local = checking_mod.current(self.config)
        if local is not None:  # a sequential run: the checks ran in this process
            self.records += local.records
            self.logins += local.logins
        lost = sorted(set(self.reported) - {r.id for r in self.records})
        if lost:  # a verdict without its record would vanish from every report: the run says so and fails
            print(f"veza-synthetics: the records of {', '.join(lost)} did not reach the controller")
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        outcomes = {r.outcome for r in self.records}
        if session.exitstatus == 0 and self.config.getoption("--fail-on-degraded") and "degraded" in outcomes:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if session.exitstatus == 0 and "no_data" in outcomes and not self.config.getoption("--allow-no-data"):
            session.exitstatus = NO_DATA_EXIT
        result = self.summary()
        records, causes, states = result.records, None, None
        if "failed" in outcomes:
            grouped = dependencies.group(records, dependencies.probe(self.profile, records), self.catalog)
            records, causes, states = grouped.records, grouped.root_causes, grouped.dependencies
        past = history.load(self.history_dir, self.profile.name, self.location)
        records, used = history.annotate(records, result.facts.started_at, past, self.profile.history)
        self.final = RunResult(result.facts, records, causes, states, used)

    @property
    def reports_root(self) -> Path:
        return Path(self.config.getoption("--reports-dir"))

    @property
    def history_dir(self) -> Path:
        return Path(self.config.getoption("--history") or self.reports_root / "history")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        try:
            config.hook.pytest_veza_run_finished(finished=RunFinished(
                result=self.final or self.summary(), folder=self.report_dir, reports_root=self.reports_root,
                history_dir=self.history_dir, profile=self.profile, redactor=self.redactor, config=config,
                completed=self.final is not None))
        finally:
            if self.sandbox:
                self.sandbox.stop()

    def summary(self) -> RunResult:
        """The run as it stands: its facts and records, sorted, before any root cause or trend."""
        finished = dt.datetime.now(dt.UTC)
        facts = RunFacts(env=self.profile.name, location=self.location, started_at=self.started_at.isoformat(),
                         finished_at=finished.isoformat(), allow=self.profile.allow, endpoints=self.profile.endpoints(),
                         faults=tuple(self.faults), duration_s=round((finished - self.started_at).total_seconds(), 2),
                         logins_made=self.logins, login_budget=self.profile.auth.max_logins_per_run,
                         suite_version=__version__, git_commit=git_commit())
        return RunResult(facts, tuple(sorted(self.records, key=lambda r: (r.category, r.id, r.variant))))


def _holds_together(config: pytest.Config) -> bool:
    """Under -n (xdist's default load distribution) the holding checks go to one worker together."""
    return bool(config.getoption("dist", "no") == "load")


SANDBOX_MODULES = ("uvicorn", "starlette", "tomli_w", "jwt")


def _start_sandbox(faults: list[str], variant: str) -> "SandboxProcess":
    """The sandbox in a child process (the `sandbox` extra), when no --env names a real environment. It is
    ready before Prometheus's first scrapes: the checks that read Prometheus run last and wait for them."""
    missing = [name for name in SANDBOX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SetupError(f"no --env given and the sandbox is not installed ({', '.join(missing)} missing): "
                         "pass --env NAME|PATH, or pip install 'veza-synthetics[sandbox]'")
    base = ENV_DIR / SANDBOX_VARIANTS[variant]
    if not base.exists():
        raise SetupError(f"no --env given and the sandbox's profile {base} is not there: run from the "
                         "veza-synthetics repository, or pass --env NAME|PATH")
    from .sandbox.process import SandboxProcess
    sandbox = SandboxProcess(inject=faults, base_profile=base, wait_prometheus=False, variant=variant)
    sandbox.start()
    return sandbox
