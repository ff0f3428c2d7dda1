"""The project's own tests: one sandbox for the session, switched between faults."""
import pytest

from veza_synthetics.profile import ENV_DIR
from veza_synthetics.sandbox.process import SandboxProcess


@pytest.fixture(scope="session")
def sandbox():
    proc = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def sandbox_profile(sandbox):
    from veza_synthetics.probes import trust
    from veza_synthetics.profile import load
    profile = load(str(sandbox.profile_path))
    trust(profile.tls.ca_file)  # the front door's CA, as a profile names it
    return profile
