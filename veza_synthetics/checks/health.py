"""The guide's health_check.sh, and the monitoring that should have paged."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from ..probes import Result, at_once, certificate, http, postgres, prometheus, redis
from ..shape import Mismatch, at_path
from ..target import Target
from ..verdict import Verdict
from . import check, exporter_reaching


@check("health.services")
def services(v: Verdict, target: Target, attempt: int) -> None:
    p, timeout = target.profile, target.timeout("request")
    endpoints = {
        "backend_health": Health(p.backend.url and f"{p.backend.url}{p.backend.health_path}", "healthy",
                                 "backend.health_status_path", p.backend.health_status_path, "backend.health_path"),
        "backend_ready": Health(p.backend.url and p.backend.ready_path and f"{p.backend.url}{p.backend.ready_path}",
                                "ready", "backend.health_status_path", p.backend.health_status_path,
                                "backend.ready_path"),
        "chat_health": Health(p.chat.health_url, "healthy", "chat.health_status_path", p.chat.health_status_path,
                              "chat.health_url"),
        "stream_health": Health(p.stream.url and p.stream.health_path and f"{p.stream.url}{p.stream.health_path}",
                                "healthy", "stream.health_status_path", p.stream.health_status_path,
                                "stream.health_path")}
    # "": the platform has none (the dev server's /ready, B2; a stream health no front door routes, D3)
    none_there = {"backend_ready": "ready" if p.backend.url and not p.backend.ready_path else "",
                  "stream_health": "health" if p.stream.url and not p.stream.health_path else ""}
    probes: dict[str, Callable[[], Result]] = {step: partial(http.fetch, target.transport, e.url, timeout)
                                               for step, e in endpoints.items() if e.url}
    if p.has_postgres:
        probes["postgres"] = partial(postgres.inspect, target.transport, p.postgres, target.timeout("connect"),
                                     {"pg_stat_activity_count": "SELECT count(*) AS connections FROM pg_stat_activity"})
    if p.has_redis:
        probes["redis"] = partial(redis.inspect, target.transport, p.redis.url, p.redis.password, target.timeout("connect"))
    answers = at_once(probes)  # every service at once: a dead platform costs one timeout, not six
    for step, endpoint in endpoints.items():
        if none_there.get(step):
            v.missing(f"{step.replace('_', ' ')}: not measured: no {none_there[step]} endpoint "
                      f"({endpoint.path_setting} is empty)")
        else:
            _health(v, step, endpoint, answers.get(step))
    _certificates(v, target, [e.url for e in endpoints.values() if e.url])
    if "postgres" in answers and v.record("postgres", answers["postgres"]):
        count = answers["postgres"].evidence["pg_stat_activity_count"][0]["connections"]
        v.require(True, "", ok_text=f"PostgreSQL answers ({count} in pg_stat_activity)")
    if "redis" in answers and v.record("redis", answers["redis"]):
        v.require(True, "", ok_text=f"Redis PING {answers['redis'].measurements['ping_ms']} ms")
    if p.has_prometheus:  # no direct access: the exporters say whether they reach their server
        for exporter, direct in (("postgres", p.has_postgres), ("redis", p.has_redis)):
            if not direct:
                exporter_reaching(v, target, exporter, {})


@dataclass(frozen=True)
class Health:
    """A health endpoint, the status it must report and where its answer says it (a profile setting)."""
    url: str
    want: str
    status_setting: str
    status_path: str
    path_setting: str  # the setting that names the endpoint: a 404 says which to look at


def _health(v: Verdict, step: str, endpoint: Health, result: Result | None) -> None:
    """One health endpoint's answer: HTTP 200 and the status it must report, with what it says is broken."""
    label, want = step.replace("_", " "), endpoint.want
    if not endpoint.url or result is None:
        v.note(f"{label}: not configured in this profile")
        return
    if not v.record(step, result):
        return
    answer = result.evidence.get("body")
    found = at_path(answer, endpoint.status_path, endpoint.status_setting)
    if isinstance(found, Mismatch) and result.measurements["status"] == 200:
        v.error(step, endpoint.url, str(found))  # a healthy answer of another shape: the setting is wrong
        return
    status = "" if isinstance(found, Mismatch) else str(found).lower()
    parent = at_path(answer, endpoint.status_path.rpartition(".")[0], endpoint.status_setting)
    body = parent if isinstance(parent, dict) else {}
    broken = "; ".join(f"{k} {body[k]}" for k in ("database", "redis", "reason")
                       if isinstance(body.get(k), str) and body[k] != "ok")
    v.require(result.measurements["status"] == 200 and status == want,
              f"{label} HTTP {result.measurements['status']} status {status or '?'!r} != {want!r}"
              + (f" ({broken})" if broken else "")
              + (f" (no such endpoint: is {endpoint.path_setting} right?)" if result.measurements["status"] == 404 else ""),
              ok_text=f"{label} {want} in {result.measurements['latency_ms']:.0f} ms")


