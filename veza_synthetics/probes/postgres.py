"""PostgreSQL probe: connect times, saturation, statement statistics, constraints: read-only SQL only."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..profile import Postgres
from . import Result, decided_above, describe, spread
from .transport import Transport

SATURATION = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved"""
ACTIVITY = """
SELECT coalesce(state, '?') AS state, coalesce(application_name, '') AS application, coalesce(wait_event_type, '') AS wait,
       count(*) AS connections
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 15"""
LONG_RUNNING = """
SELECT pid, state, round(extract(epoch FROM now() - query_start)::numeric, 1)::float AS seconds, left(query, 120) AS query
FROM pg_stat_activity WHERE state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()
  AND backend_type = 'client backend' ORDER BY seconds DESC NULLS LAST LIMIT 5"""
OPEN_TRANSACTIONS = """
SELECT count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
       coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float AS longest_transaction_s,
       (array_agg(state ORDER BY xact_start))[1] AS longest_state,
       (array_agg(coalesce(application_name, '') ORDER BY xact_start))[1] AS longest_application
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"""
STATEMENTS = """
SELECT queryid, left(query, 160) AS query, calls, total_exec_time, mean_exec_time
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"""
# The platform's own tables, not the database's: a new connection's catalog loads and the suite's own catalog
# queries (table sizes, constraints) are no workload of the platform's, and on an idle database they are most
# of the blocks a check's window sees (a freshly restarted real Veza read 95.9 % that way).
CACHE_HIT = """
SELECT coalesce(sum(heap_blks_hit + coalesce(idx_blks_hit, 0) + coalesce(toast_blks_hit, 0)), 0)::bigint AS blks_hit,
       coalesce(sum(heap_blks_read + coalesce(idx_blks_read, 0) + coalesce(toast_blks_read, 0)), 0)::bigint AS blks_read
FROM pg_statio_user_tables"""
NOT_VALID = """
SELECT conrelid::regclass::text AS table_name, conname AS constraint_name, contype::text AS type
FROM pg_constraint WHERE NOT convalidated"""
# Sizes from the catalog's page counts (kept by VACUUM and ANALYZE): pg_total_relation_size would wait on a
# table another session holds locked, which is when the evidence matters most.
TABLE_SIZES = """
SELECT t.schemaname || '.' || t.relname AS table_name,
       pg_size_pretty((c.relpages + coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i
                                              ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0))::bigint
                      * current_setting('block_size')::bigint) AS size,
       t.n_live_tup AS rows, t.seq_scan, t.seq_tup_read, t.idx_scan
FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid ORDER BY c.relpages DESC LIMIT 10"""
# Sessions waiting on another's lock, each with the session blocking it (pg_blocking_pids): what it holds,
# what it is doing, for how long. A migration left open, or a forgotten transaction, is named here.
LOCK_WAITS = """
SELECT w.pid AS waiting_pid, coalesce(w.application_name, '') AS waiting_application,
       round(extract(epoch FROM now() - coalesce(w.state_change, w.query_start))::numeric, 1)::float AS waiting_s,
       left(w.query, 100) AS waiting_query,
       coalesce((SELECT l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype) FROM pg_locks l
                 WHERE l.pid = w.pid AND NOT l.granted LIMIT 1), '?') AS waits_for,
       b.pid AS blocking_pid, coalesce(b.application_name, '') AS blocking_application,
       coalesce(b.state, '?') AS blocking_state,
       round(extract(epoch FROM now() - coalesce(b.xact_start, b.query_start))::numeric, 1)::float AS blocking_for_s,
       left(b.query, 100) AS blocking_query,
       coalesce((SELECT string_agg(DISTINCT l.mode || ' on ' || l.relation::regclass::text, ', ') FROM pg_locks l
                 WHERE l.pid = b.pid AND l.granted AND l.relation IN
                       (SELECT relation FROM pg_locks WHERE pid = w.pid AND NOT granted)), '?') AS blocking_holds
FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE w.wait_event_type = 'Lock' ORDER BY waiting_s DESC NULLS LAST LIMIT 10"""
LOCK_TIMEOUT_MS = 500  # the suite's statements never queue behind the platform's locks for longer


def connect(transport: Transport, cfg: Postgres, timeout_s: float) -> psycopg.Connection[Any]:
    """A read-only session: even a mistaken write from this connection is refused by PostgreSQL. A server
    that stopped answering (answering.py) is not asked again on every call."""
    with transport.guarded(f"{cfg.host}:{cfg.port}", timeout_s):
        return _connect(cfg, timeout_s)


