"""Unit tests on controlled inputs: catalog, profiles, verdicts, redaction, JWT claims, probe maths."""
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from veza_synthetics import catalog, profile
from veza_synthetics.errors import SetupError
from veza_synthetics.probes import auth, decided_above, delivery, percentile, spread, stream
from veza_synthetics.redact import PATTERNS_ONLY, Redactor
from veza_synthetics.sandbox import faults
from veza_synthetics.verdict import Verdict


# -- catalog --------------------------------------------------------------------------
def test_catalog_covers_every_category_of_the_guide():
    cat = catalog.load()
    assert {s.category for s in cat.symptoms.values()} == set(catalog.CATEGORIES)
    assert set(cat.fault_sizes()) <= set(cat.faults)


def test_every_runbook_entry_is_text_as_the_guide_wrote_it():
    for symptom in catalog.load().symptoms.values():
        runbook = symptom.runbook()
        assert isinstance(runbook["solutions"], str) and isinstance(runbook["prevention"], str)
        assert all(isinstance(line, str) for line in runbook["diagnostics"]), (symptom.id, runbook["diagnostics"])
    section = catalog.load().sections["auth"]
    assert 'curl -X POST http://localhost:8080/auth/refresh -H "Authorization: Bearer <token>"' in section.diagnostics


def test_an_unquoted_runbook_line_is_refused():
    import yaml
    raw = yaml.safe_load(catalog.CATALOG_PATH.read_text())
    raw["sections"]["auth"]["diagnostics"] = yaml.safe_load('- curl -H "Authorization: Bearer <token>"\n- x: y')
    with pytest.raises(SetupError, match="diagnostics must be a list of strings"):
        catalog.parse(raw)


def test_catalog_rejects_a_broken_entry():
    raw = {"check_modules": [], "sections": {"auth": {"title_fr": "x", "title_en": "x", "solutions": "x", "prevention": "x",
                                                      "severity": "critical"}},
           "checks": [{"id": "auth.x", "section": "auth", "title_fr": "x", "title_en": "x", "measures": "x",
                       "thresholds": {"t": {"fail": 1, "bad_when": "sideways", "source": "s"}}}], "faults": {}}
    with pytest.raises(SetupError, match="bad_when"):
        catalog.parse(raw)
    raw["checks"][0]["thresholds"] = {}
    raw["faults"] = {"f": {"does": "x", "must_fail": ["auth.nope"]}}
    with pytest.raises(SetupError, match="unknown check 'auth.nope'"):
        catalog.parse(raw)


def test_every_check_has_a_test_and_a_fault():
    from veza_synthetics.checks import registry
    cat = catalog.load()
    registered = {sid for sid, _ in registry().checks}
    assert registered == set(cat.symptoms)
    proven = {sid for f in cat.faults.values() for sid in f.must_fail}
    assert proven == set(cat.symptoms), f"checks no fault proves: {set(cat.symptoms) - proven}"


