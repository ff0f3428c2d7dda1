"""After a run with an injected fault, every report file exists, parses, names the failed symptom,
carries its measurements and remedies, and holds none of the profile's secrets."""
import html as html_lib
import json
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from veza_synthetics.sandbox_admin import AdminClient

REPO = Path(__file__).resolve().parents[1]
TRACE, LOGS = "https://jaeger.example/trace/{trace_id}", "https://logs.example/?q={request_id}&from={start}&to={end}"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def truncated_run(sandbox, tmp_path_factory):
    """`pytest -m streaming` with stream.truncate on: the issue's reference incident."""
    reports = tmp_path_factory.mktemp("reports")
    linked = reports.parent / "linked.toml"  # the sandbox's profile with the platform's tools to link to
    linked.write_text(f'extends = "{sandbox.profile_path}"\n[links]\ntrace = "{TRACE}"\nlogs = "{LOGS}"\n')
    with sandbox.faults_on(["stream.truncate"]):
        run = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(linked),
                              "-m", "streaming", "-p", "no:cacheprovider", "--reports-dir", str(reports)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    profile = tomllib.loads(sandbox.profile_path.read_text())
    stream_secret = AdminClient(profile["sandbox"]["admin_url"]).stream_secret()["secret"]
    secrets = [stream_secret, profile["postgres"]["password"], profile["redis"]["password"],
               profile["accounts"]["user_password"], profile["accounts"]["admin_password"]]
    return run, (reports / "latest").resolve(), secrets


def test_a_failure_links_to_its_trace_and_its_requests_logs_in_every_format(truncated_run):
    _, folder, _ = truncated_run
    results = json.loads((folder / "results.json").read_text())
    cut = next(c for c in results["checks"] if c["id"] == "stream.audio_cut")
    assert cut["outcome"] == "failed"
    traces = [link["url"] for link in cut["links"] if link["kind"] == "trace"]
    assert traces == [f"https://jaeger.example/trace/{a['trace_id']}" for a in cut["attempts"]]
    download = cut["evidence"]["stream"]["request"]
    logs = [link["url"] for link in cut["links"] if link["kind"] == "logs"]
    assert len(logs) == 1 and logs[0].startswith(f"https://logs.example/?q={download['request_id']}&from=20")
    html = (folder / "report.html").read_text()
    assert traces[0] in html and "Find it on the platform" in html
    assert traces[0] in (folder / "summary.md").read_text()
    junit_links = {p.get("value") for p in ET.parse(folder / "junit.xml").getroot().iter("property")
                   if p.get("name") == "link: trace of measurement 1"}
    assert traces[0] in junit_links
    passed = [c for c in results["checks"] if c["outcome"] == "passed"]
    assert passed and not any(link["kind"] in ("trace", "logs") for c in passed for link in c.get("links") or [])


def test_every_file_is_there(truncated_run):
    run, folder, _ = truncated_run
    assert run.returncode == 1
    for name in ("report.html", "junit.xml", "results.json", "summary.md", "allure-results"):
        assert (folder / name).exists(), name


def test_results_json_follows_the_schema(truncated_run):
    _, folder, _ = truncated_run
    run = json.loads((folder / "results.json").read_text())
    for key in ("schema_version", "env", "location", "started_at", "finished_at", "duration_s", "faults", "checks"):
        assert key in run
    assert run["faults"] == ["stream.truncate"]
    cut = next(c for c in run["checks"] if c["id"] == "stream.audio_cut")
    for key in ("id", "category", "outcome", "summary", "conditions", "errors", "measurements", "thresholds",
                "evidence", "runbook", "attempts"):
        assert key in cut
    assert run["schema_version"] == 3 and cut["errors"] == []  # the probe measured: a condition failed
    assert cut["measurements"]["stream.bytes"] < cut["measurements"]["stream.content_length"]  # keyed by step
    assert set(cut["evidence"]) == {"stream"}
    assert cut["outcome"] == "failed" and cut["category"] == "streaming"
    assert cut["measurements"]["missing_bytes"] > 0
    assert not cut["runbook"]["solutions"].startswith("Solutions"), "the guide's remedies, not its heading"
    assert "iftop" in cut["runbook"]["solutions"] and cut["runbook"]["prevention"]


def test_junit_carries_symptom_and_measurements(truncated_run):
    _, folder, _ = truncated_run
    root = ET.parse(folder / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if "stream.audio_cut" in c.get("name"))
    assert case.find("failure") is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["symptom"] == "stream.audio_cut" and props["outcome"] == "failed"
    assert "missing_bytes" in props and props["verdict"].startswith("stream.audio_cut: ")
    junit, results = (folder / "junit.xml").stat().st_size, (folder / "results.json").stat().st_size
    assert "veza_result" not in props and junit < results / 2, "junit.xml carries the verdict, not the record"


