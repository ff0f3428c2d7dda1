"""Database: degraded query performance (db.degraded_performance): the API's search timed, the statements
that ran during it (pg_stat_statements, where the server has it), long-running queries, transactions left
open, the cache hit ratio; from a read-only pg_monitor session, or postgres_exporter through Prometheus.
"""
from __future__ import annotations

import time
from typing import Any

from ..probes import Result, exporters, http, postgres, spread
from ..shape import Mismatch, list_at
from ..target import Target
from ..verdict import Verdict
from . import check, exporter_reaching
from .database import through_exporter

# Fewer block reads in the window than this and the ratio says nothing: ten cold blocks would swing it past
# the 1 % its warning level allows.
MIN_BLOCKS = 1000


OPTIONAL = frozenset({"statements"})  # pg_stat_statements: loaded by few servers (the public Veza's by none, D1)


def _statements(target: Target) -> Result:
    return postgres.inspect(target.transport, target.profile.postgres, target.timeout("connect"),
                            {"statements": postgres.STATEMENTS, "cache": postgres.CACHE_HIT}, OPTIONAL)


@check("db.degraded_performance")
def degraded_performance(v: Verdict, target: Target, attempt: int) -> None:
    p = target.profile
    if not p.has_postgres and not through_exporter(v, target, "table sizes"):
        return
    before = _statements(target) if p.has_postgres else None
    _search_sample(v, target)
    if before is not None:
        _judge_statements(v, target, before)
    else:
        _judge_exported_statements(v, target)


def _search_sample(v: Verdict, target: Target) -> None:
    """The API's search, the query the guide's slow-query section is about, timed call by call."""
    p = target.profile
    if not p.backend.search_path:
        v.missing("API search: not measured: no search that reads the database (backend.search_path is empty)")
        return
    searches: list[float] = []
    for i in range(p.sampling.search_calls):
        query = p.backend.search_query.replace("{n}", str(i + 1))
        url = f"{p.backend.url}{p.backend.search_path}"
        result = http.fetch(target.transport, url, target.timeout("request"), params={"q": query})
        if result.error:
            v.record(f"search_{i + 1}", result)
            break
        status = result.measurements["status"]
        results = list_at(result.evidence.get("body"), p.backend.search_results_path, "backend.search_results_path")
        if status == 200 and isinstance(results, Mismatch):
            v.evidence[f"search_{i + 1}"] = result.evidence
            v.error(f"search_{i + 1}", url, str(results))
            break
        found = 0 if isinstance(results, Mismatch) else len(results)
        if not v.require(status == 200 and found >= p.backend.search_min_results,
                         f"search {query!r} answered {status} with {found} results"
                         + (f" (at least {p.backend.search_min_results} expected)" if status == 200 else "")):
            v.evidence[f"search_{i + 1}"] = result.evidence
            break
        searches.append(result.measurements["latency_ms"])  # a fast error is never a fast search
    v.evidence["search"] = spread(searches)
    v.against_p95("search_p95_ms", v.evidence["search"], label="API search", unit_of="searches")


def _judge_statements(v: Verdict, target: Target, before: Result) -> None:
    """pg_stat_statements before and after the sample: the statements that ran during it; then the sessions
    waiting on a lock, long-running queries, open transactions and the cache, each reading on its own (one
    that could not answer takes no other with it)."""
    p = target.profile
    after = postgres.inspect(target.transport, p.postgres, target.timeout("connect"), {
        "statements": postgres.STATEMENTS, "lock_waits": postgres.LOCK_WAITS, "long_running": postgres.LONG_RUNNING,
        "open_transactions": postgres.OPEN_TRANSACTIONS,
        "cache": postgres.CACHE_HIT, "table_sizes": postgres.TABLE_SIZES}, OPTIONAL)
    if not (v.record("statements_before", before) and v.record("statements_after", after)):
        return
    for when, reading in (("before", before), ("after", after)):
        for name, why in reading.evidence.get("failed", {}).items():
            v.error(f"{name}_{when}", p.postgres.address, why)
    had = {name: name in before.evidence and name in after.evidence for name in ("statements", "cache")}
    absent = {**before.evidence.get("absent", {}), **after.evidence.get("absent", {})}
    if "statements" in absent:
        v.missing(f"pg_stat_statements: not measured: {absent['statements']} (shared_preload_libraries, then "
                  "CREATE EXTENSION pg_stat_statements, give it)")
    elif had["statements"]:
        _judge_frequent(v, before, after)
    if "lock_waits" in after.evidence:
        _lock_waits(v, after.evidence["lock_waits"])
    if "long_running" in after.evidence:
        active = [r["seconds"] for r in after.evidence["long_running"]
                  if r["state"] == "active" and r["seconds"] is not None]
        v.against("longest_active_s", max(active, default=0.0), label="longest active query")
    if "open_transactions" in after.evidence:
        _open_transactions(v, after.evidence["open_transactions"][0], "")
    if had["cache"]:
        hit, read = (after.evidence["cache"][0]["blks_hit"] - before.evidence["cache"][0]["blks_hit"],
                     after.evidence["cache"][0]["blks_read"] - before.evidence["cache"][0]["blks_read"])
        _cache_hit(v, hit, read, "of the platform's tables during the check")


