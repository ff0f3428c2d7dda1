"""Authentication: 401/403 on valid credentials, token lifetime and skew, sessions that vanish."""
from __future__ import annotations

import time

from ..probes import auth, redis
from ..probes.http import TOKEN_EXPIRY_MARGIN_S
from ..target import Target
from ..verdict import Verdict
from . import check
from .session_store import exported_redis, postgres_session, redis_session


def _login(v: Verdict, target: Target, step: str, admin: bool = False) -> auth.Session | None:
    """The run's session of the account (one login per run, shared by every check), recorded under `step`."""
    result = target.session(admin)
    if result.over_budget:  # a login the run's or the prober's budget does not allow: not measured, said so
        v.missing(f"{step}: not measured: {result.error}")
        return None
    if not v.record(step, result):
        return None
    who = "admin" if admin else "synthetic user"
    status = result.measurements["status"]
    if not v.require(status == 200, f"login of the {who} {auth.answered(status, result.evidence)}"):
        return None
    return result.session


def _status_is(v: Verdict, step: str, result: auth.ApiResult, want: int, what: str, ok_text: str = "") -> None:
    if v.record(step, result):
        status = result.measurements["status"]
        v.require(status == want, f"{what} answered {status}, expected {want}: {result.evidence.get('reason')}",
                  ok_text=ok_text)


def _valid_token_accepted(v: Verdict, target: Target, session: auth.Session, calls: int) -> None:
    """`me` several times with one valid token: behind a load balancer every instance gets asked, so one
    instance whose signing key rotated (half the answers 401) cannot hide behind luck. Calls stop when
    the token nears its own expiry: a 401 after it would be the lifetime, judged by auth.jwt_expired."""
    answers: list[auth.ApiResult] = []
    base, timeout, expires_at = target.profile.backend.url, target.timeout("request"), session.expires_at
    for _ in range(calls):
        if expires_at is not None and time.time() >= expires_at - TOKEN_EXPIRY_MARGIN_S:
            v.note(f"me called {len(answers)} of {calls} times: the token neared its own expiry")
            break
        answers.append(auth.request(target.transport, base, "GET", auth.ME, timeout, token=session.access_token))
    calls = len(answers)
    if not calls:
        v.error("me", base, "the token expired before it could be used (its lifetime is below a second)")
        return
    failed = next((a for a in answers if a.error), None)
    if failed is not None:
        v.record("me", failed)
        return
    statuses = [a.measurements["status"] for a in answers]
    rejected = [a for a in answers if a.measurements["status"] in (401, 403)]
    by_instance: dict[str, dict[str, int]] = {}
    for answer in answers:
        counts = by_instance.setdefault(answer.evidence.get("instance", "unnamed"), {})
        counts[str(answer.measurements["status"])] = counts.get(str(answer.measurements["status"]), 0) + 1
    v.measurements.update({"me.calls": calls, "me.rejected": len(rejected)})
    v.evidence["me"] = {"statuses_by_instance": by_instance,
                        "first_rejection": rejected[0].evidence if rejected else None}
    share = 100 * len(rejected) / calls
    v.against("rejected_pct", share, text=f"valid token refused {len(rejected)}/{calls} times by me"
              + (f" ({share:.0f} %; by instance: {by_instance}): {rejected[0].evidence.get('reason')}" if rejected else ""))
    others = [s for s in statuses if s not in (200, 401, 403)]
    v.require(not others, f"me with a fresh token answered {sorted(set(others))}", ok_text="login 200, me 200")


INSTANCE_CALLS = 4  # `me` calls that reach every instance of two behind a round-robin balancer