def _connect(cfg: Postgres, timeout_s: float) -> psycopg.Connection[Any]:
    conn = psycopg.connect(host=cfg.host, port=cfg.port, dbname=cfg.dbname, user=cfg.user,
                           password=cfg.password or None, sslmode=cfg.sslmode, connect_timeout=max(1, int(timeout_s)),
                           application_name="veza-synthetics", autocommit=True,
                           options=f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)} "
                                   f"-c lock_timeout={LOCK_TIMEOUT_MS}")
    return conn


def rows(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql)
        return [dict(r) for r in cur.fetchall()]


@dataclass
class ConnectTimes(Result):
    """connect_times()'s figures, and the queries it ran on its first good connection (none: why not)."""
    inspection: Result | None = None


def connect_times(transport: Transport, cfg: Postgres, attempts: int, timeout_s: float, fail_ms: float | None = None,
                  queries: dict[str, str] | None = None) -> ConnectTimes:
    """Fresh connect + auth + SELECT 1, up to `attempts` times: what a new application connection costs.
    With `fail_ms`, it stops once enough connects failed or took longer to decide the p95 (the evidence
    says so): a slow server costs a few slow connects, not `attempts` of them. `queries` run, untimed, on
    the first connection that succeeded: no extra connect (a slow one costs seconds)."""
    times, errors, over = [], [], 0
    inspection: Result | None = None
    for _ in range(attempts):
        started = time.perf_counter()
        try:
            with connect(transport, cfg, timeout_s) as conn:
                conn.execute("SELECT 1")
                times.append((time.perf_counter() - started) * 1000)
                if queries and inspection is None:
                    inspection = _queried(conn, cfg, queries, timeout_s)
            over += fail_ms is not None and times[-1] > fail_ms
        except (psycopg.Error, OSError) as exc:
            errors.append(f"{describe(exc, timeout_s)} after {(time.perf_counter() - started) * 1000:.0f} ms")
            over += 1
        if fail_ms is not None and over >= decided_above(attempts):
            break
    done = len(times) + len(errors)
    stats = spread(times)
    evidence: dict[str, Any] = {"connect_ms": stats, "connect_errors": errors[:3]}
    if done < attempts:
        evidence["stopped"] = (f"after {done} of {attempts} connects: {over} failed or over {fail_ms:g} ms, "
                               "which decides the p95 whatever the others would take")
    if queries and inspection is None:
        inspection = Result("postgres", cfg.address, error=f"no connect succeeded: {errors[0] if errors else '?'}")
    return ConnectTimes("postgres", cfg.address, {"connect_attempts": done, "connect_failures": len(errors),
                                                  "connect_p95_ms": stats["p95_ms"], "connect_max_ms": stats["max_ms"]},
                        evidence, inspection=inspection)


def _queried(conn: psycopg.Connection[Any], cfg: Postgres, queries: dict[str, str], timeout_s: float) -> Result:
    try:
        return Result("postgres", cfg.address, {}, {name: rows(conn, sql) for name, sql in queries.items()})
    except psycopg.Error as exc:
        return Result("postgres", cfg.address, error=describe(exc, timeout_s))


# A query on an extension the server does not have (the public Veza configures pg_stat_statements nowhere,
# D1): an optional query's figure is then absent, its reason kept, and the other queries still answer.
ABSENT = (psycopg.errors.UndefinedTable, psycopg.errors.ObjectNotInPrerequisiteState,
          psycopg.errors.UndefinedFunction)


def inspect(transport: Transport, cfg: Postgres, timeout_s: float, queries: dict[str, str],
            optional: frozenset[str] = frozenset()) -> Result:
    """Run named read-only queries on one connection, each on its own: the evidence holds their rows; under
    "absent" why an optional query has none, under "failed" why another could not answer (a lock it would
    have waited for, a statement timeout). Only a session that could not begin is the probe's error."""
    evidence: dict[str, Any] = {}
    absent: dict[str, str] = {}
    failed: dict[str, str] = {}
    try:
        with connect(transport, cfg, timeout_s) as conn:
            for name, sql in queries.items():
                try:
                    evidence[name] = rows(conn, sql)
                except ABSENT as exc:
                    (absent if name in optional else failed)[name] = describe(exc, timeout_s)
                except psycopg.Error as exc:
                    if not exc.sqlstate:  # no answer at all: the session is gone
                        raise
                    failed[name] = describe(exc, timeout_s)
    except (psycopg.Error, OSError) as exc:
        return Result("postgres", cfg.address, error=describe(exc, timeout_s))
    if failed and not evidence and not absent:  # nothing answered: the probe's error, as for one query
        return Result("postgres", cfg.address, error=next(iter(failed.values())))
    return Result("postgres", cfg.address, {}, {**evidence, **({"absent": absent} if absent else {}),
                                                **({"failed": failed} if failed else {})})