def _lock_waits(v: Verdict, waits: list[dict[str, Any]]) -> None:
    """The longest wait on another session's lock, judged, with the session blocking it named."""
    if not waits:
        v.against("lock_wait_s", 0.0, label="longest wait on a lock", detail="no session waiting on a lock")
        return
    w = waits[0]
    v.against("lock_wait_s", w["waiting_s"] or 0.0, label="longest wait on a lock",
              detail=f"{len({r['waiting_pid'] for r in waits})} session(s) waiting; pid {w['waiting_pid']} "
                     f"({w['waiting_application'] or 'no application name'}) waits for {w['waits_for']}, held by "
                     f"pid {w['blocking_pid']} ({w['blocking_application'] or 'no application name'}, "
                     f"{w['blocking_state']} for {w['blocking_for_s']:g} s, holding {w['blocking_holds']}; "
                     f"its last query {w['blocking_query']!r})")


def _judge_frequent(v: Verdict, before: Result, after: Result) -> None:
    """The statements that ran 3 times or more between the two readings, the slowest judged."""
    earlier = {r["queryid"]: r for r in before.evidence["statements"]}
    window = []
    for row in after.evidence["statements"]:
        old = earlier.get(row["queryid"], {"calls": 0, "total_exec_time": 0.0})
        calls = row["calls"] - old["calls"]
        if calls >= 3:
            window.append({"query": row["query"], "calls": calls,
                           "mean_ms": round((row["total_exec_time"] - old["total_exec_time"]) / calls, 2)})
    window.sort(key=lambda r: r["mean_ms"], reverse=True)
    v.evidence["queries_during_check"] = window[:10]
    v.evidence["top_by_mean_exec_time"] = sorted(
        ({"query": r["query"], "calls": r["calls"], "mean_exec_time_ms": round(r["mean_exec_time"], 2)}
         for r in after.evidence["statements"]), key=lambda r: r["mean_exec_time_ms"], reverse=True)[:10]
    if window:
        v.against("frequent_query_mean_ms", window[0]["mean_ms"], label="frequent query mean",
                  detail=repr(window[0]["query"][:70]))
    else:
        v.missing("pg_stat_statements: no query ran 3 times during the check")


def _judge_exported_statements(v: Verdict, target: Target) -> None:
    """The same figures from postgres_exporter, over the rate window, once a scrape has seen the sample."""
    cfg = target.profile.prometheus
    wait = 2 * cfg.scrape_interval_s
    if not exporters.wait_for_scrape(target.transport, cfg.url, "pg_up", cfg.postgres_selector, time.time(), wait,
                                     target.timeout("request")):
        v.note(f"no postgres_exporter scrape within {wait:g} s after the searches: its figures may predate them")
    figures = exporter_reaching(v, target, "postgres",
                                {**exporters.POSTGRES_PERFORMANCE, "statements": exporters.POSTGRES_STATEMENTS})
    if figures is None:
        return
    window = sorted(figures.figures["statements"], key=lambda s: s["value"], reverse=True)
    v.evidence["queries_over_window"] = [{"query": s["labels"].get("query", "?"), "mean_ms": round(s["value"], 2)}
                                         for s in window]
    if window:
        v.against("frequent_query_mean_ms", window[0]["value"],
                  label=f"frequent query mean over {cfg.rate_window} (postgres_exporter)",
                  detail=repr(window[0]["labels"].get("query", "?")[:70]))
    else:
        v.missing(f"veza_statements: no statement ran 3 times over {cfg.rate_window} "
                  "(load postgres-exporter-queries.yaml in the exporter)")
    _exported_lock_waits(v, figures.figures["lock_waits"])
    longest = figures.value("longest_active_s")
    if longest is None:
        v.missing("longest active transaction: no pg_stat_activity_max_tx_duration series")
    else:
        v.against("longest_active_s", longest, label="longest active transaction (postgres_exporter)")
    _open_transactions(v, {"longest_transaction_s": figures.value("longest_transaction_s"),
                           "idle_in_transaction": figures.value("idle_in_transaction")}, " (postgres_exporter)")
    _cache_hit(v, figures.value("blks_hit") or 0.0, figures.value("blks_read") or 0.0,
               f"over {cfg.rate_window} (postgres_exporter)")


def _exported_lock_waits(v: Verdict, series: list[dict[str, Any]]) -> None:
    """The longest lock wait through postgres_exporter, the blocking session named by its labels (absent series:
    nobody waits, or the exporter lacks the shipped query; it cannot tell which, so it says both)."""
    if not series:
        v.note("no session waiting on a lock according to postgres_exporter (veza_lock_waits: the shipped "
               "postgres-exporter-queries.yaml)")
        return
    labels = series[0]["labels"]
    application = labels.get("blocking_application") or "no application name"
    v.against("lock_wait_s", series[0]["value"], label="longest wait on a lock (postgres_exporter)",
              detail=f"held by pid {labels.get('blocking_pid', '?')} ({application}, "
                     f"{labels.get('blocking_state', '?')}, holding {labels.get('blocking_holds', '?')})")


def _open_transactions(v: Verdict, row: dict[str, Any], source: str) -> None:
    """Transactions left open, judged from their start whatever their state: an idle one holds its locks, its
    snapshot and its connection (the guide's connection timeouts and slow queries both follow)."""
    seen = f" ({row['longest_state']}, {row['longest_application'] or 'no application name'})" \
        if row.get("longest_state") else ""
    v.against("longest_transaction_s", row["longest_transaction_s"], label=f"longest open transaction{source}",
              detail=seen.strip(" ()") or None)
    v.against("idle_in_transaction", row["idle_in_transaction"], label=f"sessions idle in transaction{source}")


def _cache_hit(v: Verdict, hit: float, read: float, when: str) -> None:
    if hit + read >= MIN_BLOCKS:
        v.against("cache_hit_pct", 100 * hit / (hit + read), label=f"cache hit ratio {when}")
    else:
        v.note(f"cache hit ratio: only {hit + read:.0f} blocks accessed {when} (< {MIN_BLOCKS}), not judged")
