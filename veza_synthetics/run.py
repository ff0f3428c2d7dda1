"""One run of the checks, as a plugin object registered with pytest's plugin manager.

It owns what the run knows (the profile, the sandbox it may have started, the check
records gathered from every xdist worker, the report folder), writes the reports at the
end, and sets the exit status.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from . import __version__, dependencies, history, quarantine, redact, reports
from . import catalog as catalog_mod
from .errors import SetupError
from .probes import trust
from .profile import ENV_DIR, Profile
from .profile import load as load_profile
from .record import SCHEMA_VERSION, Record, skipped_record
from .reports import history_page, pushgateway, terminal
from .reports import html as html_report

if TYPE_CHECKING:
    from .sandbox.process import SandboxProcess

NO_DATA_EXIT = 6  # a check measured nothing (pytest's own codes are 0-5); veza-synth run says 3
PROFILE_VAR = "veza_profile"  # the resolved profile's path, handed to xdist workers
HOLDS_TOGETHER_VAR = "veza_holds_together"  # the controller sends every holding check to one worker
RUN_PLUGIN = "veza-run"
RESULT_KEY = "veza_result"  # the check's record, carried from workers to the controller
HTML_EXTRAS_KEY = pytest.StashKey[list[Any]]()
READS_PROMETHEUS = {"health", "performance"}  # check categories that need the sandbox's first scrapes


def option_list(config: pytest.Config, name: str) -> list[str]:
    return [item.strip() for item in (config.getoption(name) or "").split(",") if item.strip()]


def current(config: pytest.Config) -> "VezaRun | None":
    run = config.pluginmanager.get_plugin(RUN_PLUGIN)
    return run if isinstance(run, VezaRun) else None


class VezaRun:
    def __init__(self, profile: Profile, config: pytest.Config, profile_path: str = ""):
        self.profile = profile
        self.profile_path = profile_path or profile.source
        self.config = config
        self.sandbox: SandboxProcess | None = None
        self.faults: list[str] = []
        self.results: list[Record] = []
        self.started_at = time.time()
        self.location: str = config.getoption("--location") or profile.location
        self.report_dir: Path | None = None
        self.prometheus_waited = False
        self.final: dict[str, Any] | None = None  # the run as results.json holds it, trends included
        self.quarantine: dict[str, quarantine.Entry] = {}
        redact.register(*profile.secrets())
        trust(profile.tls.ca_file)

    @classmethod
    def for_worker(cls, config: pytest.Config, profile_path: str) -> "VezaRun":
        """An xdist worker's run: the controller's profile (and so its one sandbox); no files of its own."""
        return cls(load_profile(profile_path), config, profile_path)

    @classmethod
    def start(cls, config: pytest.Config) -> "VezaRun":
        catalog = catalog_mod.load()
        env = config.getoption("--env") or os.environ.get("VEZA_ENV") or "sandbox"
        faults = catalog.validate_faults(option_list(config, "--inject"))
        unknown = set(option_list(config, "--symptoms")) - set(catalog.symptoms)
        if unknown:
            raise SetupError(f"--symptoms: unknown check id(s): {', '.join(sorted(unknown))}")
        sandbox = None
        if env == "sandbox":
            sandbox = _start_sandbox(faults, config.getoption("--sandbox-variant"))
            path = str(sandbox.profile_path)
        else:
            if faults:
                raise SetupError("--inject switches sandbox faults: it needs --env sandbox (the default)")
            path = str(env)
        try:
            profile = load_profile(path)
        except SetupError:
            if sandbox:
                sandbox.stop()
            raise
        run = cls(profile, config, path)
        if config.getoption("--quarantine"):
            try:
                run.quarantine = quarantine.load(Path(config.getoption("--quarantine")), dt.date.today())
            except SetupError:
                if sandbox:
                    sandbox.stop()
                raise
        run.sandbox = sandbox
        run.faults = faults or run.sandbox_faults()
        run.report_dir = reports.prepare_dir(config, profile.name)
        return run

    def adjust(self, record: Record) -> Record:
        """A check measured inside a maintenance window is "maintenance" (its measured outcome kept); a
        quarantined check's failure is marked so, and does not fail the gate."""
        window = self.profile.maintenance_at(dt.datetime.now(dt.UTC))
        if window is not None:
            return {**record, "outcome": "maintenance", "measured_outcome": record["outcome"],
                    "maintenance": {"start": window.start.isoformat(), "end": window.end.isoformat(),
                                    "reason": window.reason},
                    "summary": f"{record['id']}: maintenance window until {window.end.isoformat()}"
                               f"{f' ({window.reason})' if window.reason else ''}; measured "
                               f"{record['outcome']}: {record['summary'].split(': ', 1)[-1]}"}
        entry = self.quarantine.get(record["id"])
        if entry is not None and record["outcome"] == "failed":
            return {**record, "quarantined": entry.as_dict()}
        return record

    def sandbox_faults(self) -> list[str]:
        """Faults already on in a sandbox this run did not start (the matrix switches them)."""
        admin = self.profile.sandbox.admin_url
        if not admin:
            return []
        try:
            active: list[str] = httpx.get(f"{admin}/faults", timeout=2).json()["active"]
            return active
        except (httpx.HTTPError, ValueError, KeyError):
            return []

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    # -- xdist, collection, safety ------------------------------------------------------------
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
        return HoldsTogether(config, log)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        wanted = set(option_list(config, "--symptoms"))
        if wanted:
            keep = [i for i in items if _symptom_of(i) in wanted]
            deselected = [i for i in items if i not in keep]
            if deselected:
                config.hook.pytest_deselected(items=deselected)
                items[:] = keep
        if self.profile.sandbox.admin_url:  # the others run while the sandbox's Prometheus takes its first scrapes
            items.sort(key=lambda i: _category_of(i) in READS_PROMETHEUS)

    def _wait_for_first_scrapes(self) -> None:
        """Before the first check that reads a sandbox's Prometheus: every target scraped (the sandbox's
        admin API answers at once when that is long done)."""
        self.prometheus_waited = True
        try:
            response = httpx.get(f"{self.profile.sandbox.admin_url}/prometheus-ready", timeout=40)
        except httpx.HTTPError as exc:
            raise SetupError(f"the sandbox's admin API did not answer: {exc}") from None
        if response.status_code == 503:
            raise SetupError(response.json().get("error", "the sandbox's Prometheus is not ready"))

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if (not self.prometheus_waited and self.profile.sandbox.admin_url and self.profile.has_prometheus
                and _category_of(item) in READS_PROMETHEUS):
            self._wait_for_first_scrapes()
        reason = None
        if item.get_closest_marker("writes") and not self.profile.allows_writes:
            reason = f"skipped for safety: profile '{self.profile.name}' forbids writes"
        elif item.get_closest_marker("destructive") and self.profile.kind != "sandbox":
            reason = f"skipped for safety: destructive tests never run against '{self.profile.name}'"
        if reason is None:
            return
        symptom = _symptom_of(item)
        if symptom:
            variant = "writes" if item.get_closest_marker("writes") else "read-only"
            item.user_properties.append((RESULT_KEY, json.dumps(skipped_record(symptom, variant, reason))))
        pytest.skip(reason)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        """Hand the check's HTML block to pytest-html (whose wrapper runs outside this one)."""
        outcome = yield
        report = outcome.get_result()
        extras = item.stash.get(HTML_EXTRAS_KEY, [])
        if report.when == "call" and extras:
            report.extras = [*getattr(report, "extras", []), *extras]

    # -- results, on the controller ---------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.skipped):
            self.results += [json.loads(str(value)) for key, value in report.user_properties if key == RESULT_KEY]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        outcomes = {r["outcome"] for r in self.results}
        if session.exitstatus == 0 and self.config.getoption("--fail-on-degraded") and "degraded" in outcomes:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if session.exitstatus == 0 and "no_data" in outcomes and not self.config.getoption("--allow-no-data"):
            session.exitstatus = NO_DATA_EXIT
        metadata = _html_metadata(self.config)
        if metadata is not None:
            safety = [r["id"] for r in self.results if r.get("skipped_for_safety")]
            metadata["Skipped for safety"] = ", ".join(safety) or "none"
        self.final = self.summary()
        if "failed" in outcomes:
            dependencies.group(self.final, dependencies.probe(self.profile))
        history.annotate(self.final, history.load(self.history_dir, self.profile.name, self.location),
                         self.profile.history)

    @property
    def reports_root(self) -> Path:
        return Path(self.config.getoption("--reports-dir"))

    @property
    def history_dir(self) -> Path:
        return Path(self.config.getoption("--history") or self.reports_root / "history")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[Any], summary: list[Any], postfix: list[Any]) -> None:
        """report.html leads with what changed since the last run."""
        if self.final is not None and not self.is_worker:
            prefix.extend(html_report.changes(self.final))

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        metadata = _html_metadata(self.config)
        if metadata is None or self.is_worker:
            return
        for noisy in ("Packages", "Plugins", "Platform", "Python"):
            metadata.pop(noisy, None)
        metadata.update(html_report.metadata(self.profile, self.location, self.faults, self.started_at))

    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        if self.is_worker:
            return None
        p = self.profile
        lines = [f"veza env: {p.name} ({p.allow}) location: {self.location}  faults: {', '.join(self.faults) or 'none'}"]
        lines += [f"  {name}: {url}" for name, url in redact.data(p.endpoints()).items()]
        if not p.allows_writes:
            lines.append("  tests marked 'writes' are skipped for safety (read-only profile)")
        return lines

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Veza synthetic checks: {self.profile.name} ({self.location})"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        terminalreporter.section("veza-synthetics")
        for line in [*dependencies.headline(self.final), *terminal.changes(self.final)] if self.final else []:
            terminalreporter.write_line(line, bold=True)
        for line in terminal.lines(self.final["checks"] if self.final else self.results):
            terminalreporter.write_line(line)
        if self.report_dir is not None:
            terminalreporter.write_line(f"reports: {self.report_dir}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.is_worker:
            return
        try:
            run = self.final or self.summary()
            if self.report_dir is not None:
                reports.write_all(run, self.report_dir)
            gateway = config.getoption("--pushgateway")
            if gateway:
                failure = pushgateway.push(gateway, run)
                if failure:
                    print(f"veza-synthetics: {failure}")
            if self.final is not None and self.results:
                history.add(self.history_dir, self.final, self.profile.history.keep)
                kept = history.load(self.history_dir, self.profile.name, self.location).runs
                history_page.write(kept, self.profile.name, self.location, self.reports_root / "history.html")
        finally:
            if self.sandbox:
                self.sandbox.stop()

    def summary(self) -> dict[str, Any]:
        """The run as results.json holds it."""
        finished = dt.datetime.now(dt.UTC)
        started = dt.datetime.fromtimestamp(self.started_at, dt.UTC)
        return {
            "schema_version": SCHEMA_VERSION, "suite_version": __version__, "git_commit": html_report.git_commit(),
            "env": self.profile.name, "location": self.location, "allow": self.profile.allow,
            "endpoints": self.profile.endpoints(), "faults": self.faults,
            "started_at": started.isoformat(), "finished_at": finished.isoformat(),
            "duration_s": round((finished - started).total_seconds(), 2),
            "checks": sorted(self.results, key=lambda r: (r["category"], r["id"], r["variant"])),
        }


def _holds_together(config: pytest.Config) -> bool:
    """Under -n (xdist's default load distribution) the holding checks go to one worker together."""
    return bool(config.getoption("dist", "no") == "load")


def _symptom_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    symptom = callspec.params.get("symptom") if callspec else None
    return symptom if isinstance(symptom, str) else None


def _category_of(item: pytest.Item) -> str | None:
    symptom = _symptom_of(item)
    return catalog_mod.load().symptoms[symptom].category if symptom in catalog_mod.load().symptoms else None


def _html_metadata(config: pytest.Config) -> dict[str, Any] | None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return None
    return config.stash.get(metadata_key, None)


SANDBOX_MODULES = ("uvicorn", "starlette", "tomli_w", "jwt")


def _start_sandbox(faults: list[str], variant: str) -> "SandboxProcess":
    """The sandbox in a child process (the `sandbox` extra), when no --env names a real environment. It is
    ready before Prometheus's first scrapes: the checks that read Prometheus run last and wait for them."""
    missing = [name for name in SANDBOX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SetupError(f"no --env given and the sandbox is not installed ({', '.join(missing)} missing): "
                         "pass --env NAME|PATH, or pip install 'veza-synthetics[sandbox]'")
    base = ENV_DIR / ("sandbox.toml" if variant == "contract" else "sandbox-deployed.toml")
    if not base.exists():
        raise SetupError(f"no --env given and the sandbox's profile {base} is not there: run from the "
                         "veza-synthetics repository, or pass --env NAME|PATH")
    from .sandbox.process import SandboxProcess
    sandbox = SandboxProcess(inject=faults, base_profile=base, wait_prometheus=False, variant=variant)
    sandbox.start()
    return sandbox
