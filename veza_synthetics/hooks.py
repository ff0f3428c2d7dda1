"""The plugin's own hook: the one step every report writer subscribes to (pytest_addhooks registers it)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .profile import Profile
from .redact import Redactor
from .run_result import RunResult


@dataclass(frozen=True)
class RunFinished:
    """A finished run, as every writer sees it: its result (facts, typed records, root causes, trends; its
    results.json document), where its files go, and the options it ran with."""
    result: RunResult
    folder: Path | None  # this run's report folder (None when reports are not written)
    reports_root: Path
    history_dir: Path
    profile: Profile
    redactor: Redactor  # the run's: its profile's secrets, masked in whatever a writer writes
    config: pytest.Config
    completed: bool  # the checks' phase ended (else the run stopped before: no history is kept of it)


@pytest.hookspec
def pytest_veza_run_finished(finished: RunFinished) -> None:
    """Called once on the controller after the last check, before the sandbox stops: write a report."""