def _me_accepted(v: Verdict, step: str, target: Target, token: str, why: str) -> None:
    """`me` with a token that must still be valid, asked until every instance that answers has been heard: a
    refusal by one instance while another accepts the same token is that instance's fault (its signing key,
    say), named as such; the session is intact. Refused everywhere, the session is gone (`why`)."""
    base, timeout = target.profile.backend.url, target.timeout("request")
    answers = [auth.request(target.transport, base, "GET", auth.ME, timeout, token=token)]
    while (answers[-1].measurements.get("status") in (401, 403) and answers[-1].evidence.get("instance")
           and len(answers) < INSTANCE_CALLS):
        answers.append(auth.request(target.transport, base, "GET", auth.ME, timeout, token=token))
        if answers[-1].measurements.get("status") == 200:
            break
    if not v.record(step, answers[0]):
        return
    statuses = {str(a.evidence.get("instance", "?")): a.measurements.get("status") for a in answers}
    refusing = sorted(i for i, status in statuses.items() if status in (401, 403))
    accepting = sorted(i for i, status in statuses.items() if status == 200)
    status = answers[0].measurements["status"]
    if refusing and accepting:
        v.evidence[f"{step}_by_instance"] = statuses
        v.require(False, f"{', '.join(refusing)} refused the token {', '.join(accepting)} accepted: one instance "
                         f"refuses valid tokens, the session is intact ({answers[0].evidence.get('reason')!r})")
        return
    v.require(status == 200, f"{why}: me answered {status} {answers[0].evidence.get('reason')!r}"
              + (f" (from every instance asked: {', '.join(refusing)})" if len(refusing) > 1 else ""))


def _sample_accepts_token(v: Verdict, target: Target, attempt: int) -> None:
    """Every request of the run's HTTP sample carries the session's valid token: a 401/403 on any sampled
    endpoint (behind a balancer, from whichever instance answered it) is a valid token refused."""
    sample = target.http_sample(attempt)
    if "confirming" in sample.evidence:
        v.note(f"confirmation: {sample.evidence['confirming']}")
    endpoints = sample.evidence.get("per_endpoint", {})
    if sample.error or not endpoints or sample.evidence.get("login") != "ok":
        reason = sample.error or (f"its login failed: {sample.evidence.get('login')}" if endpoints else "nothing sampled")
        v.note(f"the HTTP sample's answers are not judged here: {reason}")
        return
    counts: dict[str, int] = {}
    for stats in endpoints.values():  # a 401 for a token past its own exp is no refusal of a valid one
        for status, n in stats["status_counts_token_valid"].items():
            counts[status] = counts.get(status, 0) + n
    rejected, total = counts.get("401", 0) + counts.get("403", 0), sum(counts.values())
    expiring = sum(sum(stats["status_counts"].values()) for stats in endpoints.values()) - total
    if expiring:
        v.note(f"{expiring} of the HTTP sample's requests were sent within a second of the token's own expiry "
               "or after it: not judged as refusals of a valid token")
    if not total:
        v.note("the HTTP sample's answers are not judged here: every one was sent with an expiring token")
        return
    v.measurements.update({"sample_token.calls": total, "sample_token.rejected": rejected})
    v.evidence["sample_token"] = {"status_counts": counts,
                                  "status_by_instance": sample.evidence.get("status_by_instance", {})}
    v.against("rejected_pct", 100 * rejected / total,
              text=f"valid token refused {rejected}/{total} times in the HTTP sample"
                   + (f" (by instance: {sample.evidence.get('status_by_instance')})" if rejected else ""))


@check("auth.http_401_403")
def http_401_403(v: Verdict, target: Target, attempt: int) -> None:
    base, timeout = target.profile.backend.url, target.timeout("request")
    admin_only = target.profile.auth.forbidden_path
    session = _login(v, target, "login")
    if session is None:
        return
    _valid_token_accepted(v, target, session, target.profile.sampling.auth_calls)
    forbidden = auth.request(target.transport, base, "GET", admin_only, timeout, token=session.access_token)
    if v.record("forbidden", forbidden):
        status = forbidden.measurements["status"]
        v.require(status == 403, f"admin call by a non-admin answered {status}, expected 403"
                  + (" (authorization not enforced)" if status == 200 else f": {forbidden.evidence.get('reason')}"),
                  ok_text=f"non-admin on {admin_only} 403")
    _sample_accepts_token(v, target, attempt)
    if target.profile.accounts.admin_email:
        admin = _login(v, target, "admin_login", admin=True)
        if admin is not None:
            _status_is(v, "admin_call",
                       auth.request(target.transport, base, "GET", admin_only, timeout, token=admin.access_token),
                       200, "admin call by the admin", ok_text=f"admin on {admin_only} 200")


