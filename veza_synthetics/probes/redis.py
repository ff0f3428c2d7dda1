"""Redis probe: PING latency, memory policy, evictions, a session key's TTL. Never a write command."""
from __future__ import annotations

import time

import redis

from . import Result, address, describe
from .transport import Transport

SESSION_KEY = "veza:session:{sid}"


def inspect(transport: Transport, url: str, password: str, timeout_s: float, session_id: str | None = None) -> Result:
    target = url.split("@")[-1]
    try:
        client = redis.Redis.from_url(url, password=password or None, socket_timeout=timeout_s,
                                      socket_connect_timeout=timeout_s)
        with transport.guarded(address(url), timeout_s), client:
            started = time.perf_counter()
            client.ping()
            ping_ms = (time.perf_counter() - started) * 1000
            memory, stats = client.info("memory"), client.info("stats")
            ttl = client.ttl(SESSION_KEY.format(sid=session_id)) if session_id else None
    except (redis.RedisError, OSError) as exc:
        return Result("redis", target, error=describe(exc, timeout_s))
    measurements = {"ping_ms": round(ping_ms, 2), "evicted_keys": stats.get("evicted_keys", 0),
                    "used_memory": memory.get("used_memory", 0),
                    "maxmemory": memory.get("maxmemory", 0), "maxmemory_policy": memory.get("maxmemory_policy", "")}
    if session_id:
        measurements["session_ttl_s"] = ttl
    evidence = {"info_memory": {k: memory.get(k) for k in ("used_memory_human", "maxmemory_human", "maxmemory_policy")},
                "info_stats": {k: stats.get(k) for k in ("evicted_keys", "expired_keys", "rejected_connections")}}
    return Result("redis", target, measurements, evidence)
