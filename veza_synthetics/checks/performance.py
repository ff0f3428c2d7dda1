"""Performance: sampled response times, timeouts and 5xx; resource saturation from node metrics."""
from __future__ import annotations

from ..probes import Result, prometheus
from ..target import Target
from ..verdict import Verdict
from . import check


def _sample(v: Verdict, target: Target, attempt: int) -> Result | None:
    result = target.http_sample(attempt)
    login = result.evidence.get("login", "ok")
    if login != "ok":
        v.error("login", target.profile.backend.url, f"the sample cannot call me: {login}")
    if not v.record("sample", result):
        return None
    m = result.measurements
    v.require(m["not_json"] == 0, f"bad response: {m['not_json']}/{m['requests']} answers were not JSON")
    return result


def _prometheus_figure(v: Verdict, target: Target, step: str, label: str, expr: str, scale: float = 1.0,
                       unit: str = "") -> None:
    """Prometheus's own view, reported beside the sample; missing data is said, not hidden."""
    p = target.profile
    if not p.has_prometheus:
        return
    result = prometheus.query(p.prometheus.url, expr, target.timeout("request"))
    if result.error or not result.series:
        v.missing(f"Prometheus {label}: not enough data" + (f" ({result.error})" if result.error else ""))
        return
    value = result.series[0]["value"] * scale
    v.measurements[f"{step}.value"] = round(value, 3)
    v.note(f"Prometheus {label}: {value:.3g}{unit} over {p.prometheus.rate_window}")


@check("perf.high_response_time")
def high_response_time(v: Verdict, target: Target, attempt: int) -> None:
    result = _sample(v, target, attempt)
    if result is None:
        return
    for name, stats in result.evidence["per_endpoint"].items():
        v.measurements[f"sample.{name}.p50_ms"], v.measurements[f"sample.{name}.p99_ms"] = \
            stats["p50_ms"], stats["p99_ms"]
        if stats["n"] == 0:
            v.missing(f"{name}: no successful answer to time (statuses {stats['status_counts']})")
            continue
        v.against("p95_ms", stats["p95_ms"], label=f"{name} p95", detail=f"n={stats['n']} successful answers")
    window = target.profile.prometheus.rate_window
    _prometheus_figure(v, target, "prometheus_p95_ms", "p95", f"histogram_quantile(0.95, sum by (le) "
                       f"(rate(http_request_duration_seconds_bucket[{window}])))", 1000, " ms")


@check("perf.frequent_timeouts")
def frequent_timeouts(v: Verdict, target: Target, attempt: int) -> None:
    result = _sample(v, target, attempt)
    if result is None:
        return
    m = result.measurements
    v.against("timeouts", m["timeouts"], text=f"timeouts {m['timeouts']}/{m['requests']}")
    v.against("timeout_pct", m["timeout_pct"], label="timeout share")


@check("perf.error_rate")
def error_rate(v: Verdict, target: Target, attempt: int) -> None:
    result = _sample(v, target, attempt)
    if result is None:
        return
    m = result.measurements
    v.against("error_pct", m["error_pct"], label="error share (5xx, failed connections)",
              detail=f"{m['errors']}/{m['requests']}; statuses {result.evidence['status_counts']}")
    retry = result.evidence["retry_after"]
    v.against("throttled_pct", m["throttled_pct"], label="throttled (429)",
              detail=f"{m['throttled']}/{m['requests']}" + (f", Retry-After {', '.join(retry)} s" if retry else ""))
    window = target.profile.prometheus.rate_window
    _prometheus_figure(v, target, "prometheus_5xx_pct", "5xx ratio",
                       f'sum(rate(http_requests_total{{status=~"5.."}}[{window}])) '
                       f"/ sum(rate(http_requests_total[{window}]))", 100, " %")


SATURATION = {
    "cpu_pct": "100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{mode=\"idle\"}}[{w}])))",
    "memory_pct": "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
    "disk_pct": "100 * (1 - node_filesystem_avail_bytes{{mountpoint=\"/\"}} / node_filesystem_size_bytes{{mountpoint=\"/\"}})",
}


@check("perf.resource_saturation")
def resource_saturation(v: Verdict, target: Target, attempt: int) -> None:
    p = target.profile
    if not p.has_prometheus:
        v.missing("no Prometheus in this profile: node metrics unavailable")
        return
    for name, template in SATURATION.items():
        result = prometheus.query(p.prometheus.url, template.format(w=p.prometheus.rate_window),
                                  target.timeout("request"))
        if not v.record(name, result):
            continue
        if not result.series:
            v.missing(f"{name}: not enough data (no node metrics series yet)")
            continue
        for series in result.series:
            v.against(name, series["value"], label=f"{name.split('_')[0]} {series['labels'].get('instance', '?')}")
