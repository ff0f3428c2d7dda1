"""HTTP probe: one request with its timing, or a bounded-concurrency sample of many."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import NOT_CONNECTED, NotAnswering, Result, address, describe, spread
from .politeness import GIVE_UP_AFTER_NOT_CONNECTED, GIVE_UP_AFTER_THROTTLED, Pace, Politeness, answered_ok
from .transport import Transport


class Phases:
    """httpx's trace extension: when each phase of one request began and ended (blackbox_exporter's
    phase="connect"/"tls"/"processing"). Connect and TLS appear only on a new connection."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        self.marks[event.split(".", 1)[-1] if event.startswith(("http11.", "http2.")) else event] = time.perf_counter()

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        self(event, info)

    def _span(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return round((self.marks[end] - self.marks[start]) * 1000, 2)
        return None

    def split(self) -> dict[str, float | None]:
        return {"connect_ms": self._span("connection.connect_tcp.started", "connection.connect_tcp.complete"),
                "tls_ms": self._span("connection.start_tls.started", "connection.start_tls.complete"),
                "first_byte_ms": self._span("send_request_headers.started", "receive_response_headers.complete")}


def fetch(transport: Transport, url: str, timeout_s: float, headers: dict[str, str] | None = None,
          params: dict[str, str] | None = None) -> Result:
    """GET one URL: status, latency, JSON body when there is one."""
    turn = transport.take_turn(url)  # before the clock starts: the latency is the platform's, not the run's pace
    started, phases = time.perf_counter(), Phases()
    try:
        response, ids = transport.request("GET", url, timeout_s, headers=headers, turn=turn, params=params,
                                          extensions={"trace": phases})
    except httpx.HTTPError as exc:  # every network failure becomes the probe's error, never a traceback
        return Result("http", url, {"latency_ms": round((time.perf_counter() - started) * 1000, 1)},
                      error=describe(exc, timeout_s))
    latency = round((time.perf_counter() - started) * 1000, 1)
    evidence = {"status": response.status_code, "content_type": response.headers.get("content-type", ""), "request": ids}
    try:
        evidence["body"] = response.json()
    except ValueError:
        evidence["body_excerpt"] = response.text[:300]
    return Result("http", url, {"status": response.status_code, "latency_ms": latency, **phases.split()}, evidence)


TOKEN_EXPIRY_MARGIN_S = 1.0  # a request this close to its token's exp may reach the server after it
def _named(record: dict[str, Any]) -> dict[str, Any]:
    """One sampled request as a verdict names it: when, what it measured, and the ids to find it by."""
    return {"endpoint": record["endpoint"], "at": record["at"], "ms": round(record["ms"], 1),
            "status": record.get("status"), "timeout": bool(record.get("timeout")),
            **{k: record[k] for k in ("trace_id", "request_id", "echoed_request_id") if k in record}}


async def _get(transport: Transport, client: httpx.AsyncClient, path: str, headers: dict[str, Any], phases: Phases,
               timeout_s: float) -> dict[str, Any]:
    marks, sent = transport.marks(f"GET {path.split('?')[0]}")
    try:
        with transport.guarded(address(str(client.base_url)), timeout_s):
            response = await client.get(path, headers={**marks, **headers}, extensions={"trace": phases.trace})
    except NotAnswering as exc:
        transport.ids(sent, None, error="not sent")
        return {"status": None, "not_sent": str(exc)}
    except NOT_CONNECTED as exc:  # nothing was sent: a refused connection, or one that never opened in time
        return {"status": None, "not_connected": True, "timeout": isinstance(exc, httpx.TimeoutException),
                "error": describe(exc, timeout_s), **transport.ids(sent, None, error=describe(exc, timeout_s))}
    except httpx.TimeoutException:
        return {"status": None, "timeout": True, **transport.ids(sent, None, error=f"timeout after {timeout_s:g} s")}
    except httpx.HTTPError as exc:
        return {"status": None, "error": describe(exc, timeout_s), **transport.ids(sent, None, error=describe(exc, timeout_s))}
    return {"status": response.status_code, "json": "json" in response.headers.get("content-type", ""),
            **transport.ids(sent, response.headers, response.status_code),
            "retry_after": response.headers.get("retry-after"), "instance": response.headers.get("x-veza-instance")}


async def _sample(transport: Transport, base_url: str, endpoints: dict[str, str], headers: dict[str, Any], pace: Pace,
                  timeout_s: float, token_expires_at: float | None) -> tuple[list[dict[str, Any]], str]:
    """A polite client: requests start no faster than the declared rate, and take their turns from the
    run's pace of that API (pacing.py) where one is declared; a 429 (with a Retry-After or without) pauses
    every worker, and the run's other calls, for its Retry-After (1 s without one, at most 30 s); after five
    refusals the requests not yet sent are abandoned (counted, never sent). A target whose first answers
    all fail (timeouts, refused connections, 5xx: 2 per worker, not one success), or whose connections
    stop opening (five in a row), is not hammered during its incident either: the rest are abandoned the
    same way, at once, their turns given back. A request sent when the token was about to
    expire (within a second of its own `exp`) is marked so: its 401 is no refusal of a valid token."""
    names = list(endpoints)
    semaphore = asyncio.Semaphore(pace.concurrency)
    limits = httpx.Limits(max_connections=pace.concurrency, max_keepalive_connections=pace.concurrency)
    polite = Politeness(pace, names, transport.pace_of(base_url))

    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits, verify=transport.tls(base_url)) as client:
        async def one(i: int) -> dict[str, Any]:
            name = names[i % len(names)]
            async with semaphore:
                turn = await polite.wait_turn()
                if turn is None:
                    return {"endpoint": name, "ms": 0.0, "status": None, "abandoned": polite.reason,
                            "decided_by": polite.decided_by}
                started, phases, at = time.perf_counter(), Phases(), dt.datetime.now(dt.UTC)
                expiring = token_expires_at is not None and time.time() >= token_expires_at - TOKEN_EXPIRY_MARGIN_S
                outcome = await _get(transport, client, endpoints[name], headers, phases, timeout_s)
                if "not_sent" in outcome:
                    polite.not_sent_now(turn, outcome["not_sent"])
                    return {"endpoint": name, "ms": 0.0, "status": None, "abandoned": polite.reason,
                            "decided_by": polite.decided_by}
                elapsed_ms = (time.perf_counter() - started) * 1000
                polite.answered(name, outcome, elapsed_ms, turn)
                return {"endpoint": name, "ms": elapsed_ms, "at": at.isoformat(timespec="milliseconds"),
                        **phases.split(), **outcome, "token_expiring": expiring}

        everything = await asyncio.gather(*(one(i) for i in range(pace.requests)))
        return everything, polite.not_sent


