"""Run-to-run memory: each check's trend against the past runs of its env and location, the nightly's
open/comment/quiet decision, and a history that survives corrupt or foreign files."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from veza_synthetics import history
from veza_synthetics.profile import History

REPO = Path(__file__).resolve().parents[1]
SETTINGS = History()


def _run(started: str, outcome: str, env: str = "production", location: str = "ci") -> dict:
    return {"schema_version": 2, "env": env, "location": location, "started_at": started,
            "checks": [{"id": "db.slow_queries", "variant": "read-only", "outcome": outcome, "summary": "x: y"}]}


def _trend(outcomes: list[str]) -> dict | None:
    past = [_run(f"2026-11-{day + 1:02d}T02:00:00", o) for day, o in enumerate(outcomes[:-1])]
    now = _run(f"2026-11-{len(outcomes):02d}T02:00:00", outcomes[-1])
    return history.trend(now["checks"][0], now["started_at"], past, SETTINGS)


def test_each_trend_state_from_its_sequence():
    assert _trend(["passed"])["state"] == "stable"
    assert _trend(["passed", "failed"]) == {"state": "new", "since": "2026-11-02T02:00:00", "runs": 1}
    assert _trend(["passed", "failed", "failed", "failed"]) == {"state": "still_failing", "since": "2026-11-02T02:00:00",
                                                                 "runs": 3}
    assert _trend(["failed", "failed", "passed"]) == {"state": "recovered", "since": "2026-11-03T02:00:00", "runs": 2}
    assert _trend(["passed", "failed", "passed", "failed"])["state"] == "flapping"
    assert _trend(["passed", "degraded", "passed"])["state"] == "stable"  # degraded is not failing
    assert _trend(["passed", "failed", "no_data"]) is None                 # nothing measured: no trend


def test_an_unconfirmed_failure_counts_towards_flapping_and_nothing_else():
    def flaky(started: str) -> dict:
        run = _run(started, "passed")
        run["checks"][0]["attempts"] = [{"outcome": "failed"}, {"outcome": "passed"}]
        return run
    one = flaky("2026-11-02T02:00:00")
    assert history.trend(one["checks"][0], one["started_at"], [_run("2026-11-01T02:00:00", "passed")],
                         SETTINGS)["state"] == "stable"              # one blip: two changes, not a recovery
    past = [_run("2026-11-01T02:00:00", "passed"), flaky("2026-11-02T02:00:00")]
    now = flaky("2026-11-03T02:00:00")
    assert history.trend(now["checks"][0], now["started_at"], past, SETTINGS)["state"] == "flapping"


def test_no_data_and_skipped_runs_do_not_break_a_streak():
    past = [_run("2026-11-01T02:00:00", "failed"), _run("2026-11-02T02:00:00", "no_data")]
    now = _run("2026-11-03T02:00:00", "failed")
    assert history.trend(now["checks"][0], now["started_at"], past, SETTINGS)["state"] == "still_failing"


def test_flapping_is_settable():
    flaky = ["passed", "failed", "passed", "failed"]
    past = [_run(str(i), o) for i, o in enumerate(flaky)]
    assert history.trend(_run("z", "passed")["checks"][0], "z", past, SETTINGS)["state"] == "flapping"
    assert history.trend(_run("z", "passed")["checks"][0], "z", past, History(flap_changes=5))["state"] == "recovered"


def test_corrupt_and_foreign_files_are_named_and_skipped(tmp_path):
    where = history.folder(tmp_path, "production", "ci")
    where.mkdir(parents=True)
    (where / "broken.json").write_text("{not json")
    (where / "notes.txt").write_text("hello")
    (where / "other.json").write_text(json.dumps(_run("2026-11-01T02:00:00", "failed", env="staging")))
    history.add(tmp_path, _run("2026-11-02T02:00:00", "passed"), keep=30)
    past = history.load(tmp_path, "production", "ci")
    assert len(past.runs) == 1
    assert sorted(s.split(":")[0] for s in past.skipped) == ["broken.json", "notes.txt", "other.json"]


def test_the_history_is_bounded(tmp_path):
    for day in range(1, 8):
        history.add(tmp_path, _run(f"2026-11-{day:02d}T02:00:00", "passed"), keep=5)
    runs = history.load(tmp_path, "production", "ci").runs
    assert [r["started_at"][:10] for r in runs] == [f"2026-11-{d:02d}" for d in range(3, 8)]


def _suite(profile: Path, reports: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile), "-p",
                           "no:cacheprovider", "-q", "--reports-dir", str(reports), "--history", str(reports / "h"),
                           "--symptoms", "stream.audio_cut", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def _notify(results: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "veza_synthetics", "notify", str(results)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.strip().splitlines())


def test_a_fault_on_still_on_off_and_flapping(sandbox, tmp_path):
    """Five nights against the sandbox: each run's trend, what its reports lead with, and the nightly's news."""
    seen = []
    for night, fault in enumerate([None, "stream.truncate", "stream.truncate", None, "stream.truncate"], 1):
        with sandbox.faults_on([fault] if fault else []):
            run = _suite(sandbox.profile_path, tmp_path)
        latest = tmp_path / "latest"
        if night >= 4:  # Allure 3's report of the run, its history kept beside the suite's
            _allure(latest, tmp_path / "h")
        check = json.loads((latest / "results.json").read_text())["checks"][0]
        news = _notify(latest / "results.json")
        summary = (latest / "summary.md").read_text()
        seen.append((check["trend"]["state"], news["action"]))
        if check["trend"]["state"] == "new":
            assert news["title"].startswith("Synthetics sandbox (sandbox) ") and "new failure stream.audio_cut" in news["title"]
            assert "NEW       stream.audio_cut" in run.stdout
            assert summary.index("## Changed since the last run") < summary.index("## What is wrong")
            assert "Since the last run:" in (latest / "report.html").read_text()
        if check["trend"]["state"] == "recovered":
            assert "RECOVERED stream.audio_cut: passes again after 2 failed run(s)" in run.stdout
            assert "**RECOVERED** `stream.audio_cut` after 2 failed run(s)" in summary
    assert seen == [("stable", "quiet"), ("new", "open"), ("still_failing", "quiet"), ("recovered", "comment"),
                    ("flapping", "quiet")], seen
    _history_page_renders(tmp_path)
    allure_history = history.folder(tmp_path / "h", "sandbox", "sandbox") / history.ALLURE_HISTORY
    assert len(allure_history.read_text().splitlines()) == 2  # nights 4 and 5
    summary = json.loads((tmp_path / "latest" / "allure-report" / "summary.json").read_text())
    assert summary["stats"]["failed"] == 1 and not summary.get("newTests"), summary  # known from its history
    assert any((tmp_path / "latest" / "allure-report" / "data" / "history").iterdir())


def _allure(run: Path, history_dir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "veza_synthetics", "allure", str(run), "--history", str(history_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (run / "allure-report" / "index.html").exists()


def _history_page_renders(reports: Path) -> None:
    """reports/history.html in headless Chromium: the strip of five outcomes, the sparkline, the figures."""
    from html.parser import HTMLParser

    from test_reports import CHROMIUM_FLAGS
    page = reports / "history.html"
    assert page.exists() and 'href="../history.html"' in (reports / "latest" / "report.html").read_text()
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make setup`"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={reports / 'chromium'}", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout

    class Cells(HTMLParser):
        cells, svgs, text = 0, 0, []

        def handle_starttag(self, tag, attrs):
            self.cells += tag == "span" and ("class", "cell") in attrs
            self.svgs += tag == "svg"

        def handle_data(self, data):
            self.text.append(data)
    parsed = Cells()
    parsed.feed(dom)
    text = " ".join(parsed.text)
    assert "stream.audio_cut" in text and "40 % of 5" in text and "mean time to recover" in text, text[:500]
    assert parsed.cells >= 5 and parsed.svgs >= 1
