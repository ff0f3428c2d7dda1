"""The part of a run that runs checks: registered in every process that executes tests (a sequential run,
or each xdist worker), beside the controller's run (run.py).

It keeps the records of the checks it ran (a maintenance window or the quarantine applied), skips what
the profile forbids, waits for a sandbox's first scrapes before the checks that read Prometheus, and
hands its records to the controller: directly in a sequential run, through xdist's `workeroutput`
from a worker.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import quarantine
from .catalog import Catalog
from .enrich import Context, enrich
from .profile import Profile
from .record import CheckRecord, skipped_record
from .sandbox_admin import AdminClient

CHECKING_PLUGIN = "veza-checking"
RECORDS_KEY = "veza_records"  # workeroutput key: the worker's records, as one JSON text (execnet carries only
# plain types within limits: a table size over 2**31 or a numpy figure would stop the whole output)
LOGINS_KEY = "veza_logins"
HTML_EXTRAS_KEY = pytest.StashKey[list[Any]]()
READS_PROMETHEUS = {"health", "performance"}  # check categories that need the sandbox's first scrapes


def option_list(config: pytest.Config, name: str) -> list[str]:
    return [item.strip() for item in (config.getoption(name) or "").split(",") if item.strip()]


def current(config: pytest.Config) -> Checking | None:
    part = config.pluginmanager.get_plugin(CHECKING_PLUGIN)
    return part if isinstance(part, Checking) else None


def symptom_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    symptom = callspec.params.get("symptom") if callspec else None
    return symptom if isinstance(symptom, str) else None


class Checking:
    def __init__(self, config: pytest.Config, profile: Profile, catalog: Catalog):
        self.config, self.profile, self.catalog = config, profile, catalog
        self.redactor = profile.redactor()  # what this process outputs (JUnit, pytest-html, Allure) masks
        self.records: list[CheckRecord] = []
        self.logins = 0  # made by this process's target (one session per account)
        self.prometheus_waited = False
        path = config.getoption("--quarantine")
        self.quarantine = quarantine.load(Path(path), dt.date.today()) if path else {}

    @property
    def context(self) -> Context:
        """What this run's records are enriched with (enrich.py): its profile, redactor and quarantine."""
        return Context(self.profile, self.redactor, self.quarantine)

    def add(self, record: CheckRecord) -> CheckRecord:
        """Keep a check's record, as every report shows it (enrich.py: links, this environment's runbook, a
        maintenance window, the quarantine)."""
        record = enrich(record, self.context)
        self.records.append(record)
        return record

    def category_of(self, item: pytest.Item) -> str | None:
        symptom = self.catalog.symptoms.get(symptom_of(item) or "")
        return symptom.category if symptom else None

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        wanted = set(option_list(config, "--symptoms"))
        if wanted:
            keep = [i for i in items if symptom_of(i) in wanted]
            deselected = [i for i in items if i not in keep]
            if deselected:
                config.hook.pytest_deselected(items=deselected)
                items[:] = keep
        if self.profile.sandbox.admin_url:  # the others run while the sandbox's Prometheus takes its first scrapes
            items.sort(key=lambda i: self.category_of(i) in READS_PROMETHEUS)
        guard = self.harness_timeout_s()
        for item in items:  # pytest-timeout's limit, above the run's deadline: a last guard, never a check's end
            if symptom_of(item) and not item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(guard))

    def harness_timeout_s(self) -> float:
        """The longest a check item may take: the run's deadline (the sample stops at it), then a stream download
        and two holds, each bounded by its own settings, and a minute's margin."""
        p = self.profile
        return p.timeouts.run_s + p.timeouts.stream_s + 2 * max(p.holds.ws_hold_s, p.holds.session_s) + 60

    def _wait_for_first_scrapes(self) -> None:
        """Before the first check that reads a sandbox's Prometheus: every target scraped (the sandbox's
        admin API answers at once when that is long done)."""
        self.prometheus_waited = True
        AdminClient(self.profile.sandbox.admin_url).prometheus_ready()

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if (not self.prometheus_waited and self.profile.sandbox.admin_url and self.profile.has_prometheus
                and self.category_of(item) in READS_PROMETHEUS):
            self._wait_for_first_scrapes()
        reason = None
        if item.get_closest_marker("writes") and self.profile.writes_skipped:
            reason = self.profile.writes_skipped
        elif item.get_closest_marker("destructive") and self.profile.kind != "sandbox":
            reason = f"skipped for safety: destructive tests never run against '{self.profile.name}'"
        if reason is None:
            return
        symptom = symptom_of(item)
        if symptom:
            variant = "writes" if item.get_closest_marker("writes") else "read-only"
            self.records.append(skipped_record(self.catalog.symptoms.get(symptom), symptom, variant, reason))
        pytest.skip(reason)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        """Hand the check's HTML block to pytest-html (whose wrapper runs outside this one)."""
        outcome = yield
        report = outcome.get_result()
        extras = item.stash.get(HTML_EXTRAS_KEY, [])
        if report.when == "call" and extras:
            report.extras = [*getattr(report, "extras", []), *extras]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """An xdist worker sends its records to the controller (pytest-xdist's workeroutput)."""
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[RECORDS_KEY] = json.dumps([record.to_json() for record in self.records], default=str)
            workeroutput[LOGINS_KEY] = self.logins
