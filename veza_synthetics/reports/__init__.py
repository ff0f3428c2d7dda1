"""The run's files: reports/<UTC>-<env>-<pid>/ with report.html, junit.xml, results.json, summary.md,
allure-results/; one module per output. Everything written passes through redact.

pytest-html and pytest's junitxml write report.html and junit.xml; this package points them
at the run folder and feeds them (html.py); it writes the rest itself.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..hooks import RunFinished
from ..redact import Redactor
from . import allure, ecs, junit, markdown, results


def prepare_dir(config: pytest.Config, env_name: str) -> Path:
    """The run's folder, with pytest-html, junitxml and allure pointed into it; old runs pruned."""
    root = Path(config.getoption("--reports-dir"))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = root / f"{stamp}-{env_name}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(folder / "report.html")
        config.option.self_contained_html = True
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(folder / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(folder / "allure-results")
    _prune(root, config.getoption("--keep-reports"))
    return folder


def _prune(root: Path, keep: int) -> None:
    runs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name[:8].isdigit())
    for old in runs[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


@pytest.hookimpl
def pytest_veza_run_finished(finished: RunFinished) -> None:
    if finished.folder is not None:
        write_all(finished.result.document(), finished.folder, finished.redactor)
        facts = finished.result.facts
        with open(finished.folder / ecs.FILE, "w", encoding="utf-8") as lines:
            ecs.EcsLog(lines, facts.env, facts.location, finished.redactor).write(finished.result.records)
    xml = Path(getattr(finished.config.option, "xmlpath", None) or "")
    if xml.is_file():  # written by pytest's junitxml at the session's end, before this
        junit.mark_flaky(xml)
    allure_dir = getattr(finished.config.option, "allure_report_dir", None)
    if allure_dir and Path(allure_dir).is_dir():  # allure-pytest wrote each test's result as it finished
        allure.add_retries(Path(allure_dir))


def write_all(run: dict[str, Any], folder: Path, redactor: Redactor) -> None:
    """results.json and summary.md into the run folder; reports/latest points at it."""
    results.write(run, folder / "results.json", redactor)
    markdown.write(run, folder / "summary.md", redactor)
    latest = folder.parent / "latest"
    if latest.is_symlink():
        latest.unlink()
    elif latest.exists():
        shutil.rmtree(latest)
    latest.symlink_to(folder.name)
