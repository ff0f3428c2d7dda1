"""The project's own tests: one sandbox for the session, switched between faults."""
import zlib

import pytest
from xdist.scheduler import LoadScopeScheduling

from veza_synthetics.profile import ENV_DIR
from veza_synthetics.sandbox.process import SandboxProcess


@pytest.fixture(scope="session")
def sandbox():
    proc = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def sandbox_profile(sandbox):
    from veza_synthetics.profile import load
    return load(str(sandbox.profile_path))


# The cells (a fault switched on, the checks judged) each take seconds to a minute: xdist spreads them one by
# one over the workers; every other file goes whole to one worker (their module fixtures start once).
CELLS = ("test_detection_matrix.py::", "test_pipelines.py::test_nightly_", "test_deadline.py::test_under_a_real_fault")
# What takes longest goes first (longest processing time first), so no worker is left with a minute-long cell
# at the end: a throttled canary downloaded twice, the dead-target runs, the healthy runs, slow connects.
LONGEST_FIRST = ("stream.throttle", "blackhole", "test_healthy_runs", "test_serve.py", "test_serve_budget.py",
                 "test_doctor.py", "db.slow_connect", "test_plugin.py", "test_dashboard.py", "perf.latency", "db.lock_held",
                 "test_tracing.py", "perf.hang",
                 "test_history.py")


# The deployed variant's cells need a second sandbox of their own: they go to two workers only (half with the
# file's other tests, half apart), so two such sandboxes start and idle, not one per worker.
DEPLOYED_CELL = "test_deployed.py::test_detection_holds"


class CellsApart(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        if DEPLOYED_CELL in nodeid:
            return file if zlib.crc32(nodeid.encode()) % 2 else f"{file} (second half of its cells)"
        return nodeid if any(cell in nodeid for cell in CELLS) else file


def pytest_xdist_make_scheduler(config, log):
    config.option.loadscopereorder = False  # the collection's order (longest first) is the queue's
    return CellsApart(config, log)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        return next((i for i, slow in enumerate(LONGEST_FIRST) if slow in item.nodeid), len(LONGEST_FIRST))
    items.sort(key=rank)  # stable: the rest keep their order, files stay together
