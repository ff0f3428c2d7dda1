"""Guide section 5: response times, CPU/memory/disk saturation, timeouts, error rate."""
import pytest

pytestmark = pytest.mark.performance


def test_symptom(symptom, veza_diagnose):
    veza_diagnose(symptom)
