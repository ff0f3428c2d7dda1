"""The alert rules the project ships for the monitoring itself: valid for Prometheus, and each one fires
on the series it is about (promtool, from Debian's prometheus package, installed by `make setup`)."""
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "veza_synthetics" / "alerts.rules.yml"


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool comes with the prometheus package (`make setup`)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_shipped_rules_are_valid():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 5 rules found" in checked.stdout, checked.stdout + checked.stderr


def test_each_rule_fires_on_its_series_and_not_before():
    tested = promtool("test", "rules", "alerts_test.yml", cwd=REPO / "tests" / "alerts")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_continuous_probers_rules_are_valid_and_fire_on_their_series():
    """veza-synth serve's rules (failing for rounds, from a majority of locations, a silent or unreachable
    prober): valid, and each one unit-tested."""
    import yaml
    shipped = REPO / "veza_synthetics" / "serve.rules.yml"
    alerts = [rule["alert"] for group in yaml.safe_load(shipped.read_text())["groups"] for rule in group["rules"]]
    checked = promtool("check", "rules", str(shipped))
    assert checked.returncode == 0 and f"SUCCESS: {len(alerts)} rules found" in checked.stdout, checked.stdout + checked.stderr
    tests = (REPO / "tests" / "alerts" / "serve_test.yml").read_text()
    assert not [a for a in alerts if f"alertname: {a}" not in tests], "a shipped rule without a promtool test"
    tested = promtool("test", "rules", "serve_test.yml", cwd=REPO / "tests" / "alerts")
    assert tested.returncode == 0, tested.stdout + tested.stderr