def test_the_registry_reads_marks_from_the_modules_and_refuses_two_checks_for_one_symptom(tmp_path, monkeypatch):
    """registry() finds @check functions in the modules a catalog names (holds included); importing a module
    changes no table; two functions for one symptom are one clear error naming both."""
    import dataclasses

    from veza_synthetics.checks import registry
    (tmp_path / "team_a.py").write_text("from veza_synthetics.checks import check\n\n"
                                        "@check('team.x', holds=True)\ndef x(v, target, attempt): pass\n")
    (tmp_path / "team_b.py").write_text("from veza_synthetics.checks import check\n\n"
                                        "@check('team.x')\ndef other(v, target, attempt): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    shipped = registry()
    import team_b  # noqa: F401  # imported, never named by a catalog: not a check
    assert registry() == shipped and ("team.x", False) not in shipped.checks
    team = registry(dataclasses.replace(catalog.load(), check_modules=("team_a",)))
    assert set(team.checks) == {("team.x", False)} and team.holds == {"team.x"}
    with pytest.raises(SetupError, match=r"two checks for team.x: team_a.x and team_b.other"):
        registry(dataclasses.replace(catalog.load(), check_modules=("team_a", "team_b")))


def test_a_profiles_private_ca_is_trusted_for_its_own_endpoints_only(tmp_path):
    """Two profiles in one process, each with its CA: each endpoint verifies with its own profile's CA, an
    endpoint no profile names with the public CAs alone."""
    import subprocess

    from veza_synthetics.probes.transport import Transport
    names = {}
    for name in ("team-a", "team-b"):
        cert = tmp_path / f"{name}.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                        "-keyout", str(tmp_path / f"{name}.key"), "-out", str(cert)], check=True, capture_output=True)
        names[name] = cert
    team_a = Transport(ca_file=str(names["team-a"]), trusted=("https://a.example:8443", "wss://a.example:8443/ws"))
    team_b = Transport(ca_file=str(names["team-b"]), trusted=("https://b.example",))

    def cas(url):
        way = team_b if "b.example" in url else team_a
        return {dict(part[0] for part in c["subject"]).get("commonName") for c in way.tls(url).get_ca_certs()}
    assert "team-a" in cas("https://a.example:8443/api") and "team-b" not in cas("wss://a.example:8443/ws")
    assert "team-b" in cas("https://b.example:443/health") and "team-a" not in cas("https://b.example")
    assert not {"team-a", "team-b"} & cas("https://elsewhere.example")
    assert "team-a" not in {dict(part[0] for part in c["subject"]).get("commonName")
                            for c in team_b.tls("https://a.example:8443").get_ca_certs()}  # its own profile's only


def test_unknown_fault_is_one_clear_error():
    with pytest.raises(SetupError, match="unknown fault id.*nope.*Known faults"):
        faults.validate(["stream.truncate", "nope"])


# -- profiles -------------------------------------------------------------------------
def write(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return str(path)


def test_production_without_variables_lists_what_it_needs(monkeypatch):
    for var in ("VEZA_BACKEND_URL", "VEZA_SYNTHETIC_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SetupError) as err:
        profile.load("production")
    assert "VEZA_BACKEND_URL (for backend.url)" in str(err.value)
    assert "VEZA_SYNTHETIC_PASSWORD" in str(err.value)


def test_production_is_read_only_both_ways(monkeypatch):
    """production adds direct database access to production-prometheus, which needs none."""
    for var in profile.VAR.findall((profile.ENV_DIR / "production-prometheus.toml").read_text()):
        monkeypatch.setenv(var, "http://x" if "URL" in var else "value")
    only = profile.load("production-prometheus")
    assert not only.allows_writes and not only.has_postgres and not only.has_redis and only.has_prometheus
    with pytest.raises(SetupError, match="VEZA_PG_HOST"):
        profile.load("production")
    for var in profile.VAR.findall((profile.ENV_DIR / "production.toml").read_text()):
        monkeypatch.setenv(var, "redis://x" if "URL" in var else "value")
    direct = profile.load("production")
    assert not direct.allows_writes and direct.has_postgres and direct.has_redis and direct.name == only.name
    assert profile.load("staging").allows_writes


def test_the_readme_lists_the_exporter_queries_the_checks_run():
    """What a team must make its Prometheus answer, exactly as the checks ask it (default selectors)."""
    from veza_synthetics.probes import exporters
    readme = (profile.ENV_DIR.parents[1] / "docs" / "grants.md").read_text()
    selectors = {"NODE": 'job="node"', "POSTGRES": 'job="postgres"', "REDIS": 'job="redis"'}
    for selector in selectors.values():
        assert f"`{exporters.SCRAPED.format(s=selector)}`" in readme
    for name in ("NODE", "POSTGRES", "POSTGRES_ACTIVITY", "POSTGRES_CONSTRAINTS", "POSTGRES_PERFORMANCE",
                 "POSTGRES_STATEMENTS", "REDIS", "REDIS_POLICY"):
        value = getattr(exporters, name)
        for template in (value.values() if isinstance(value, dict) else [value]):
            query = template.format(s=selectors[name.split("_")[0]], w="5m", m=".*")
            assert f"`{query}`" in readme, query


@pytest.mark.parametrize("text,error", [
    ("[backend]\nurl = 3\n", "'backend.url' must be str"),
    ("[backend]\nnope = 1\n", "unknown setting 'backend.nope'"),
    ("allow = 'everything'\n", "'allow' must be one of"),
    ("[timeouts]\nrequest_s = 0\n", "'timeouts.request_s' must be > 0"),
    ("[timeouts]\nconnect_s = -1.0\n", "'timeouts.connect_s' must be > 0"),
    ("[sampling]\nrequests = 0\n", "'sampling.requests' must be > 0"),
    ("[sampling]\nmax_rps = 0.0\n", "'sampling.max_rps' must be > 0"),
    ("[holds]\nws_idle_s = 0.0\n", "'holds.ws_idle_s' must be > 0"),
    ("[timeouts]\nrun_s = 100.0\n", "'timeouts.run_s' = 100 s cannot hold a 66 s hold twice"),
    ("[auth]\nmax_logins_per_run = 3\n", "'auth.max_logins_per_run' must be 1"),
    ("[prometheus]\nrate_window = 'soon'\n", "'prometheus.rate_window': not a Prometheus duration"),
    ("[accounts]\nuser_password = 'hunter2'\n", "literal secret"),
    ("[thresholds.'perf.high_response_time']\np95_ms = {fail = 'x'}\n", "must be {warn = N, fail = N}"),
    ("[thresholds.'perf.nope']\np95_ms = {fail = 1}\n", "unknown check 'perf.nope'"),
    ("not toml [", "not valid TOML"),
    ("[prometheus]\npostgres_selector = ' '\n", "'prometheus.postgres_selector' must not be empty"),
    ("[tracing]\notlp_endpoint = 'collector:4318'\n", "'tracing.otlp_endpoint' must be an OTLP/HTTP collector"),
    ("[tracing]\nexport_timeout_s = 0\n", "'tracing.export_timeout_s' must be seconds >= 0.1"),
    ("[tracing]\notlp_headers = {Authorization = 'Bearer abc'}\n", "'tracing.otlp_headers.\"Authorization\"' holds a literal"),
])
def test_bad_profiles_get_one_clear_error(tmp_path, text, error):
    with pytest.raises(SetupError, match=error.replace("{", r"\{").replace("}", r"\}").replace("'", ".")):
        profile.load(write(tmp_path, text))


def test_a_collectors_token_is_a_secret_of_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("VEZA_OTLP_TOKEN", "s3cr3t-collector-token")
    p = profile.load(write(tmp_path, "[tracing]\notlp_endpoint = 'https://collector.example:4318'\n"
                                     "otlp_headers = {Authorization = 'Bearer ${VEZA_OTLP_TOKEN}'}\n"))
    assert p.tracing.otlp_headers == {"Authorization": "Bearer s3cr3t-collector-token"}
    assert "s3cr3t" not in p.redactor().text("exporting with Bearer s3cr3t-collector-token")


def test_set_but_empty_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("VEZA_EMPTY", "")
    with pytest.raises(SetupError, match="VEZA_EMPTY .for backend.url, set but empty"):
        profile.load(write(tmp_path, "[backend]\nurl = '${VEZA_EMPTY}'\n"))


def test_threshold_override_changes_the_verdict(tmp_path):
    p = profile.load(write(tmp_path, "[thresholds.'perf.high_response_time']\np95_ms = {fail = 500}\n"))
    symptom = catalog.load().symptoms["perf.high_response_time"]
    v = Verdict.for_symptom(symptom, p.threshold_overrides("perf.high_response_time"))
    v.against("p95_ms", 350, label="p95")
    assert v.outcome == "passed"


# -- verdicts -------------------------------------------------------------------------
def verdict(sid):
    return Verdict.for_symptom(catalog.load().symptoms[sid])


@pytest.mark.parametrize("value,outcome", [(199.9, "passed"), (200, "degraded"), (999, "degraded"), (1000, "failed")])
def test_warn_and_fail_boundaries(value, outcome):
    v = verdict("db.connection_timeout")
    v.against("connect_p95_ms", value, label="connect p95")
    assert v.outcome == outcome


def test_measurements_are_kept_by_step_and_errors_apart_from_conditions():
    from veza_synthetics.probes import Result
    v = verdict("auth.http_401_403")
    assert v.record("me", Result("auth", "GET /me", {"status": 200}, {"status": 200}))
    assert not v.record("forbidden", Result("auth", "GET /admin", {}, error="timeout after 2 s"))
    v.require(True, "", ok_text="me 200")
    assert v.measurements == {"me.status": 200} and set(v.evidence) == {"me"}
    assert [e.step for e in v.errors] == ["forbidden"] and all(c.level == "passed" for c in v.conditions)
    assert v.outcome == "failed" and "could not evaluate forbidden: timeout after 2 s" in v.summary()
    with pytest.raises(ValueError, match="recorded twice"):
        v.record("me", Result("auth", "GET /me", {"status": 401}))


def test_results_of_schemas_1_and_2_read_as_schema_3():
    from veza_synthetics.record import SCHEMA_VERSION, upgrade
    old = {"schema_version": 1, "checks": [{"id": "auth.jwt_expired", "outcome": "failed", "measurements": {"status": 401},
                                            "attempts": [{"outcome": "failed", "measurements": {}}]}]}
    new = upgrade(old)
    assert new["schema_version"] == SCHEMA_VERSION == 3 and new["upgraded_from"] == 1
    assert new["checks"][0]["errors"] == [] and new["checks"][0]["attempts"][0]["errors"] == []
    two = upgrade({"schema_version": 2, "checks": [{"id": "ws.disconnects", "finished_at": 1767225600.5}]})
    assert two["checks"][0]["finished_at"] == "2026-01-01T00:00:00.500+00:00"  # one time format: ISO 8601 UTC
    with pytest.raises(ValueError, match="newer"):
        upgrade({"schema_version": 99, "checks": []})


def test_failure_reads_like_a_condition_with_its_value():
    v = verdict("perf.high_response_time")
    v.against("p95_ms", 350, label="search p95")
    assert v.summary() == "perf.high_response_time: search p95 350 ms >= 200 ms"


def test_nothing_measured_is_no_data_never_a_pass():
    v = verdict("perf.resource_saturation")
    v.missing("cpu_pct: not enough data")
    assert v.outcome == "no_data" and "not enough data" in v.summary()


def test_below_thresholds_fail_under_the_level():
    v = verdict("stream.excessive_buffering")
    v.against("speed_ratio", 0.7, label="speed")
    assert v.outcome == "failed"


# -- redaction and JWT ----------------------------------------------------------------
def test_redaction_masks_tokens_signatures_and_a_runs_own_secrets_only():
    """A run's redactor masks its profile's secret values wherever they appear, and every run masks what looks
    like a secret; another profile's redactor in the same process does not hold the first one's values."""
    token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"
    text = (f"Bearer {token} url?expires=1&sig=abcdef0123 login failed for s3cret-value {{\"refresh_token\": \"xyz\"}} "
            "redis://monitor:hunter22@cache:6379/0")
    out = Redactor(["s3cret-value", "abc"]).text(text)  # too short a value is not masked (ordinary words)
    assert "redis://monitor:[REDACTED]@cache:6379/0" in out and "url?expires=1" in out
    for leaked in (token, "abcdef0123", "s3cret-value", "xyz", "hunter22"):
        assert leaked not in out
    other = Redactor(["another-profile-pw"]).text(text)
    assert "s3cret-value" in other and token not in other and "hunter22" not in other
    assert PATTERNS_ONLY.data({"k": [f"Bearer {token}"]}) == {"k": ["Bearer [REDACTED]"]}


def test_claims_are_decoded_without_the_signature():
    payload = base64.urlsafe_b64encode(json.dumps({"iat": 10, "exp": 3610}).encode()).rstrip(b"=").decode()
    assert auth.claims(f"h.{payload}.sig") == {"iat": 10, "exp": 3610}
    assert auth.claims("not a jwt") == {}


# -- probe maths ----------------------------------------------------------------------
@pytest.mark.parametrize("planned", [5, 19, 20, 21, 50, 100, 200])
def test_a_sample_stops_only_once_its_judged_figure_is_decided(planned):
    """decided_above(n) values over a level put the judged figure (p95, or the max below 20 values) over
    it whatever the rest are, so stopping there never changes a verdict."""
    rng = np.random.default_rng(planned)
    level, needed = 1000.0, decided_above(planned)
    for _ in range(200):
        high = list(rng.uniform(level + 1, 5000, needed))
        low = list(rng.uniform(0, level, planned - needed))
        figure = spread(high + low)
        assert (figure["p95_ms"] if figure["p95_ms"] is not None else figure["max_ms"]) > level


def test_percentiles_interpolate_like_numpy():
    values = [1, 2, 3, 4, 100]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 95) is None


def test_delivery_counting_finds_lost_duplicated_reordered():
    counts = delivery.count_delivery(list(range(6)), [0, 2, 1, 2, 4])
    assert counts == {"lost": [3, 5], "duplicated": [2], "reordered": [1]}


def test_player_without_stall():
    arrivals = [(0.1 * i, 1.0 * i) for i in range(1, 21)]  # 10 s of media per s of wall time
    result = stream.simulate_player(arrivals, 20.0)
    assert result["startup_s"] == pytest.approx(0.2) and result["stalls"] == []


def test_player_with_one_stall():
    arrivals = [(0.5, 4.0), (6.0, 4.0), (9.0, 20.0)]  # data stops at 4 s of media until 9 s of wall time
    result = stream.simulate_player(arrivals, 20.0)
    assert result["startup_s"] == 0.5
    assert len(result["stalls"]) == 1 and result["stalls"][0]["at_s"] == pytest.approx(4.5)
    assert result["stall_s"] == pytest.approx(4.5)


def test_player_slower_than_bitrate_keeps_stalling():
    arrivals = [(t / 0.7, float(t)) for t in np.arange(0.5, 20.5, 0.5)]  # 0.7 x real time
    result = stream.simulate_player(arrivals, 20.0)
    assert len(result["stalls"]) >= 2 and result["rebuffer_pct"] > 1


def test_silence_detection_finds_the_gap_and_only_it():
    rate = 44100
    t = np.arange(rate * 4) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    pcm = np.stack([tone, tone], axis=1)
    assert stream.silence_gaps(pcm, rate) == []
    pcm[int(1.5 * rate):int(1.8 * rate)] = 0
    gaps = stream.silence_gaps(pcm, rate)
    assert len(gaps) == 1 and 280 <= gaps[0]["ms"] <= 320 and gaps[0]["at_s"] == pytest.approx(1.5, abs=0.03)


def _through_mp3(pcm):
    import io

    import soundfile as sf
    buffer = io.BytesIO()
    sf.write(buffer, pcm, 44100, format="MP3", bitrate_mode="CONSTANT", compression_level=0.4)
    decoded, rate = sf.read(io.BytesIO(buffer.getvalue()), dtype="float32", always_2d=True)
    return decoded, rate


def test_music_passes_while_dropouts_and_hard_clipping_fail():
    """The canary behaves like mastered music: fades, a quiet break, peaks at full scale. None of it is
    a dropout or clipping; a 1 s digital silence is, and so is the same music driven 3.5 dB into clipping."""
    from veza_synthetics.sandbox import audio
    master = audio.canary_pcm()
    assert np.max(np.abs(master)) == pytest.approx(1.0)  # peak-normalised
    t = np.arange(len(master)) / audio.SAMPLE_RATE
    quiet = master[(t > audio.BREAK_S[0] + 0.2) & (t < audio.BREAK_S[1] - 0.2)]
    assert -60 < 20 * np.log10(np.sqrt(np.mean(quiet.astype(float) ** 2))) < -40  # a real quiet passage
    decoded, rate = _through_mp3(master)
    assert stream.silence_gaps(decoded, rate) == []
    assert 100 * np.mean(np.abs(decoded) >= stream.CLIP_LEVEL) < 0.1
    gap, rate = _through_mp3(audio.canary_pcm(with_gap=True))
    assert [g["ms"] >= 900 for g in stream.silence_gaps(gap, rate)] == [True]
    clipped, rate = _through_mp3(np.clip(master * 1.5, -1, 1))
    assert 100 * np.mean(np.abs(clipped) >= stream.CLIP_LEVEL) > 0.1


# -- the matrix command ---------------------------------------------------------------
def test_matrix_prints_every_fault_against_every_check(tmp_path):
    from veza_synthetics.matrix import HEALTHY, render
    cat = catalog.load()
    text = render()
    for fault in [HEALTHY, *cat.faults]:
        assert any(line.startswith(fault + " ") for line in text.splitlines()), fault
    for sid in cat.symptoms:
        assert sid in text
    measured = {"stream.truncate": {"stream.audio_cut": "passed", "health.services": "passed"}}
    (tmp_path / "m.json").write_text(json.dumps(measured))
    row = next(line for line in render(tmp_path / "m.json").splitlines() if line.startswith("stream.truncate"))
    assert ".!" in row, "a must-fail check that passed is marked against the expectation"


def test_a_pass_cell_excuses_a_latency_warning_and_nothing_else():
    from veza_synthetics.matrix import meets
    from veza_synthetics.record import check_record
    cat = catalog.load()

    def record(sid, **figures):
        v = verdict(sid)
        for name, value in figures.items():
            v.against(name, value, label=name)
        return check_record(cat.symptoms[sid], v, [v], False, 0.1, PATTERNS_ONLY).to_json()
    assert meets("pass", record("ws.high_latency", delivery_p95_ms=62))         # over the 50 ms warning
    assert not meets("pass", record("ws.high_latency", delivery_p95_ms=300))    # over the 250 ms fail level
    assert not meets("fail", record("ws.high_latency", delivery_p95_ms=62))
    assert meets("fail", record("ws.high_latency", delivery_p95_ms=300))
    warned = verdict("db.connection_timeout")
    warned.against("connections_used_pct", 75, label="connections used")   # over its 70 % warning: not a time
    assert warned.outcome == "degraded"
    record = check_record(cat.symptoms["db.connection_timeout"], warned, [warned], False, 0.1, PATTERNS_ONLY)
    assert not meets("pass", record.to_json())


def test_an_answer_is_read_where_the_profile_says():
    from veza_synthetics.shape import Mismatch, at_path, list_at
    nested = {"success": True, "data": {"status": "healthy"}, "message": None}
    assert at_path(nested, "data.status", "chat.health_status_path") == "healthy"
    assert at_path(nested, "", "x") is nested
    missing = at_path(nested, "status", "chat.health_status_path")
    assert isinstance(missing, Mismatch)
    assert str(missing) == "chat.health_status_path = 'status' matches nothing in the answer (keys: data, message, success)"
    assert str(at_path("<html>", "status", "s")) == "s = 'status' matches nothing in the answer (a str)"
    stub = {"data": {"tracks": [], "resources": [], "users": [], "listings": []}}
    assert str(list_at(stub, "data", "backend.search_results_path")) == \
        "backend.search_results_path = 'data' is not a list in the answer (keys: listings, resources, tracks, users)"
    assert list_at(stub, "data.tracks", "backend.search_results_path") == []


def test_the_chats_delivered_frame_type_must_be_named(tmp_path):
    with pytest.raises(SetupError, match="'chat.delivered_type' must name the frame type"):
        profile.load(write(tmp_path, '[chat]\ndelivered_type = ""\n'))


@pytest.mark.parametrize("setting,value", [("backend.ready_path", "ready"), ("auth.forbidden_path", ""),
                                           ("backend.health_path", "api/health")])
def test_a_route_setting_must_be_a_path(tmp_path, setting, value):
    section, name = setting.split(".")
    with pytest.raises(SetupError, match=f"'{setting}' must be a path starting with '/'"):
        profile.load(write(tmp_path, f"[{section}]\n{name} = {value!r}\n".replace("'", '"')))


def test_one_pace_per_api_origin_spaces_every_caller():
    """Threads and event loops share one schedule per origin (the run's requests count together, B12); a
    429's pause holds them all; other origins are not paced."""
    import asyncio
    import threading
    import time

    from veza_synthetics.probes import pacing
    from veza_synthetics.probes.transport import Transport
    way = Transport(api_url="https://api.example:8443/api/v1", max_rps=40.0)
    pace = way.pace
    assert way.pace_of("https://API.example:8443/health") is pace and way.pace_of("https://stream.example") is None
    starts: list[float] = []

    def calls() -> None:
        for _ in range(3):
            pace.wait()
            starts.append(time.monotonic())

    async def turns() -> None:
        for _ in range(3):
            await pace.turn()
            starts.append(time.monotonic())
    threads = [threading.Thread(target=calls) for _ in range(2)] + [threading.Thread(target=asyncio.run, args=(turns(),))]
    first_turn_at_earliest = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the ninth turn is due 8/40 s after the first, which came no sooner than the threads' start (a thread
    # woken late under load stamps its own turn late: only the last stamp bounds the schedule)
    assert len(starts) == 9 and pace.turns == 9 and max(starts) - first_turn_at_earliest >= 8 / 40.0 - 0.001
    pace.pause(0.3)
    before = time.monotonic()
    pace.wait()
    assert time.monotonic() - before >= 0.29
    assert pacing.retry_after_s(None) == 1.0 and pacing.retry_after_s("600") == pacing.MAX_PAUSE_S


def test_a_turn_given_back_frees_the_next_caller_at_once():
    """A request that never reached the platform gives its turn back: at 0.4 a second, ten refused
    connections in a row cost no waiting, while the turns kept stay 2.5 s apart."""
    import time

    from veza_synthetics.probes import pacing
    pace = pacing.OriginPace(0.4)
    started = time.monotonic()
    for _ in range(10):
        pace.give_back(pace.wait())
    assert time.monotonic() - started < 0.5 and pace.turns == 0
    kept = pace.wait()
    assert pace.try_take() is None and pace.free_at() >= kept + 2.5 - 0.001 and pace.turns == 1


def test_an_endpoint_that_stops_answering_is_not_asked_again_until_its_retry():
    """Three exchanges in a row without an answer: later callers are told at once, typed as unreachable
    (never a timeout's wait), one retries after retry_s, and the first answer ends it."""
    import time

    import httpx
    import pytest

    from veza_synthetics.probes import NotAnswering, answering, describe
    from veza_synthetics.probes.transport import Transport
    way = Transport(guarded=("203.0.113.7:8080",), retry_s=0.3)
    guarded, endpoint = way.guarded, way.endpoints["203.0.113.7:8080"]
    for _ in range(answering.UNANSWERED_IN_A_ROW - 1):
        with pytest.raises(httpx.ReadTimeout), guarded("203.0.113.7:8080", 5.0):
            raise httpx.ReadTimeout("no answer")
    hung_since = time.monotonic()
    endpoint.answered()  # another exchange answered while a third one hung: that one does not count
    endpoint.unanswered("timeout after 5 s", hung_since)
    assert endpoint.not_answering() is None
    for _ in range(answering.UNANSWERED_IN_A_ROW):
        with pytest.raises(httpx.ReadTimeout), guarded("203.0.113.7:8080", 5.0):
            raise httpx.ReadTimeout("no answer")
    with pytest.raises(NotAnswering) as refused, guarded("203.0.113.7:8080", 5.0):
        raise AssertionError("sent although the endpoint is not answering")
    assert describe(refused.value).startswith("unreachable: not sent: the last 3 exchanges with 203.0.113.7:8080")
    assert "timeout after 5 s" in str(refused.value) and endpoint.not_sent == 1
    with guarded("198.51.100.1:80", 1.0):  # another endpoint, undeclared: never guarded
        pass
    deadline = time.monotonic() + 5
    while endpoint.silent() and time.monotonic() < deadline:  # until the retry is due
        time.sleep(0.02)
    with guarded("203.0.113.7:8080", 5.0):  # the retry is sent, and answered
        pass
    with guarded("203.0.113.7:8080", 5.0):
        pass


def test_remedies_name_this_environments_addresses_never_a_password(tmp_path, monkeypatch):
    from veza_synthetics.remedies import render
    monkeypatch.setenv("PG_PW", "pg-secret-1")
    monkeypatch.setenv("REDIS_URL_T", "redis://:redis-secret-2@cache.veza.example:6380/0")
    p = profile.load(write(tmp_path, """
[backend]
url = "https://api.veza.example"
health_path = "/api/health"
[prometheus]
url = "https://prom.veza.example"
[postgres]
host = "db.veza.example"
port = 6432
dbname = "veza_prod"
user = "veza_monitor"
password = "${PG_PW}"
[redis]
url = "${REDIS_URL_T}"
"""))
    guide = catalog.load().symptoms["db.degraded_performance"].runbook()["diagnostics"]
    rendered = [render(line, p) for line in guide]
    assert any(line.startswith("psql -h db.veza.example -p 6432 -U veza_monitor -d veza_prod") for line in rendered)
    assert render("curl -s http://localhost:8080/health | jq .", p) == "curl -s https://api.veza.example/api/health | jq ."
    assert render("curl 'http://localhost:9090/api/v1/query?query=up'", p) == "curl 'https://prom.veza.example/api/v1/query?query=up'"
    assert render("redis-cli ping", p) == "redis-cli -h cache.veza.example -p 6380 ping"
    assert not any(secret in " ".join(rendered + [render("redis-cli ping", p)]) for secret in ("pg-secret-1", "redis-secret-2"))


def test_every_promql_query_a_check_ran_gets_a_graph_link(tmp_path):
    from veza_synthetics.links import for_record
    from veza_synthetics.record import check_record
    p = profile.load(write(tmp_path, '[prometheus]\nurl = "https://prom.example"\n[links]\n'
                                     'logs = "https://logs.example/?q={request_id}&t={start}"\n'))
    v = verdict("perf.resource_saturation")
    v.evidence["cpu"] = {"query": 'avg(rate(node_cpu_seconds_total{mode!="idle"}[5m]))', "series": []}
    v.evidence["postgres"] = {"exporter": "postgres", "figures": {"connections": {"query": "sum(pg_stat_activity_count)"}}}
    v.evidence["sample"] = {"slowest": [{"endpoint": "me", "ms": 812.0, "at": "2026-12-01T02:00:00.000+00:00",
                                         "request_id": "veza-synth-1", "trace_id": "ab" * 16}]}
    v.against("cpu_pct", 97, label="cpu")
    links = for_record(check_record(catalog.load().symptoms["perf.resource_saturation"], v, [v], False, 0.1, PATTERNS_ONLY), p)
    graphs = [link["url"] for link in links if link["kind"] == "prometheus"]
    assert graphs == ["https://prom.example/graph?g0.expr=avg%28rate%28node_cpu_seconds_total%7Bmode%21%3D%22idle%22%7D"
                      "%5B5m%5D%29%29&g0.tab=0&g0.range_input=1h",
                      "https://prom.example/graph?g0.expr=sum%28pg_stat_activity_count%29&g0.tab=0&g0.range_input=1h"]
    logs = [link for link in links if link["kind"] == "logs"]
    assert [link["url"] for link in logs] == ["https://logs.example/?q=veza-synth-1&t=2026-12-01T01:58:00%2B00:00"]  # + quoted
    assert logs[0]["label"] == "logs of sample me 812.0 ms"


def test_production_without_variables_cannot_start(tmp_path):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEZA_")}
    run = subprocess.run([sys.executable, "-m", "veza_synthetics", "run", "--env", "production",
                          "--reports-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2
    assert "missing environment variable(s): VEZA_BACKEND_URL" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_a_shared_measurement_is_taken_once_whichever_thread_asks(tmp_path):
    """The background holds and the foreground checks ask for the same stream download: one download."""
    import threading
    import time

    from veza_synthetics.probes import Result
    from veza_synthetics.target import Target
    p = tmp_path / "p.toml"
    p.write_text('[backend]\nurl = "https://veza.invalid"\n')
    target = Target(profile.load(str(p)))
    calls = []

    def measure() -> Result:
        calls.append(threading.current_thread().name)
        time.sleep(0.2)
        return Result("stream", "x", {"bytes": 1})
    results = []
    threads = [threading.Thread(target=lambda: results.append(target.shared("stream", 1, measure))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 3 and all(r is results[0] for r in results)
    assert target.shared("stream", 2, measure) is not results[0] and len(calls) == 2  # a confirmation measures again


def test_the_twins_rate_limit_is_the_public_codes_on_the_sandboxs_time_scale():
    """B11's count, its window shortened by exactly the factor the sandbox's pace is above production's
    default: the suite's share of the limit is the one a production run has."""
    import tomllib

    from veza_synthetics.sandbox import limits
    from veza_synthetics.settings import Sampling
    sandbox_pace = tomllib.loads((profile.ENV_DIR / "sandbox-deployed.toml").read_text())["sampling"]["max_rps"]
    assert (limits.B11_LIMIT, limits.B11_WINDOW_S) == (100, 60.0)
    assert sandbox_pace / limits.TIME_SCALE == Sampling().max_rps
    limit = limits.SlidingLimit(3, 1.0)
    assert [limit.admit("a", t) for t in (0.0, 0.1, 0.2, 0.3)] == [True, True, True, False]
    assert limit.admit("b", 0.3) and limit.admit("a", 1.05) and not limit.admit("a", 1.06)  # per address, sliding
    assert limits.client_address({b"x-forwarded-for": b"203.0.113.9, 10.0.0.1"}, ("127.0.0.1", 5)) == "203.0.113.9"


def test_the_production_servers_limits_refuse_by_rule_and_ban():
    """B12 at scale 1 (production's own windows): the fourth login in 15 minutes, the 31st request in a
    minute, and everything for 30 minutes above 100 a minute; another address is untouched."""
    from veza_synthetics.sandbox.limits import LOGIN, ProductionLimits
    limits = ProductionLimits(scale=1.0)
    assert [limits.refuse("a", "POST", LOGIN, t) for t in (0, 1, 2)] == [None, None, None]
    assert limits.refuse("a", "POST", LOGIN, 3) == ("logins", 897)
    assert limits.refuse("a", "GET", "/health", 4) is None and limits.refuse("b", "POST", LOGIN, 4) is None
    flood = ProductionLimits(scale=1.0)
    answers = [flood.refuse("c", "GET", "/health", i * 0.1) for i in range(102)]
    assert answers[29] is None and answers[30] == ("requests", 57)
    assert answers[101] == ("ban", 1800) and flood.refuse("c", "GET", "/health", 1700) == ("ban", 110)
    assert flood.refuse("c", "GET", "/health", 1811) is None


def test_the_package_imports_in_one_direction():
    """No import cycle in the package, type-checking imports included (grimp's graph): each module can be read
    knowing only what it imports."""
    import grimp
    graph = grimp.build_graph("veza_synthetics")
    cycles = sorted((module, imported) for module in graph.modules
                    for imported in graph.find_modules_directly_imported_by(module)
                    if graph.chain_exists(importer=imported, imported=module))
    assert not cycles, cycles


def test_no_module_of_the_package_outgrows_one_job():
    """A module a newcomer reads in one sitting: none above ~300 lines (a larger one is two jobs to split)."""
    package = Path(__file__).resolve().parents[1] / "veza_synthetics"
    sizes = {str(path.relative_to(package)): len(path.read_text().splitlines()) for path in package.rglob("*.py")}
    assert not {module: n for module, n in sizes.items() if n > 310}, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]


def test_the_documented_layout_names_every_module_of_the_package():
    """docs/layout.md matches the tree: each folder's block lists exactly the modules it holds."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "layout.md").read_text()
    section = page[:page.index("Probes never decide;")]
    listed: dict[str, set[str]] = {}
    folder = ""
    for line in section.splitlines():
        if line.startswith("    veza_synthetics/") and line.split()[0].endswith("/"):
            folder = line.split()[0].removeprefix("veza_synthetics/")
        elif line.startswith("      ") and line.split() and line.split()[0].endswith(".py"):
            listed.setdefault(folder, set()).add(line.split()[0])
    package = Path(__file__).resolve().parents[1] / "veza_synthetics"
    present: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            present.setdefault(f"{path.parent.relative_to(package)}/".removeprefix("./"), set()).add(path.name)
    assert listed == present
