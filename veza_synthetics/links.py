"""From a failing verdict to the platform's own tools: links built from the profile's templates
(`links.trace = "https://jaeger.example/trace/{trace_id}"`, `links.logs = "...{request_id}...{start}..."`)
for the requests that made the check fail or degrade, and a Prometheus graph for every PromQL query it
ran. Every report format shows them (results.json, report.html, summary.md, Allure)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from .profile import Profile
from .record import CheckRecord, Json
from .redact import Redactor

NAMED_LISTS = ("slowest", "failed")  # the HTTP sample's requests a verdict names
ONE_REQUEST = ("request", "connection")  # one call's ids, under its step's evidence
LOG_WINDOW = dt.timedelta(minutes=2)  # the logs link spans this much either side of the request


def _requests(evidence: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(step, ids) of every request the evidence names."""
    for step, found in evidence.items():
        if not isinstance(found, Mapping):
            continue
        for key in ONE_REQUEST:
            if isinstance(found.get(key), Mapping) and found[key].get("request_id"):
                yield step, found[key]
        for key in NAMED_LISTS:
            for named in found.get(key) or []:
                if isinstance(named, Mapping) and named.get("request_id"):
                    yield f"{step} {named.get('endpoint', '')} {named.get('ms', '')} ms".strip(), named


def _window(at: str | None) -> dict[str, str]:
    moment = dt.datetime.fromisoformat(at) if at else dt.datetime.now(dt.UTC)
    return {"start": (moment - LOG_WINDOW).isoformat(timespec="seconds"),
            "end": (moment + LOG_WINDOW).isoformat(timespec="seconds")}


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", quote(value, safe=":"))
    return out


def for_record(record: CheckRecord, profile: Profile) -> tuple[Json, ...]:
    """The record's links: traces of its attempts and logs of its named requests (a failing or degraded
    verdict only, where the profile has templates), and a graph of each PromQL query it ran."""
    cfg, out = profile.links, []
    if record.outcome in ("failed", "degraded"):
        if cfg.trace:
            for number, attempt in enumerate(record.attempts, 1):
                if attempt.get("trace_id"):
                    out.append({"kind": "trace", "label": f"trace of measurement {number}",
                                "url": _fill(cfg.trace, {"trace_id": attempt["trace_id"]})})
        if cfg.logs:
            seen = set()
            for label, ids in _requests(record.evidence):
                if ids["request_id"] in seen:
                    continue
                seen.add(ids["request_id"])
                values = {"request_id": ids["request_id"], "trace_id": ids.get("trace_id", ""), **_window(ids.get("at"))}
                out.append({"kind": "logs", "label": f"logs of {label}", "url": _fill(cfg.logs, values)})
    graph = cfg.prometheus or (f"{profile.prometheus.url}/graph" if profile.has_prometheus else "")
    if graph:
        for label, expr in _queries(record.evidence):
            url = f"{graph}?{urlencode({'g0.expr': expr, 'g0.tab': '0', 'g0.range_input': '1h'})}"
            out.append({"kind": "prometheus", "label": f"PromQL of {label}", "url": url})
    return tuple(out)


def _queries(evidence: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, PromQL) of every query the evidence shows: a step's own, and an exporter step's figures."""
    for step, found in evidence.items():
        if not isinstance(found, Mapping):
            continue
        if isinstance(found.get("query"), str):
            yield step, found["query"]
        figures = found.get("figures")
        for name, figure in (figures.items() if isinstance(figures, Mapping) else []):
            if isinstance(figure, Mapping) and isinstance(figure.get("query"), str):
                yield f"{step} {name}", figure["query"]


def attach(record: CheckRecord, profile: Profile, redactor: Redactor) -> CheckRecord:
    """The record with its links (secrets a template might hold masked, as everything a report shows)."""
    return record.but(links=tuple(redactor.data(list(for_record(record, profile)))))