def _certificates(v: Verdict, target: Target, urls: list[str]) -> None:
    """Days left on each HTTPS endpoint's certificate (one per host and port)."""
    seen: dict[str, str] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.netloc not in seen:
            seen[parts.netloc] = url
    for number, (address, url) in enumerate(sorted(seen.items()), 1):
        result = certificate.days_left(target.transport, url, target.timeout("connect"))
        if v.record(f"certificate_{number}", result):
            v.against("cert_days_left", result.measurements["days_left"], label=f"certificate of {address}",
                      detail=f"expires {result.evidence['not_after']}")


@check("health.monitoring")
def monitoring(v: Verdict, target: Target, attempt: int) -> None:
    p = target.profile
    if not p.has_prometheus:
        v.missing("no Prometheus in this profile")
        return
    cfg, jobs = p.prometheus, p.prometheus.job_names()
    result = prometheus.overview(target.transport, cfg.url, target.timeout("request"))
    if attempt == 2 and not result.error and any(t["job"] in jobs for t in result.evidence["targets_down"]):
        time.sleep(cfg.scrape_interval_s)  # a confirmation judges the next scrape, not the one that just failed
        result = prometheus.overview(target.transport, cfg.url, target.timeout("request"))
    if not v.record("prometheus", result):
        return
    ev, m = result.evidence, result.measurements
    v.require(m["ready"], "Prometheus /-/ready is not 200")
    ours = [t for t in ev["targets_down"] if t["job"] in jobs]
    others = [t for t in ev["targets_down"] if t["job"] not in jobs]
    down = ", ".join(f"{t['job']} ({t['last_error'] or t['health']})" for t in ours)
    v.against("targets_down", len(ours), text=f"Veza scrape targets down {len(ours)}" + (f": {down}" if down else "")
              + f" (jobs {', '.join(sorted(jobs))})")
    if others:
        v.note("targets of other jobs down (not Veza's, not judged): "
               + ", ".join(f"{t['job']} {t['instance']}" for t in others))
    if not cfg.group_names():
        v.missing("alert rules: not measured: no rule group named (prometheus.rule_groups is empty)")
    for group in sorted(cfg.group_names()):
        rules = ev["rule_groups"].get(group)
        v.require(bool(rules), f"rule group {group} not loaded (groups: {sorted(ev['rule_groups'])})",
                  ok_text=f"rule group {group} loaded ({len(rules or [])} rules)")
    critical = [a for a in ev["firing_alerts"] if a["severity"] == "critical"]
    our_rules = {rule for group in cfg.group_names() for rule in ev["rule_groups"].get(group, [])}
    veza = [a for a in critical if a["alert"] in our_rules or a.get("job") in jobs]
    v.against("critical_alerts_firing", len(veza),
              text=f"Veza critical alerts firing {len(veza)}" + (f": {[a['alert'] for a in veza]}" if veza else ""))
    if len(critical) > len(veza):
        v.note(f"other critical alerts firing (not judged): {[a['alert'] for a in critical if a not in veza]}")
