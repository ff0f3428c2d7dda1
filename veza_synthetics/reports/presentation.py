"""What pytest shows of a run: report.html's summary, columns and metadata (pytest-html), and the terminal's
header and closing section. Plugin objects of their own beside the run (run.py), reading what it knows."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .. import dependencies
from . import html as html_report
from . import terminal

if TYPE_CHECKING:
    from ..run import Run


def _html_metadata(config: pytest.Config) -> dict[str, Any] | None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return None
    return config.stash.get(metadata_key, None)


class HtmlPresentation:
    """report.html (pytest-html): what changed first, what each check found beside its test, the run's facts."""

    def __init__(self, run: Run):
        self.run = run

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        metadata = _html_metadata(self.run.config)
        if metadata is None:
            return
        for noisy in ("Packages", "Plugins", "Platform", "Python"):
            metadata.pop(noisy, None)
        run = self.run
        metadata.update(html_report.metadata(run.profile, run.location, run.faults, run.started_at))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After the run gathered its records (tryfirst), before pytest-html writes (trylast)."""
        metadata = _html_metadata(self.run.config)
        if metadata is not None:
            skipped = [r.id for r in self.run.records if r.skipped_for_safety]
            metadata["Skipped for safety"] = ", ".join(skipped) or "none"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Veza synthetic checks: {self.run.profile.name} ({self.run.location})"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[Any], summary: list[Any], postfix: list[Any]) -> None:
        """report.html leads with what changed since the last run."""
        prefix.append(html_report.STYLE)
        if self.run.final is not None:
            prefix.extend(html_report.changes(self.run.final.document(), self.run.redactor))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[1:1] = html_report.TABLE_HEADERS  # after the test's own result: what the check found

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        cells[1:1] = html_report.table_cells(dict(report.user_properties), self.run.catalog, self.run.redactor)


class TerminalPresentation:
    """The header (the environment, its endpoints, what safety skips) and the closing section (root causes,
    changes, one line per check, logins, where the reports are)."""

    def __init__(self, run: Run):
        self.run = run

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        run, p = self.run, self.run.profile
        lines = [f"veza env: {p.name} ({p.allow}) location: {run.location}  faults: {', '.join(run.faults) or 'none'}"]
        lines += [f"  {name}: {url}" for name, url in run.redactor.data(p.endpoints()).items()]
        if not p.allows_writes:
            lines.append("  tests marked 'writes' are skipped for safety (read-only profile)")
        return lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run = self.run
        terminalreporter.section("veza-synthetics")
        results = (run.final or run.summary()).document()
        for line in [*dependencies.headline(results), *terminal.changes(results)] if run.final else []:
            terminalreporter.write_line(line, bold=True)
        for line in terminal.lines(results["checks"]):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"logins: {run.logins} (auth.max_logins_per_run = "
                                    f"{run.profile.auth.max_logins_per_run} per process)")
        if run.report_dir is not None:
            terminalreporter.write_line(f"reports: {run.report_dir}")