@dataclass
class SampleResult(Result):
    """A sample's figures, and its requests one by one (a window of recent samples keeps them, window.py)."""
    sent: list[dict[str, Any]] = field(default_factory=list, repr=False)


def sample(transport: Transport, base_url: str, endpoints: dict[str, str], headers: dict[str, Any], pace: Pace,
           timeout_s: float, token_expires_at: float | None = None,
           earlier: Sequence[dict[str, Any]] = ()) -> SampleResult:
    """Spread `pace.requests` GETs over the endpoints, paced, each bounded by timeout_s; judged together with the
    `earlier` requests of recent samples, where a window keeps them (serve).

    Latency figures count successful answers (2xx/3xx) only: a fast error is never a fast success.
    Errors are 5xx and failed connections (reset, refused, TLS); 429 is counted apart (throttled)."""
    everything, not_sent = asyncio.run(_sample(transport, base_url, endpoints, headers, pace, timeout_s, token_expires_at))
    sent = [r for r in everything if not r.get("abandoned")]
    records = [*[r for r in earlier if r["endpoint"] in endpoints], *sent]
    if not sent and not_sent:
        return SampleResult("http", base_url, {"requests": 0, "abandoned": len(everything)}, error=f"unreachable: {not_sent}")
    if not records:  # the run's deadline came before the first request
        # not the platform's doing: nothing to judge, said so (never a failure)
        return SampleResult("http", base_url, {"requests": 0, "abandoned": len(everything)},
                            {"not_sampled": "the run's deadline (timeouts.run_s) came before the sample"})
    abandoned = len(everything) - len(sent)
    abandoned_by = _count(r["abandoned"] for r in everything if r.get("abandoned"))
    why_abandoned = set(abandoned_by)
    per_endpoint = {}
    for name, path in endpoints.items():
        mine = [r for r in records if r["endpoint"] == name]
        succeeded = [r["ms"] for r in mine if answered_ok(r)]
        per_endpoint[name] = {"path": path, **spread(succeeded),
                              "status_counts": _count(str(r.get("status")) for r in mine),
                              "status_counts_token_valid": _count(str(r.get("status")) for r in mine
                                                                  if not r.get("token_expiring")),
                              "timeouts": sum(1 for r in mine if r.get("timeout")),
                              "errors_5xx": sum(1 for r in mine if (r.get("status") or 0) >= 500),
                              "failed_connections": sum(1 for r in mine if r.get("error")),
                              "not_json": sum(1 for r in mine if r.get("status") is not None and not r.get("json"))}
    total = len(records)
    timeouts = sum(1 for r in records if r.get("timeout"))
    errors = sum(1 for r in records if (r.get("status") or 0) >= 500 or r.get("error"))
    throttled = [r for r in records if r.get("status") == 429]
    unreachable = [r["error"] for r in records if r.get("error")]
    not_json = [r for r in records if r.get("status") is not None and not r.get("json")]
    slowest = sorted(records, key=lambda r: r["ms"], reverse=True)[:5]
    measurements = {"requests": total, "abandoned": abandoned, "succeeded": sum(1 for r in records if answered_ok(r)),
                    "timeouts": timeouts,
                    "timeout_pct": round(100 * timeouts / total, 2), "errors": errors,
                    "error_pct": round(100 * errors / total, 2), "throttled": len(throttled),
                    # refused by the rate limit: the 429s and the requests not sent after five of them
                    "throttled_pct": round(100 * (len(throttled) + abandoned_by.get("throttled", 0))
                                           / (total + abandoned_by.get("throttled", 0)), 2),
                    "not_json": len(not_json)}
    evidence = {"per_endpoint": per_endpoint,
                "pace": {"max_rps": pace.max_rps, "concurrency": pace.concurrency,
                         "sent_with_expiring_token": sum(1 for r in records if r.get("token_expiring"))},
                "phases": {"connections_opened": sum(1 for r in records if r.get("connect_ms") is not None),
                           **{phase: spread([r[phase] for r in records if r.get(phase) is not None])
                              for phase in ("connect_ms", "tls_ms")},
                           "first_byte_ms": spread([r["first_byte_ms"] for r in records
                                                    if answered_ok(r) and r.get("first_byte_ms") is not None]),
                           "total_ms": spread([r["ms"] for r in records if answered_ok(r)])},
                "retry_after": sorted({str(r["retry_after"]) for r in throttled if r.get("retry_after")}),
                "status_by_instance": {instance: _count(str(r.get("status")) for r in records
                                                        if r.get("instance") == instance)
                                       for instance in sorted({r["instance"] for r in records if r.get("instance")})},
                # the requests a verdict names: the slowest for latency, the failed ones for errors
                "slowest": [_named(r) for r in slowest],
                "failed": [_named(r) for r in records if r.get("timeout") or r.get("error")
                           or (r.get("status") or 0) >= 500][:10],
                "status_counts": _count(str(r.get("status")) for r in records)}
    decided_by = next((r["decided_by"] for r in everything if r.get("decided_by")), "")
    reasons = {"failing": f"the first {len(records)} answers all failed (not one success)",
               "throttled": f"{GIVE_UP_AFTER_THROTTLED} answers were 429",
               "not_answering": "the API left its last requests unanswered (timeouts, connections that never opened)",
               "deadline": "the run's deadline came (timeouts.run_s)",
               "halted": "the prober is stopping",
               "timeouts": f"requests timed out: the timeout share is at least {pace.decided_timeout_pct or 0:g} % "
                           "whatever the others would do",
               "unreachable": f"backend unreachable: {GIVE_UP_AFTER_NOT_CONNECTED} connections in a row refused or "
                              "never opened",
               "decided": f"{decided_by} answered over {pace.decided_above_ms or 0:g} ms often enough to "
                          "decide its p95 whatever the others would take"}
    if why_abandoned:
        evidence["gave_up"] = (" and ".join(reasons[why] for why in sorted(why_abandoned))
                               + f": the other {abandoned} requests were not sent")
    if earlier:
        oldest = min((r["at"] for r in records), default="")
        evidence["window"] = {"requests": total, "this_sample": len(sent), "since": oldest}
    error = None
    if unreachable and len(unreachable) == total:
        error = unreachable[0]
    elif len(not_json) == total:
        error = f"bad response: every answer was {not_json[0]['status']} without JSON (the API answers JSON)"
    return SampleResult("http", base_url, measurements, evidence, error, sent=sent)


def failing_endpoints(result: Result, slow_ms: float | None, token_sent: bool) -> list[str]:
    """The endpoints of a sample a confirmation samples again: those that answered anything but a JSON success
    (an error, a timeout, a refusal, a 429; not a 401 or 403 to a sample sent without a token, which is right)
    or, with `slow_ms`, whose p95 (or maximum) was above it."""
    per_endpoint: dict[str, dict[str, Any]] = result.evidence.get("per_endpoint", {})
    expected = set() if token_sent else {401, 403}

    def failing(stats: dict[str, Any]) -> bool:
        statuses = [int(s) if s.isdigit() else None for s in stats["status_counts"]]
        judged = stats["p95_ms"] if stats["p95_ms"] is not None else stats["max_ms"]
        return (any(s is None or (not 200 <= s < 400 and s not in expected) for s in statuses) or stats["not_json"] > 0
                or (slow_ms is not None and judged is not None and judged > slow_ms))
    return [name for name, stats in per_endpoint.items() if failing(stats)]


def _count(values: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