@check("auth.jwt_expired")
def jwt_expired(v: Verdict, target: Target, attempt: int) -> None:
    session = _login(v, target, "login")
    if session is None:
        return
    claims = auth.claims(session.access_token)
    v.evidence["access_claims"] = claims
    if not v.require("exp" in claims and "iat" in claims, "access token has no exp/iat claims"):
        return
    expected = target.profile.auth.expires_in_s or session.expires_in
    lifetime = claims["exp"] - claims["iat"]
    tolerance = v.thresholds["lifetime_error_s"].fail or 0
    v.against("lifetime_error_s", abs(lifetime - expected),
              text=f"token lifetime {lifetime} s {'!=' if abs(lifetime - expected) >= tolerance else '='} "
                   f"expires_in {expected} s (tolerance {tolerance:g} s)")
    skews = {"iat vs local clock": claims["iat"] - session.received_at}
    if session.server_date is not None:
        skews["server Date vs local clock"] = session.server_date - session.received_at
    worst = max(skews, key=lambda k: abs(skews[k]))
    v.measurements["skews_s"] = {k: round(s, 1) for k, s in skews.items()}
    v.against("clock_skew_s", abs(skews[worst]), label=f"clock skew ({worst})")
    refreshed = target.refresh()  # the run's session and its refresh, as every check shares them
    if refreshed.over_budget:
        v.missing(f"refresh: not measured: {refreshed.error}")
    elif v.record("refresh", refreshed):
        status = refreshed.measurements["status"]
        if v.require(status == 200 and refreshed.access_token is not None,
                     f"refresh answered {status}: {refreshed.evidence.get('reason')}"):
            new_claims = refreshed.evidence.get("access_claims", {})
            same_second = new_claims.get("iat") == claims["iat"]  # minted in the login's second: exp cannot move
            v.require(new_claims.get("exp", 0) > claims["exp"] or (same_second and new_claims.get("exp") == claims["exp"]),
                      f"refreshed token exp {new_claims.get('exp')} is not later than the old {claims['exp']} "
                      f"(iat {new_claims.get('iat')} vs {claims['iat']})", ok_text="refresh 200, exp moved with iat")
            _me_accepted(v, "me_refreshed", target, refreshed.access_token or "", "refreshed token rejected")


@check("auth.session_lost", holds=True)
def session_lost(v: Verdict, target: Target, attempt: int) -> None:
    p = target.profile
    hold = p.holds.session_s
    for refused in target.refused_sessions():  # between rounds, or earlier in this run: as a listener met it
        v.require(False, f"session lost: {refused}")
    session = _login(v, target, "login")
    if session is None:
        return
    claims = auth.claims(session.access_token)
    watch_redis = p.has_redis and p.auth.session_store == "redis"
    before = redis.inspect(target.transport, p.redis.url, p.redis.password, target.timeout("connect"), claims.get("sid")) \
        if watch_redis else None
    time.sleep(hold)
    _me_accepted(v, "me_after_hold", target, session.access_token, f"session gone after {hold:g} s")
    refreshed = target.refresh()
    if refreshed.over_budget:
        v.missing(f"refresh after the hold: not measured: {refreshed.error}")
    elif v.record("refresh_after_hold", refreshed) and v.require(
            refreshed.measurements["status"] == 200,
            f"refresh after {hold:g} s answered {refreshed.measurements['status']} {refreshed.evidence.get('reason')!r}"):
        new_exp = refreshed.evidence.get("access_claims", {}).get("exp", 0)
        v.require(hold < 1 or new_exp > claims.get("exp", 0),
                  f"the token refreshed {hold:g} s later expires at {new_exp}, not later than the first "
                  f"({claims.get('exp')}): refresh does not extend the session", ok_text="refresh extends exp")
    if before is not None and v.record("redis_before", before):
        redis_session(v, target, claims, session, before)
    elif p.auth.session_store == "redis" and not p.has_redis and p.has_prometheus:
        exported_redis(v, target)
    elif p.auth.session_store == "postgres" and p.has_postgres:
        postgres_session(v, target, claims, session)
