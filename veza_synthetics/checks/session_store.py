"""Where auth.session_lost looks for the session it holds: its Redis key (direct access), redis_exporter's
figures through Prometheus (no direct access), or the refresh_tokens table (Veza's public code, B9/B10)."""
from __future__ import annotations

from typing import Any

from ..probes import Result, auth, exporters, postgres, redis
from ..target import Target
from ..verdict import Verdict
from . import exporter_reaching

SESSION_SAFE_POLICIES = ("noeviction",)


def _session_lifetime(session: auth.Session) -> int:
    refresh_claims = auth.claims(session.refresh_token)
    return int(refresh_claims.get("exp", 0) - refresh_claims.get("iat", 0))


def redis_session(v: Verdict, target: Target, claims: dict[str, Any], session: auth.Session,
                  before: Result) -> None:
    """The session's Redis key after the hold: its TTL against the refresh lifetime, the eviction policy,
    keys evicted meanwhile, memory used."""
    p = target.profile
    after = redis.inspect(target.transport, p.redis.url, p.redis.password, target.timeout("connect"), claims.get("sid"))
    if not v.record("redis_after", after):
        return
    lifetime = _session_lifetime(session)
    ttl = after.measurements["session_ttl_s"]
    if lifetime > 0:
        v.against("session_ttl_ratio", max(ttl, 0) / lifetime,
                  text=f"session key TTL {ttl} s vs refresh lifetime {lifetime} s" + (" (key missing)" if ttl == -2 else ""))
    policy, maxmemory = after.measurements["maxmemory_policy"], after.measurements["maxmemory"]
    v.require(maxmemory == 0 or policy in SESSION_SAFE_POLICIES,
              f"maxmemory-policy {policy} with maxmemory {maxmemory} can evict sessions")
    v.against("evicted_keys_delta", after.measurements["evicted_keys"] - before.measurements["evicted_keys"],
              label="evicted keys during the hold")
    _redis_memory(v, after.measurements["used_memory"], maxmemory, "")


def _redis_memory(v: Verdict, used: float | None, maxmemory: float | None, source: str) -> None:
    if used is None or maxmemory is None:
        v.missing(f"Redis memory: not measured{source}")
    elif maxmemory > 0:
        v.against("redis_memory_pct", 100 * used / maxmemory, label=f"Redis memory used{source}",
                  detail=f"{used / 2**20:.1f} of {maxmemory / 2**20:.0f} MiB")
    else:
        v.note(f"Redis memory: {used / 2**20:.1f} MiB used, no maxmemory set{source}")


def exported_redis(v: Verdict, target: Target) -> None:
    """No direct Redis access: redis_exporter's figures through Prometheus. The session key's TTL is the
    one figure only a Redis client can read."""
    cfg = target.profile.prometheus
    v.note(f"source: redis_exporter through Prometheus ({cfg.redis_selector}): no direct Redis access in this profile")
    v.missing("session key TTL: not measured (needs direct Redis access)")
    figures = exporter_reaching(v, target, "redis", {**exporters.REDIS, "policy": exporters.REDIS_POLICY})
    if figures is None:
        return
    info = figures.figures["policy"]
    policy, maxmemory = (info[0]["labels"].get("maxmemory_policy") if info else None), figures.value("maxmemory")
    if policy is None or maxmemory is None:
        v.missing("maxmemory-policy: not measured (no redis_instance_info / redis_memory_max_bytes series)")
    else:
        v.require(maxmemory == 0 or policy in SESSION_SAFE_POLICIES,
                  f"maxmemory-policy {policy} with maxmemory {maxmemory:.0f} can evict sessions (redis_exporter)",
                  ok_text=f"maxmemory-policy {policy} (redis_exporter)")
    evicted = figures.value("evicted_keys")
    if evicted is None:
        v.missing("evicted keys: no redis_evicted_keys_total series")
    else:
        v.against("evicted_keys_delta", evicted, label=f"evicted keys over {cfg.rate_window} (redis_exporter)")
    _redis_memory(v, figures.value("used_memory"), maxmemory, " (redis_exporter)")


# refresh_tokens.expires_at read whatever its type: a timestamp (the contract) or epoch seconds in a BIGINT
# (the public code, B9, where comparing it with now() is a type error). Both pass through text.
SESSION_EXPIRY = ("CASE WHEN expires_at::text ~ '^[0-9]+([.][0-9]+)?$' THEN to_timestamp(expires_at::text::float8) "
                  "ELSE expires_at::text::timestamptz END")


def postgres_session(v: Verdict, target: Target, claims: dict[str, Any], session: auth.Session) -> None:
    """The deployed variant keeps refresh tokens in PostgreSQL: one read-only SELECT on refresh_tokens."""
    user_id = int(claims.get("user_id", 0))
    query = (f"WITH tokens AS (SELECT {SESSION_EXPIRY} AS expires, pg_typeof(expires_at)::text AS kind "
             f"FROM refresh_tokens WHERE user_id = {user_id}) "  # nosec B608  # an int and a constant, no input
             "SELECT count(*) FILTER (WHERE expires > now()) AS live, "
             "extract(epoch FROM max(expires) FILTER (WHERE expires > now()) - now())::float AS ttl_s, "
             "min(kind) AS expiry_type FROM tokens")
    result = postgres.inspect(target.transport, target.profile.postgres, target.timeout("connect"), {"refresh_tokens": query})
    if not v.record("refresh_tokens", result):
        return
    row, lifetime = result.evidence["refresh_tokens"][0], _session_lifetime(session)
    ttl = row["ttl_s"] if row["ttl_s"] is not None else 0.0
    if lifetime > 0:
        v.against("session_ttl_ratio", max(ttl, 0) / lifetime,
                  text=f"refresh_tokens: {row['live']} live for the synthetic user, the longest {ttl:.0f} s "
                       f"vs refresh lifetime {lifetime} s (expires_at {row['expiry_type'] or 'unknown type'})")
