"""Guide section 2: connection timeouts, constraint errors, degraded performance."""
import pytest

pytestmark = pytest.mark.database


def test_symptom(symptom, veza_diagnose):
    veza_diagnose(symptom)


@pytest.mark.writes
def test_symptom_writes(symptom, veza_diagnose):
    """The same symptoms, probed with synthetic writes that clean up after themselves."""
    veza_diagnose(symptom)
