"""The pytest plugin, loaded by its `pytest11` entry point (or `-p veza_synthetics`).

It adds the options, markers and the plugin's hook (hooks.py), parametrizes `symptom` from the
catalog, loads the fixtures (fixtures.py), and, when a run targets Veza, registers its parts
with the plugin manager: on the controller the run (run.py: profile, sandbox, records, exit
status), its presentation in pytest-html and the terminal (reports/presentation.py) and the report
writers that subscribe to its end; wherever tests execute, the checking
part (checking.py: safety skips, records, sent back from xdist workers).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import catalog as catalog_mod
from . import checking, fixtures, hooks, reports
from .checks import registry
from .errors import SetupError
from .profile import SANDBOX_VARIANTS
from .profile import load as load_profile
from .reports import history_page, pushgateway
from .reports.presentation import HtmlPresentation, TerminalPresentation
from .run import NO_DATA_EXIT, PROFILE_VAR, RUN_PLUGIN, Run

WRITERS = (reports, pushgateway, history_page)  # each implements hooks.pytest_veza_run_finished

CHECKS_DIR = "tests_synthetic"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("veza", "veza-synthetics")
    group.addoption("--env", default=None, help="environment profile: a name in fixtures/environments or a .toml path "
                    "(default: $VEZA_ENV, else the sandbox)")
    group.addoption("--inject", default="", help="sandbox only: fault ids to switch on, comma-separated")
    group.addoption("--symptoms", default="", help="run only these check ids, comma-separated (default: all)")
    group.addoption("--location", default=None, help="label of where this run runs (default: the profile's)")
    group.addoption("--pushgateway", default=None, help="push one gauge set per check to this Prometheus Pushgateway URL")
    group.addoption("--reports-dir", default="reports", help="folder for the run folders (default: reports)")
    group.addoption("--keep-reports", type=int, default=20, help="how many run folders to keep (default: 20)")
    group.addoption("--quarantine", default="", help="a quarantine file (TOML): checks that report but do not fail "
                                                      "the gate, each with an owner, a reason and an expiry date")
    group.addoption("--history", default="", help="folder of past results.json for trends (default: REPORTS_DIR/history; "
                                                   "the last history.keep runs per env and location)")
    group.addoption("--sandbox-variant", default="contract", choices=tuple(SANDBOX_VARIANTS),
                    help="the sandbox's shape: the guide's contract (default), the public Veza code with its dev "
                         "server (deployed) or with its production server (production-server)")
    group.addoption("--fail-on-degraded", action="store_true", help="exit 1 when a check is degraded")
    group.addoption("--allow-no-data", action="store_true",
                    help=f"exit 0 when a check measured nothing (default: exit {NO_DATA_EXIT}; veza-synth run: 3)")


def targets_veza(config: pytest.Config) -> bool:
    """Does this run check Veza? Yes when given a profile or a check option, or when it collects
    tests_synthetic/; the plugin stays out of every other pytest run (the project's own tests)."""
    if any(config.getoption(name) for name in ("--env", "--inject", "--symptoms")) or os.environ.get("VEZA_ENV"):
        return True
    return any(CHECKS_DIR in Path(str(arg).split("::")[0]).resolve().parts for arg in config.args)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    catalog = catalog_mod.load()
    for name, description in catalog.markers().items():
        config.addinivalue_line("markers", f"{name}: {description}")
    if not config.pluginmanager.has_plugin(fixtures.__name__):
        config.pluginmanager.register(fixtures, fixtures.__name__)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: it runs checks against the controller's profile
        if PROFILE_VAR in workerinput:
            profile = load_profile(workerinput[PROFILE_VAR])
            config.pluginmanager.register(checking.Checking(config, profile, catalog), checking.CHECKING_PLUGIN)
        return
    if not targets_veza(config):
        return
    try:
        run = Run.start(config, catalog)
    except SetupError as exc:
        _push_could_not_start(config)
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(run, RUN_PLUGIN)
    config.pluginmanager.register(HtmlPresentation(run), f"{RUN_PLUGIN}-html")
    config.pluginmanager.register(TerminalPresentation(run), f"{RUN_PLUGIN}-terminal")
    for writer in WRITERS:
        config.pluginmanager.register(writer, f"veza-writer-{writer.__name__}")
    # under -n the controller collects nothing and this part stays empty; sequential, the checks run here
    config.pluginmanager.register(checking.Checking(config, run.profile, catalog), checking.CHECKING_PLUGIN)


def _push_could_not_start(config: pytest.Config) -> None:
    """A run that cannot start still tells the Pushgateway, labelled with the --env it was given."""
    gateway = config.getoption("--pushgateway")
    if gateway:
        env = Path(config.getoption("--env") or os.environ.get("VEZA_ENV") or "sandbox").stem
        failure = pushgateway.push_run(gateway, env, config.getoption("--location") or "unknown", started=False)
        if failure:
            print(f"veza-synthetics: {failure}")


UNCHECKED = pytest.StashKey[int]()
VEZA_FIXTURES = ("veza_diagnose", "veza_verdict", "veza_profile", "veza_target")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Count the checks a run without an environment collects: they will be skipped, and the run says why."""
    if checking.current(config) is None:
        config.stash[UNCHECKED] = sum(1 for item in items
                                      if set(VEZA_FIXTURES) & set(getattr(item, "fixturenames", ())))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    unchecked = config.stash.get(UNCHECKED, 0)
    if unchecked:
        terminalreporter.write_line(
            f"veza-synthetics: {unchecked} checks not run: no environment selected (pass --env NAME|PATH, "
            f"or run `pytest {CHECKS_DIR}` for the sandbox)", yellow=True, bold=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`symptom` is parametrized from the catalog: the module's category, writes or not."""
    if "symptom" not in metafunc.fixturenames:
        return
    categories = {m.name for m in metafunc.definition.iter_markers()} & set(catalog_mod.CATEGORIES)
    writes = metafunc.definition.get_closest_marker("writes") is not None
    part = checking.current(metafunc.config)
    catalog = part.catalog if part is not None else catalog_mod.load()  # the run's
    checks = registry(catalog).checks
    ids = [s.id for s in catalog.symptoms.values() if s.category in categories and (s.id, writes) in checks]
    metafunc.parametrize("symptom", ids, ids=ids)
