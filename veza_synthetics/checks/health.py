"""The guide's health_check.sh, and the monitoring that should have paged."""
from __future__ import annotations

from ..probes import http, postgres, prometheus, redis
from . import check


@check("health.services")
def services(v, target, attempt):
    p, timeout = target.profile, target.timeout("request")
    backend = p["backend"]
    endpoints = {"backend health": (f"{backend['url']}{backend['health_path']}", "healthy"),
                 "backend ready": (f"{backend['url']}{backend['ready_path']}", "ready"),
                 "chat health": (p["chat"]["health_url"], "healthy"),
                 "stream health": (f"{p['stream']['url']}/health/detailed", "healthy")}
    for label, (url, want) in endpoints.items():
        if not url or url.startswith("/") or url.startswith("/health"):
            v.note(f"{label}: not configured in this profile")
            continue
        result = http.fetch(url, timeout)
        if not v.record(result):
            continue
        body = result.evidence.get("body") if isinstance(result.evidence.get("body"), dict) else {}
        status = str(body.get("status", "")).lower()
        v.evidence[label] = result.evidence
        broken = "; ".join(f"{k} {body[k]}" for k in ("database", "redis", "reason")
                           if isinstance(body.get(k), str) and body[k] != "ok")
        v.require(result.measurements["status"] == 200 and status == want,
                  f"{label} HTTP {result.measurements['status']} status {status or '?'!r} != {want!r}"
                  + (f" ({broken})" if broken else ""),
                  ok_text=f"{label} {want} in {result.measurements['latency_ms']:.0f} ms")
    if p.has("postgres"):
        result = postgres.inspect(p["postgres"], target.timeout("connect"),
                                  {"pg_stat_activity_count": "SELECT count(*) AS connections FROM pg_stat_activity"})
        if v.record(result):
            count = result.evidence["pg_stat_activity_count"][0]["connections"]
            v.require(True, "", ok_text=f"PostgreSQL answers ({count} in pg_stat_activity)")
    if p.has("redis"):
        result = redis.inspect(p["redis"]["url"], p["redis"]["password"], target.timeout("connect"))
        if v.record(result):
            v.require(True, "", ok_text=f"Redis PING {result.measurements['ping_ms']} ms")


@check("health.monitoring")
def monitoring(v, target, attempt):
    p = target.profile
    if not p.has("prometheus"):
        v.missing("no Prometheus in this profile")
        return
    result = prometheus.overview(p["prometheus"]["url"], target.timeout("request"))
    if not v.record(result):
        return
    ev = result.evidence
    v.require(result.measurements["ready"], "Prometheus /-/ready is not 200")
    down = ", ".join(f"{t['job']} ({t['last_error'] or t['health']})" for t in ev["targets_down"])
    v.against("targets_down", result.measurements["targets_down"],
              text=f"scrape targets down {result.measurements['targets_down']}/{result.measurements['targets']}"
                   + (f": {down}" if down else ""))
    rules = ev["rule_groups"].get("veza_alerts")
    v.require(rules is not None and "HighErrorRate" in rules,
              "rule group veza_alerts with HighErrorRate not loaded" + (f" (groups: {sorted(ev['rule_groups'])})"))
    critical = [a for a in ev["firing_alerts"] if a["severity"] == "critical"]
    v.against("critical_alerts_firing", len(critical),
              text=f"critical alerts firing {len(critical)}" + (f": {[a['alert'] for a in critical]}" if critical else ""))
