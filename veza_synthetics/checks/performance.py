"""Performance: sampled response times, timeouts and 5xx; resource saturation from node_exporter."""
from __future__ import annotations

from ..probes import Result, exporters, prometheus
from ..target import Target
from ..verdict import Verdict
from . import check


def _sample(v: Verdict, target: Target, attempt: int) -> Result | None:
    result = target.http_sample(attempt)
    login = result.evidence.get("login", "ok")
    if login != "ok":
        v.error("login", target.profile.backend.url, f"the sample cannot call me: {login}")
    if "not_sampled" in result.evidence:
        v.missing(f"sample: not measured: {result.evidence['not_sampled']}")
        return None
    usable = v.record("sample", result)
    for key, lead in (("planned", "planned: "), ("confirming", "confirmation: "), ("gave_up", "sample stopped early: ")):
        if key in result.evidence:
            v.note(lead + result.evidence[key])
    if "window" in result.evidence:
        w = result.evidence["window"]
        v.note(f"judged over a window of recent samples (serve.window_s): {w['requests']} requests since {w['since']}, "
               f"{w['this_sample']} of them this round's")
    if not usable:
        return None
    m = result.measurements
    v.require(m["not_json"] == 0, f"bad response: {m['not_json']}/{m['requests']} answers were not JSON")
    return result


def _real_traffic(v: Verdict, target: Target, threshold: str, label: str, expr: str, scale: float,
                  unit: str) -> None:
    """The platform's own figure over the rate window (all of its users' traffic, from Prometheus): a
    condition where the profile asks for it (`prometheus.judge_real_traffic`), else a note beside the
    sample, so an earlier incident still in the window cannot fail a run that did not ask."""
    p = target.profile
    if not p.has_prometheus:
        return
    result = prometheus.query(target.transport, p.prometheus.url, expr, target.timeout("request"))
    wording = f"platform {label} over {p.prometheus.rate_window} (Prometheus)"
    if result.error or not result.series:
        v.missing(f"{wording}: not enough data" + (f" ({result.error})" if result.error else ""))
        return
    value = result.series[0]["value"] * scale
    v.measurements[f"real_traffic.{threshold}"] = round(value, 3)
    if p.prometheus.judge_real_traffic:
        v.against(threshold, value, label=wording)
    else:
        v.note(f"{wording}: {value:.3g}{unit} (not judged: prometheus.judge_real_traffic is off)")


@check("perf.high_response_time")
def high_response_time(v: Verdict, target: Target, attempt: int) -> None:
    result = _sample(v, target, attempt)
    if result is None:
        return
    for name, stats in result.evidence["per_endpoint"].items():
        v.measurements[f"sample.{name}.p50_ms"], v.measurements[f"sample.{name}.p99_ms"] = \
            stats["p50_ms"], stats["p99_ms"]
        v.against_p95("p95_ms", stats, label=name, unit_of="successful answers")
    window = target.profile.prometheus.rate_window
    _real_traffic(v, target, "p95_ms", "p95", f"histogram_quantile(0.95, sum by (le) "
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
    pace = result.evidence["pace"]
    v.against("throttled_pct", m["throttled_pct"], label="throttled (429, and not sent after five)",
              detail=f"{m['throttled']}/{m['requests']} sent at {pace['max_rps']:g} requests/s at most"
              + (f", Retry-After {', '.join(retry)} s" if retry else "")
              + (f"; {m['abandoned']} more not sent: the sampler backed off" if m["abandoned"] else ""))
    window = target.profile.prometheus.rate_window
    _real_traffic(v, target, "error_pct", "5xx ratio", f'sum(rate(http_requests_total{{status=~"5.."}}[{window}])) '
                  f"/ sum(rate(http_requests_total[{window}]))", 100, " %")


@check("perf.resource_saturation")
def resource_saturation(v: Verdict, target: Target, attempt: int) -> None:
    """Every instance's CPU and memory, and every mount's disk, from node_exporter: a full data volume
    fails the check even when / has room."""
    p = target.profile
    if not p.has_prometheus:
        v.missing("no Prometheus in this profile: node metrics unavailable")
        return
    figures = target.exporter_figures("node", exporters.NODE)
    if not v.record("node_exporter", figures):
        return
    for name, series in figures.figures.items():
        if not series:
            v.missing(f"{name}: not enough data (no node_exporter series for {p.prometheus.node_selector} yet)")
            continue
        for one in sorted(series, key=lambda s: s["value"]):  # the worst judged last: its value is the measurement
            where = " ".join(filter(None, (one["labels"].get("instance", "?"), one["labels"].get("mountpoint"))))
            v.against(name, one["value"], label=f"{name.split('_')[0]} {where}")
