"""Prometheus probe: readiness, targets, rules, alerts and instant queries over the HTTP API."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import SetupError
from ..profile_rules import seconds
from . import Result, address, describe
from .transport import Transport


def _get(client: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    response = client.get(path, params=params or None)
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise ValueError(f"{path}: status {body.get('status')}: {body.get('error')}")
    data: dict[str, Any] = body["data"]
    return data


def overview(transport: Transport, url: str, timeout_s: float) -> Result:
    """Ready?, every scrape target's health, the rule groups, the firing alerts."""
    try:
        with transport.guarded(address(url), timeout_s), \
                httpx.Client(base_url=url, timeout=timeout_s, verify=transport.tls(url)) as client:
            ready = client.get("/-/ready").status_code == 200
            targets = _get(client, "/api/v1/targets")["activeTargets"]
            groups = _get(client, "/api/v1/rules")["groups"]
            alerts = _get(client, "/api/v1/alerts")["alerts"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:  # unreachable, or not Prometheus's API
        return Result("prometheus", url, error=describe(exc, timeout_s))
    down = [{"job": t["labels"].get("job"), "instance": t["labels"].get("instance"), "health": t["health"],
             "last_error": t.get("lastError", "")} for t in targets if t["health"] != "up"]
    rules = {g["name"]: sorted(r["name"] for r in g["rules"]) for g in groups}
    intervals: dict[str, float] = {}  # job -> its targets' longest scrape interval
    for t in targets:
        job = str(t["labels"].get("job"))
        try:
            intervals[job] = max(intervals.get(job, 0.0), seconds(str(t.get("scrapeInterval", ""))))
        except SetupError:  # an older Prometheus says none: not known
            continue
    firing = [{"alert": a["labels"].get("alertname"), "severity": a["labels"].get("severity"), "state": a["state"],
               "job": a["labels"].get("job")}
              for a in alerts if a["state"] == "firing"]
    return Result("prometheus", url, {"ready": ready, "targets": len(targets), "targets_down": len(down)},
                  {"targets_down": down, "rule_groups": rules, "firing_alerts": firing, "scrape_intervals_s": intervals})


@dataclass
class QueryResult(Result):
    series: list[dict[str, Any]] = field(default_factory=list)


def query(transport: Transport, url: str, expr: str, timeout_s: float) -> QueryResult:
    """An instant query: a list of {labels, value}; NaN values dropped (not data)."""
    try:
        with transport.guarded(address(url), timeout_s), \
                httpx.Client(base_url=url, timeout=timeout_s, verify=transport.tls(url)) as client:
            data = _get(client, "/api/v1/query", query=expr)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return QueryResult("prometheus", url, error=describe(exc, timeout_s))
    series = []
    for item in data.get("result", []):
        value = float(item["value"][1])
        if not math.isnan(value):
            series.append({"labels": item["metric"], "value": value})
    return QueryResult("prometheus", url, {"series": len(series)}, {"query": expr, "series": series}, series=series)