def test_summary_md_names_the_failure_and_the_first_remedy(truncated_run):
    _, folder, _ = truncated_run
    text = (folder / "summary.md").read_text()
    assert text.startswith("# ") and "**FAILED** `stream.audio_cut`" in text and "First remedy" in text
    assert "report.html" in text


def test_allure_results_have_epic_story_and_attachments(truncated_run):
    _, folder, _ = truncated_run
    results = [json.loads(p.read_text()) for p in (folder / "allure-results").glob("*-result.json")]
    cut = next(r for r in results if "stream.audio_cut" in r["name"])
    labels = {label["name"]: label["value"] for label in cut["labels"]}
    assert labels["epic"] == "streaming" and labels["story"].startswith("stream.audio_cut")
    assert labels["severity"] == "normal" and cut["status"] == "failed"
    names = {a["name"] for a in cut.get("attachments", [])}
    assert {"evidence", "runbook", "stream timeline"} <= names
    assert any(link["url"].startswith("https://jaeger.example/trace/") for link in cut.get("links", [])), cut.get("links")


def test_no_secret_in_any_file(truncated_run):
    run, folder, secrets = truncated_run
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"{path.name} leaks a secret"
        assert "sig=" not in text or "sig=[REDACTED]" in text, f"{path.name} holds a stream signature"
    for secret in secrets:
        assert secret not in run.stdout + run.stderr


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.chunks = []

    def handle_data(self, data):
        self.chunks.append(data)


