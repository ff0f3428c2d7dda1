"""`veza-synth doctor`: ready against the sandbox; an unreachable endpoint, a wrong health path, an expiring
certificate, refused database credentials and a broken grant each named with the setting to change (exit 1); a bad profile
exit 2. Its fragment for the public code's shapes: here for the production server, in tests/test_deployed.py for the
dev server and simple_stream_server."""
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_deployed import NOT_DISCOVERED, differences, doctored, twin

REPO = Path(__file__).resolve().parents[1]


def _doctor(profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "veza_synthetics", "doctor", "--env", str(profile)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def refusing_port():
    """A port bound and never listening: connections to it are refused, and no other server can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_the_sandbox_is_ready(sandbox):
    done = _doctor(sandbox.profile_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("backend.url TLS", "login as synthetic@veza.local works (role user)", "pg_monitor yes",
                 "may write to: nothing", "GET /health answered 200", "the session lives in Redis", "ready: no problem",
                 "an application Ping was answered Pong", "a message sent by one member reached the other",
                 "the other member got it as NewMessage", "cost of doctor"):
        assert line in done.stdout, (line, done.stdout)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("change,named", [
    ("[backend]\nurl = 'https://127.0.0.1:{port}'\n", "backend.url: nothing accepts connections at 127.0.0.1:{port}"),
    ("[backend]\nhealth_path = '/nope'\n", "backend.health_path = '/health' (the profile says '/nope')"),
    ("[postgres]\npassword = 'not-the-password'\n",
     "postgres.host / postgres.user / postgres.password: the suite's role cannot connect"),
])
def test_a_problem_is_named_with_its_setting(sandbox, tmp_path, change, named, refusing_port):
    port = refusing_port
    profile = tmp_path / "p.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n' + change.format(port=port))
    done = _doctor(profile)
    assert done.returncode == 1 and named.format(port=port) in done.stdout, done.stdout + done.stderr
    assert "not-the-password" not in done.stdout + done.stderr


def test_a_broken_grant_is_named(sandbox, tmp_path):
    """A role with pg_monitor but no read on refresh_tokens, where the profile says sessions live there."""
    role = sandbox.admin.exporter_role()
    profile = tmp_path / "p.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n[postgres]\nuser = "{role["user"]}"\n'
                       f'password = "{role["password"]}"\n[auth]\nsession_store = "postgres"\n')
    done = _doctor(profile)
    assert done.returncode == 1, done.stdout
    assert f'auth.session_store = "postgres": GRANT SELECT ON refresh_tokens TO {role["user"]}' in done.stdout, done.stdout
    assert role["password"] not in done.stdout + done.stderr


def test_a_read_only_profile_sends_the_chat_no_message(sandbox, tmp_path):
    """Read-only and no chat.synthetic_conversation: whether members get messages is said undiscovered, and the
    sandbox's chat counts no message from doctor."""
    profile = tmp_path / "p.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\nallow = "readonly"\n')
    before = sandbox.admin.writes()["chat"] or {}
    done = _doctor(profile)
    assert "chat.broadcast" in done.stdout and "not discovered: it takes sending a message" in done.stdout, done.stdout
    assert (sandbox.admin.writes()["chat"] or {}) == before


def test_an_expiring_certificate_is_named(sandbox):
    with sandbox.faults_on(["front.cert_expiring"]):
        done = _doctor(sandbox.profile_path)
    assert done.returncode == 1 and "backend.url: its certificate ends in" in done.stdout, done.stdout


def test_a_bad_profile_is_exit_2(tmp_path):
    profile = tmp_path / "bad.toml"
    profile.write_text("[backend]\nurl = 3\n")
    done = _doctor(profile)
    assert done.returncode == 2 and "'backend.url' must be str" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def production():
    """A production-server twin of this module's own: doctor's logins meet B12's window fresh."""
    yield from twin("production-server")


def test_doctor_finds_the_production_servers_settings(production, tmp_path):
    """From a profile that knows nothing of the public code, doctor's fragment gives the production server's
    settings (its /health and /ready, the public code's admin path, session store, chat and stream)."""
    proc, _ = production
    applied, said = doctored(proc, tmp_path)
    assert "login as synthetic@veza.local works" in said and "auth.session_store = 'postgres'" in said, said
    assert "a bigint column: auth.session_lost reads it as epoch seconds" in said, said  # B9
    assert "chat.broadcast = False" in said, said  # one message sent (the twin's profile allows writes), none told (C1)
    assert differences(applied, proc.profile_path) <= NOT_DISCOVERED, said
