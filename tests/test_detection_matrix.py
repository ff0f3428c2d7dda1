"""The detection matrix: every fault fails the checks it must, and leaves every other check passing.

One sandbox for the whole matrix, switched between faults through its admin API; each
cell is a real run of the suite (a pytest subprocess) read back from its results.json,
with the checks that must fail and those that must pass (the "may also fail" ones are
left out: their outcome proves nothing).
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veza_synthetics.catalog import load
from veza_synthetics.matrix import HEALTHY, SETTLE_S, expectation, outcomes_by_check

REPO = Path(__file__).resolve().parents[1]
CATALOG = load()
MEASURED: dict = {}


def run_suite(profile_path: str, reports: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "pytest", "tests_synthetic", "--env", profile_path, "-p", "no:cacheprovider",
           "-q", "--reports-dir", str(reports), *extra]
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    return json.loads((reports / "latest" / "results.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def matrix_file():
    yield
    out = REPO / "reports" / "matrix-results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(MEASURED, indent=1))


@pytest.mark.parametrize("fault", [HEALTHY, *CATALOG.faults])
def test_fault_is_detected(fault, sandbox, tmp_path):
    sandbox.set_faults([] if fault == HEALTHY else [fault])
    time.sleep(SETTLE_S.get(fault, 0))
    relevant = sorted(c for c in CATALOG.symptoms if expectation(fault, c) != "may")
    try:
        results = run_suite(str(sandbox.profile_path), tmp_path, "--symptoms", ",".join(relevant))
    finally:
        sandbox.set_faults([])
    outcomes = outcomes_by_check(results)
    MEASURED[fault] = outcomes
    assert results["faults"] == ([] if fault == HEALTHY else [fault])
    assert set(outcomes) == set(relevant), "every relevant check ran (those allowed to fail are not run)"
    wrong = []
    for check, outcome in outcomes.items():
        want = expectation(fault, check)
        if want == "fail" and outcome != "failed":
            wrong.append(f"{check} must fail under {fault} but was {outcome}")
        if want == "pass" and outcome != "passed":
            summary = next(c["summary"] for c in results["checks"] if c["id"] == check and c["outcome"] == outcome)
            wrong.append(f"{check} must pass under {fault} but was {outcome}: {summary}")
    assert not wrong, "\n".join(wrong)
    for check in CATALOG.faults[fault].must_fail if fault != HEALTHY else ():
        failed = [c for c in results["checks"] if c["id"] == check and c["outcome"] == "failed"]
        assert failed[0]["summary"].startswith(check + ":"), "the failure names its symptom id"
        assert failed[0]["runbook"]["solutions"], "the failure carries the guide's remedies"
