"""The pytest hooks: --env/--inject/--symptoms options, the sandbox's lifecycle, symptom
parametrization, safety skips, and collecting results for the run's report files.
(The fixtures the checks use are in fixtures/suite.py; a check's run is in diagnosis.py.)
"""
from __future__ import annotations

import json
import os
import time

import httpx
import pytest

from . import catalog as catalog_mod
from . import redact
from . import report as reports
from .checks import CHECKS
from .errors import SetupError
from .profile import ENV_DIR, Profile, load as load_profile
from .sandbox import faults as fault_ids
from .sandbox.process import SandboxProcess

PROFILE_VAR = "VEZA_SYNTH_PROFILE"  # the resolved profile's path, handed to xdist workers
RESULT_KEY = "veza_result"  # the check's record, carried from workers to the controller


def pytest_addoption(parser):
    group = parser.getgroup("veza", "veza-synthetics")
    group.addoption("--env", default=None, help="environment profile: a name in fixtures/environments or a .toml path "
                    "(default: $VEZA_ENV, else the sandbox)")
    group.addoption("--inject", default="", help="sandbox only: fault ids to switch on, comma-separated")
    group.addoption("--symptoms", default="", help="run only these check ids, comma-separated (default: all)")
    group.addoption("--location", default=None, help="label of where this run runs (default: the profile's)")
    group.addoption("--pushgateway", default=None, help="push one gauge set per check to this Prometheus Pushgateway URL")
    group.addoption("--reports-dir", default="reports", help="folder for the run folders (default: reports)")
    group.addoption("--keep-reports", type=int, default=20, help="how many run folders to keep (default: 20)")


def _option_list(config, name: str) -> list[str]:
    return [item.strip() for item in (config.getoption(name) or "").split(",") if item.strip()]


