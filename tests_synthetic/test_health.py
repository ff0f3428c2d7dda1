"""Is every service up, and is the monitoring that should page us working? (health_check.sh)"""
import pytest

pytestmark = pytest.mark.health


def test_symptom(symptom, veza_diagnose):
    veza_diagnose(symptom)
