"""Exporter figures read through Prometheus: node_exporter, postgres_exporter, redis_exporter.

What production usually grants a CI runner is Prometheus, not the database: these figures
let the database, session and resource checks judge without a direct connection. Each
query names its exporter's series with the profile's label selector (`{s}`) and rate
window (`{w}`); the evidence keeps every query with what it returned.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from . import Result
from .prometheus import query
from .transport import Transport

POSTGRES = {
    "up": "min(pg_up{{{s}}})",
    "connections": "sum(pg_stat_activity_count{{{s}}})",
    "max_connections": "max(pg_settings_max_connections{{{s}}})",
    "reserved": "max(pg_settings_superuser_reserved_connections{{{s}}})",
}
POSTGRES_ACTIVITY = "sum by (datname, state) (pg_stat_activity_count{{{s}}}) > 0"
POSTGRES_CONSTRAINTS = {"not_valid_constraints": "sum(veza_constraints_not_valid{{{s}}})"}  # the shipped custom query
POSTGRES_PERFORMANCE = {
    "longest_active_s": 'max(pg_stat_activity_max_tx_duration{{{s},state="active"}})',
    "longest_transaction_s": "max(pg_stat_activity_max_tx_duration{{{s}}})",  # from xact_start, any state
    "idle_in_transaction": 'sum(pg_stat_activity_count{{{s},state=~"idle in transaction.*"}})',
    "blks_hit": "sum(increase(pg_stat_database_blks_hit{{{s}}}[{w}]))",
    "blks_read": "sum(increase(pg_stat_database_blks_read{{{s}}}[{w}]))",
    # the shipped custom query: the longest lock wait behind each blocking session, the blocker in its labels
    "lock_waits": "topk(1, veza_lock_waits_waiting_seconds{{{s}}})",
}
# Mean execution time over the window of each statement that ran at least 3 times in it (shipped custom query).
POSTGRES_STATEMENTS = ("topk(10, sum by (queryid, query) (increase(veza_statements_exec_ms{{{s}}}[{w}])) "
                       "/ sum by (queryid, query) (increase(veza_statements_calls{{{s}}}[{w}])) "
                       "and sum by (queryid, query) (increase(veza_statements_calls{{{s}}}[{w}])) >= 3)")
REDIS = {
    "up": "min(redis_up{{{s}}})",
    "evicted_keys": "sum(increase(redis_evicted_keys_total{{{s}}}[{w}]))",
    "maxmemory": "max(redis_memory_max_bytes{{{s}}})",
    "used_memory": "max(redis_memory_used_bytes{{{s}}})",
}
REDIS_POLICY = "redis_instance_info{{{s}}}"  # the policy is a label
NODE = {
    "cpu_pct": '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{{s},mode="idle"}}[{w}])))',
    "memory_pct": "100 * (1 - node_memory_MemAvailable_bytes{{{s}}} / node_memory_MemTotal_bytes{{{s}}})",
    "disk_pct": '100 * (1 - node_filesystem_avail_bytes{{{s},mountpoint=~"{m}"}} '
                '/ node_filesystem_size_bytes{{{s},mountpoint=~"{m}"}})',
}


# Whether an exporter reaches its server: its gauge, the server it names, the query family holding its "up".
REACHES = {"postgres": ("pg_up", "PostgreSQL", POSTGRES), "redis": ("redis_up", "Redis", REDIS)}


@dataclass
class Figures(Result):
    """Named figures: each one a list of series ({labels, value}); `value()` for single-valued ones."""
    figures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        found = self.figures.get(name) or []
        return found[0]["value"] if found else None


SCRAPED = "min(up{{{s}}})"  # Prometheus's own health of the exporter's scrape


def read(transport: Transport, url: str, queries: dict[str, str], timeout_s: float, exporter: str, **fill: str) -> Figures:
    """Run each named query (templates filled with `fill`); the first failing query is the error, and
    so is an exporter Prometheus cannot scrape (its figures would be stale or gone). The measurements
    hold single-valued figures; a figure with no series is simply absent."""
    figures: dict[str, list[dict[str, Any]]] = {}
    shown: dict[str, Any] = {}
    scraped = query(transport, url, SCRAPED.format(**fill), timeout_s)
    if scraped.error:
        return Figures("prometheus", url, error=f"{exporter} figures: {scraped.error}")
    if scraped.series and scraped.series[0]["value"] == 0:
        return Figures("prometheus", url, error=f"Prometheus cannot scrape {exporter} ({fill.get('s')}): up 0")
    for name, template in queries.items():
        expr = template.format(**fill)
        result = query(transport, url, expr, timeout_s)
        if result.error:
            return Figures("prometheus", url, error=f"{exporter} figures: {result.error}")
        figures[name] = result.series
        shown[name] = {"query": expr, "series": result.series[:10]}
    measurements = {k: round(v[0]["value"], 3) for k, v in figures.items() if len(v) == 1}
    return Figures("prometheus", url, measurements, {"exporter": exporter, "figures": shown}, figures=figures)


def wait_for_scrape(transport: Transport, url: str, up_metric: str, selector: str, since: float, wait_s: float,
                    timeout_s: float) -> bool:
    """Wait (at most `wait_s`) until Prometheus holds a sample of the exporter taken after `since`
    (epoch seconds), so figures about what a check just did include it. False if none came."""
    deadline = time.monotonic() + wait_s
    expr = f"max(timestamp({up_metric}{{{selector}}}))"
    while True:
        result = query(transport, url, expr, timeout_s)
        if result.series and result.series[0]["value"] >= since:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

