"""Guide section 3: disconnects, lost messages, high latency (two real chat clients)."""
import pytest

pytestmark = pytest.mark.websocket


def test_symptom(symptom, veza_diagnose):
    veza_diagnose(symptom)