def _runs_checks(config) -> bool:
    """The plugin only acts on runs that collect tests_synthetic (not on the project's own tests)."""
    return any("tests_synthetic" in os.path.abspath(str(a)) for a in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.veza = None
    if not _runs_checks(config):
        return
    if hasattr(config, "workerinput"):
        config.veza = RunState(load_profile(config.workerinput[PROFILE_VAR]), config)
        return
    try:
        config.veza = RunState.start(config)
    except SetupError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure_node(node):
    """xdist: the workers use the controller's profile (and so its one sandbox)."""
    node.workerinput[PROFILE_VAR] = node.config.veza.profile_path


def pytest_unconfigure(config):
    state = getattr(config, "veza", None)
    if state is not None and not hasattr(config, "workerinput"):
        state.finish()


def _may_select(config, markers: set[str]) -> bool:
    """Could the -m expression select a check of these categories? (Without -m: yes.)"""
    from _pytest.mark.expression import Expression
    expression = config.getoption("markexpr")
    if not expression:
        return True
    compiled = Expression.compile(expression)
    return any(compiled.evaluate(lambda name, category=category, **_: name == category) for category in markers)


class RunState:
    """Everything the run knows: the profile, the sandbox it may own, the results, the report folder."""

    def __init__(self, profile: Profile, config, profile_path: str = ""):
        self.profile = profile
        self.profile_path = profile_path or profile.source
        self.config = config
        self.sandbox: SandboxProcess | None = None
        self.faults: list[str] = []
        self.results: list[dict] = []
        self.started_at = time.time()
        self.location = config.getoption("--location") or profile["location"]
        self.report_dir = None
        redact.register(*profile.secrets())

    @classmethod
    def start(cls, config) -> "RunState":
        env = config.getoption("--env") or os.environ.get("VEZA_ENV") or "sandbox"
        faults = fault_ids.validate(_option_list(config, "--inject"))
        unknown = set(_option_list(config, "--symptoms")) - set(catalog_mod.load().symptoms)
        if unknown:
            raise SetupError(f"--symptoms: unknown check id(s): {', '.join(sorted(unknown))}")
        sandbox = None
        if env == "sandbox":
            sandbox = SandboxProcess(inject=faults, base_profile=ENV_DIR / "sandbox.toml",
                                     wait_prometheus=_may_select(config, {"health", "performance"}))
            path = sandbox.start()
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
        state = cls(profile, config, path)
        state.sandbox = sandbox
        state.faults = faults or state.sandbox_faults()
        state.report_dir = reports.prepare_dir(config, profile.name)
        return state

    def sandbox_faults(self) -> list[str]:
        """Faults already on in a sandbox this run did not start (the matrix switches them)."""
        admin = self.profile["sandbox"]["admin_url"]
        if not admin:
            return []
        try:
            return httpx.get(f"{admin}/faults", timeout=2).json()["active"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []

    def finish(self) -> None:
        try:
            if self.report_dir is not None:
                reports.write_all(self)
            gateway = self.config.getoption("--pushgateway")
            if gateway:
                reports.push(gateway, self)
        finally:
            if self.sandbox:
                self.sandbox.stop()


# -- parametrization and safety ----------------------------------------------------------
def pytest_generate_tests(metafunc):
    """`symptom` is parametrized from the catalog: the module's category, writes or not."""
    if "symptom" not in metafunc.fixturenames:
        return
    categories = {m.name for m in metafunc.definition.iter_markers()} & set(catalog_mod.CATEGORIES)
    writes = metafunc.definition.get_closest_marker("writes") is not None
    ids = [s.id for s in catalog_mod.load().symptoms.values()
           if s.category in categories and (s.id, writes) in CHECKS]
    metafunc.parametrize("symptom", ids, ids=ids)


def pytest_collection_modifyitems(config, items):
    wanted = set(_option_list(config, "--symptoms"))
    if not wanted or config.veza is None:
        return

    def symptom_of(item):
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("symptom") if callspec else None

    keep = [i for i in items if symptom_of(i) in wanted]
    deselected = [i for i in items if i not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def pytest_runtest_setup(item):
    state = item.config.veza
    if state is None:
        return
    if item.get_closest_marker("writes") and not state.profile.allows_writes:
        pytest.skip(f"skipped for safety: profile '{state.profile.name}' forbids writes")
    if item.get_closest_marker("destructive") and state.profile["kind"] != "sandbox":
        pytest.skip(f"skipped for safety: destructive tests never run against '{state.profile.name}'")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Hand the check's HTML block to pytest-html (whose wrapper runs outside this one)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and getattr(item, "veza_extras", None):
        report.extras = [*getattr(report, "extras", []), *item.veza_extras]


# -- collecting results on the controller --------------------------------------------------
_STATE: dict = {}


def pytest_runtest_logreport(report):
    state = _STATE.get("state")
    if state is None:
        return
    for key, value in report.user_properties:
        if key == RESULT_KEY and report.when == "call":
            state.results.append(json.loads(value))
    if report.when == "setup" and report.skipped and "skipped for safety" in str(report.longrepr):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        sid = report.nodeid.split("[")[-1].rstrip("]")
        state.results.append(reports.skipped_record(sid, report.nodeid, reason.removeprefix("Skipped: ")))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    state = _STATE["state"] = getattr(session.config, "veza", None)
    if state is not None and not hasattr(session.config, "workerinput"):
        from pytest_metadata.plugin import metadata_key
        metadata = session.config.stash[metadata_key]
        for noisy in ("Packages", "Plugins", "Platform", "Python"):
            metadata.pop(noisy, None)
        metadata.update(reports.html_metadata(state))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    state = _STATE.get("state")
    if state is not None and not hasattr(session.config, "workerinput"):
        from pytest_metadata.plugin import metadata_key
        safety = [r["id"] for r in state.results if r.get("skipped_for_safety")]
        session.config.stash[metadata_key]["Skipped for safety"] = ", ".join(safety) or "none"


def pytest_report_header(config):
    state = getattr(config, "veza", None)
    if state is None or hasattr(config, "workerinput"):
        return None
    p = state.profile
    lines = [f"veza env: {p.name} ({p['allow']}) location: {state.location}  faults: {', '.join(state.faults) or 'none'}"]
    lines += [f"  {name}: {url}" for name, url in p.endpoints().items()]
    if not p.allows_writes:
        lines.append("  tests marked 'writes' are skipped for safety (read-only profile)")
    return lines


def pytest_html_report_title(report):
    state = _STATE.get("state")
    if state is not None:
        report.title = f"Veza synthetic checks: {state.profile.name} ({state.location})"


def pytest_terminal_summary(terminalreporter, config):
    state = getattr(config, "veza", None)
    if state is None or hasattr(config, "workerinput"):
        return
    terminalreporter.section("veza-synthetics")
    for line in reports.terminal_lines(state.results):
        terminalreporter.write_line(line)
    if state.report_dir is not None:
        terminalreporter.write_line(f"reports: {state.report_dir}")