def test_html_report_shows_verdict_and_remedies_without_a_click(truncated_run, tmp_path):
    """Rendered by headless Chromium: the failed check's verdict and the guide's remedies are on the page."""
    _, folder, _ = truncated_run
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make setup`"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", (folder / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    parser = _Text()
    parser.feed(dom)
    visible = " ".join(parser.chunks)
    assert "stream.audio_cut: received" in visible and "Solutions" in visible and "Prévention" in visible
    shot = folder / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1400,1800", (folder / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


# Run in the rendered page: how wide the document is against the window, the elements that stick out past
# its right edge, and the results table's column headers and first rows as the reader sees them.
MEASURE_LAYOUT = """<script>window.addEventListener("load", () => setTimeout(() => {
  const w = document.documentElement.clientWidth;
  const out = [...document.querySelectorAll("body *")].filter(e => e.offsetParent !== null
      && e.getBoundingClientRect().right > w + 1).map(e => e.tagName + "." + e.className).slice(0, 8);
  const head = [...document.querySelectorAll("#results-table th")].filter(e => e.offsetParent !== null)
      .map(e => e.textContent.trim());
  const rows = [...document.querySelectorAll("#results-table tbody tr")].map(r => r.textContent).slice(0, 40);
  document.body.setAttribute("data-layout", JSON.stringify({w, scroll: document.documentElement.scrollWidth, out,
                                                           head, rows}));
}, 500));</script>"""


@pytest.mark.parametrize("width,height", [(1366, 900), (390, 844)], ids=["laptop", "phone"])
def test_the_report_reads_at_a_glance_on_a_laptop_and_a_phone(truncated_run, tmp_path, width, height):
    """Rendered in Chromium: each row has its symptom, category, outcome and one-line verdict (passed rows
    too), and nothing is wider than the window."""
    _, folder, _ = truncated_run
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make setup`"
    page = tmp_path / "report.html"
    page.write_text((folder / "report.html").read_text().replace("</body>", MEASURE_LAYOUT + "</body>"))
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000",
             f"--window-size={width},{height}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, dom[-2000:]
    layout = json.loads(html_lib.unescape(found[1]))
    assert layout["scroll"] <= layout["w"] and not layout["out"], layout
    assert layout["head"][1:5] == ["Symptom", "Category", "Outcome", "Verdict"], layout["head"]
    rows = " ".join(layout["rows"])
    assert "stream.audio_cut" in rows and "streaming" in rows and "received" in rows
    assert "passed" in rows, "passed rows carry their verdict too"
    subprocess.run([chromium, *flags, f"--screenshot={tmp_path / f'report-{width}.png'}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert (tmp_path / f"report-{width}.png").stat().st_size > 10_000


def test_a_failure_the_re_measurement_did_not_confirm_is_flaky_in_every_format(tmp_path):
    """Both measurements kept; JUnit's <flakyFailure> on the testcase pytest's own junitxml wrote (the Surefire
    shape Jenkins and GitLab read), Allure's retry (the first measurement, same historyId); the terminal and the
    HTML say FLAKY and show both measurements."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    from veza_synthetics.catalog import load
    from veza_synthetics.diagnosis import confirm
    from veza_synthetics.redact import PATTERNS_ONLY
    from veza_synthetics.reports import allure as allure_report
    from veza_synthetics.reports import html, junit, terminal
    symptom = load().symptoms["perf.high_response_time"]

    def blip(v, attempt):  # slow once, fast when measured again
        v.against("p95_ms", 350 if attempt == 1 else 40, label="health p95")
    record, _ = confirm(symptom, blip, PATTERNS_ONLY)
    data = record.to_json()
    assert record.outcome == "passed" and record.flaky and data["flaky"] is True
    assert [a["outcome"] for a in data["attempts"]] == ["failed", "passed"]
    line = terminal.lines([data])[0]
    assert line.startswith("FLAKY") and "first measurement: health p95 350 ms >= 200 ms" in line
    block = html.block(data, PATTERNS_ONLY)
    assert "FLAKY" in block and "measurement 1: <b>failed</b>" in block and "measurement 2: <b>passed</b>" in block
    test = tmp_path / "test_blip.py"
    test.write_text("import allure\n\ndef test_blip(request):\n    print('captured')\n"
                    f"    request.node.user_properties.append(({junit.FLAKY_PROPERTY!r}, {data['attempts'][0]['summary']!r}))\n"
                    f"    allure.dynamic.label({allure_report.FIRST_MEASUREMENT!r}, {data['attempts'][0]['summary']!r})\n")
    xml, results = tmp_path / "junit.xml", tmp_path / "allure-results"
    subprocess.run([sys.executable, "-m", "pytest", str(test), "-p", "no:cacheprovider", "-p", "no:randomly",
                    "-o", "junit_logging=system-out", f"--junitxml={xml}", f"--alluredir={results}",
                    "--rootdir", str(tmp_path)], cwd=tmp_path, capture_output=True, timeout=120, check=True)
    assert allure_report.add_retries(results) == 1 and allure_report.add_retries(results) == 0
    runs = sorted((json.loads(f.read_text()) for f in results.glob("*-result.json")), key=lambda r: r["start"])
    assert [r["status"] for r in runs] == ["failed", "passed"] and len({r["historyId"] for r in runs}) == 1
    assert "health p95 350 ms" in runs[0]["statusDetails"]["message"]  # Allure shows it as the retry
    assert junit.mark_flaky(xml) == 1 and junit.mark_flaky(xml) == 0  # once only
    case = ET.parse(xml).getroot().find(".//testcase")
    tags = [child.tag for child in case]
    assert tags.index("flakyFailure") < tags.index("system-out"), tags  # Surefire's order
    flaky = case.find("flakyFailure")
    assert flaky.get("type") == "unconfirmed failure" and "health p95 350 ms" in flaky.get("message")
    assert "health p95 350 ms" in flaky.find("stackTrace").text


def test_a_secret_in_a_failure_is_masked_by_the_worker_that_found_it(sandbox, tmp_path):
    """Under -n the outputs a worker writes itself (the JUnit failure text, pytest-html's block) mask the
    profile's secret values, as the controller's files do: each process holds its profile's redactor."""
    password = tomllib.loads(sandbox.profile_path.read_text())["postgres"]["password"]
    (tmp_path / "test_leaky.py").write_text(
        "def test_leaky(veza_verdict, veza_profile):\n"
        "    def measure(v, attempt):\n"
        "        v.require(False, f'the server said: {veza_profile.postgres.password} is not accepted')\n"
        "    veza_verdict('team.leaky', measure, thresholds={'x_ms': {'fail': 1, 'unit': 'ms'}})\n")
    junit_xml, html_report = tmp_path / "junit.xml", tmp_path / "report.html"
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_leaky.py"), "--env", str(sandbox.profile_path),
                          "-n", "2", "-p", "no:cacheprovider", f"--junitxml={junit_xml}", f"--html={html_report}",
                          "--reports-dir", str(tmp_path / "reports")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1 and "[REDACTED] is not accepted" in junit_xml.read_text(), run.stdout[-2000:]
    assert "[REDACTED] is not accepted" in html_report.read_text()
    for text in (junit_xml.read_text(), html_report.read_text(), run.stdout, run.stderr,
                 (tmp_path / "reports" / "latest" / "results.json").read_text()):
        assert password not in text
