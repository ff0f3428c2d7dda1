"""The detection matrix: every fault fails the checks it must, and leaves every other check passing.

One sandbox per xdist worker, switched between faults through its admin API (a switch returns once
the fault is in effect, as Prometheus sees it too); each cell runs the relevant checks in this
process the way a run takes them (matrix.measure: catalog -> checks -> verdict -> record), with the
checks that must fail and those that must pass (the "may also fail" ones are left out: their outcome
proves nothing). The pytest plugin's own path is proven end to end elsewhere (test_plugin,
test_pipelines, test_reports).
"""
import fcntl
import json
from pathlib import Path

import pytest

from veza_synthetics.catalog import load
from veza_synthetics.matrix import HEALTHY, expectation, measure, meets, worst_by_check

REPO = Path(__file__).resolve().parents[1]
CATALOG = load()
MATRIX_FILE = REPO / "reports" / "matrix-results.json"


def _keep(fault: str, outcomes: dict[str, str]) -> None:
    """Add the cell to reports/matrix-results.json (`veza-synth matrix` renders it); the cells of both
    workers go to the one file, under a lock."""
    MATRIX_FILE.parent.mkdir(exist_ok=True)
    with open(MATRIX_FILE.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            measured = json.loads(MATRIX_FILE.read_text())
        except (FileNotFoundError, ValueError):
            measured = {}
        MATRIX_FILE.write_text(json.dumps({**measured, fault: outcomes}, indent=1))


@pytest.mark.parametrize("fault", [HEALTHY, *CATALOG.faults])
def test_fault_is_detected(fault, sandbox, sandbox_profile):
    relevant = sorted(c for c in CATALOG.symptoms if expectation(fault, c) != "may")
    with sandbox.faults_on([] if fault == HEALTHY else [fault]) as active:
        records = [r.to_json() for r in measure(sandbox_profile, relevant)]
    worst = worst_by_check(records)
    outcomes = {check: record["outcome"] for check, record in worst.items()}
    _keep(fault, outcomes)
    assert active == ([] if fault == HEALTHY else [fault])
    assert set(outcomes) == set(relevant), "every relevant check ran (those allowed to fail are not run)"
    wrong = []
    for check, record in worst.items():
        want = expectation(fault, check)
        if not meets(want, record):
            wrong.append(f"{check} must {want} under {fault} but was {record['outcome']}: {record['summary']}")
    assert not wrong, "\n".join(wrong)
    for check in CATALOG.faults[fault].must_fail if fault != HEALTHY else ():
        failed = [c for c in records if c["id"] == check and c["outcome"] == "failed"]
        assert failed[0]["summary"].startswith(check + ":"), "the failure names its symptom id"
        assert failed[0]["runbook"]["solutions"], "the failure carries the guide's remedies"
        assert len(failed[0]["attempts"]) == 2, "a failure is confirmed by a second measurement"
