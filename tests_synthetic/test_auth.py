"""Guide section 1: 401/403 errors, expired JWTs, lost sessions."""
import pytest

pytestmark = pytest.mark.auth


def test_symptom(symptom, veza_diagnose):
    veza_diagnose(symptom)
