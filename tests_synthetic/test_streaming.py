"""Guide section 4: audio cuts, degraded quality, excessive buffering (a simulated player)."""
import pytest

pytestmark = pytest.mark.streaming


def test_symptom(symptom, veza_diagnose):
    veza_diagnose(symptom)
