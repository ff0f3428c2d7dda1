"""Auth probe: the synthetic account's login, me, refresh and logout, and JWT claims (no signature)."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from . import Result, describe, refusal
from .transport import Transport

ApiResultT = TypeVar("ApiResultT", bound="ApiResult")

# Response headers that name the instance behind a load balancer, where a platform sends one.
INSTANCE_HEADERS = ("x-veza-instance", "x-served-by", "x-backend-server", "x-upstream", "x-instance-id")
LOGIN, REFRESH, LOGOUT, ME = "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/me"


@dataclass
class Session:
    access_token: str
    refresh_token: str
    expires_in: int
    user: dict[str, Any]
    server_date: float | None
    received_at: float

    @property
    def expires_at(self) -> float | None:
        """When the access token stops being valid, on the local clock: its own lifetime (exp - iat)
        counted from when it arrived, else the login's expires_in; None when neither says."""
        payload = claims(self.access_token)
        if isinstance(payload.get("exp"), (int, float)) and isinstance(payload.get("iat"), (int, float)):
            return self.received_at + float(payload["exp"] - payload["iat"])
        return self.received_at + self.expires_in if self.expires_in > 0 else None


@dataclass
class ApiResult(Result):
    """One API call; `body` is the decoded JSON answer, kept for later steps and never reported."""
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    server_date: float | None = None


@dataclass
class LoginResult(ApiResult):
    session: Session | None = field(default=None, repr=False)
    over_budget: bool = False  # not attempted: the run's login budget (auth.max_logins_per_run) is spent


@dataclass
class RefreshResult(ApiResult):
    access_token: str | None = field(default=None, repr=False)
    session: Session | None = field(default=None, repr=False)  # the refreshed session (its refresh token rotated)
    over_budget: bool = False  # not attempted: the prober's refresh budget (serve.max_refreshes) is spent


def claims(token: str) -> dict[str, Any]:
    """The JWT payload, decoded without verification; the signature is never kept."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _server_date(response: httpx.Response) -> float | None:
    try:
        return parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {"body": body}
    except ValueError:
        return {"body_excerpt": response.text[:200]}


def _reason(status: int, body: dict[str, Any]) -> str | None:
    """A refusal's text: in `error` (Veza's auth handlers) or in `message` (its track, search and admin
    handlers, B4); a success's `message` is no reason."""
    return refusal(body) if status >= 400 else None


def answered(status: Any, evidence: dict[str, Any]) -> str:
    """"answered 429: <its reason> (this address is rate limited, Retry-After 7 s)": a refusal in words,
    a rate limit named as such (a locked-out runner is not a wrong password)."""
    text = f"answered {status}" + (f": {evidence['reason']}" if evidence.get("reason") else "")
    if status == 429:
        wait = evidence.get("retry_after")
        text += " (this address is rate limited" + (f", Retry-After {wait} s)" if wait else ")")
    return text


def request(transport: Transport, base_url: str, method: str, path: str, timeout_s: float, token: str | None = None,
            json_body: dict[str, Any] | None = None) -> ApiResult:
    """One API call: status, latency, the error text of the response (never its tokens)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    turn = transport.take_turn(f"{base_url}{path}")  # before the clock starts: the latency is the platform's, not the pace's
    started = time.perf_counter()
    try:
        response, ids = transport.request(method, f"{base_url}{path}", timeout_s, headers=headers, turn=turn,
                                          json=json_body)
    except httpx.HTTPError as exc:
        return ApiResult("auth", f"{method} {path}", error=describe(exc, timeout_s))
    body = _body(response)
    evidence = {"status": response.status_code, "error": body.get("error"), "message": body.get("message"),
                "reason": _reason(response.status_code, body), "request": ids}
    if response.status_code == 429:
        evidence["retry_after"] = response.headers.get("retry-after")
    instance = next((response.headers[h] for h in INSTANCE_HEADERS if h in response.headers), None)
    if instance:
        evidence["instance"] = instance
    result = ApiResult("auth", f"{method} {path}", {"status": response.status_code,
                                                     "latency_ms": round((time.perf_counter() - started) * 1000, 1)},
                       evidence, body=body, server_date=_server_date(response))
    if response.status_code != 204 and "body_excerpt" in body:
        result.error = f"bad response: {response.status_code} not JSON: {body['body_excerpt'][:80]!r}"
    return result


def _as(cls: type[ApiResultT], result: ApiResult) -> ApiResultT:
    return cls(result.probe, result.target, result.measurements, result.evidence, result.error, result.body,
               result.server_date)


def login(transport: Transport, base_url: str, email: str, password: str, timeout_s: float) -> LoginResult:
    result = _as(LoginResult, request(transport, base_url, "POST", LOGIN, timeout_s,
                                      json_body={"email": email, "password": password}))
    if result.error or result.measurements["status"] != 200:
        return result
    data = result.body.get("data") or {}
    try:
        session = Session(data["access_token"], data["refresh_token"], int(data["expires_in"]),
                          data.get("user", {}), result.server_date, time.time())
    except (KeyError, TypeError, ValueError):
        result.error = "bad response: login answered 200 without access_token/refresh_token/expires_in"
        return result
    result.session = session
    result.evidence.update({"access_claims": claims(session.access_token), "expires_in": session.expires_in,
                            "user": {k: v for k, v in session.user.items() if k in ("id", "username", "role")}})
    return result


def refresh(transport: Transport, base_url: str, session: Session, timeout_s: float) -> RefreshResult:
    result = _as(RefreshResult, request(transport, base_url, "POST", REFRESH, timeout_s,
                                        json_body={"refresh_token": session.refresh_token}))
    if not result.error and result.measurements["status"] == 200:
        data = result.body.get("data") or {}
        result.evidence["access_claims"] = claims(data.get("access_token", ""))
        result.access_token = data.get("access_token")
        if result.access_token:
            result.session = Session(result.access_token, data.get("refresh_token") or session.refresh_token,
                                     int(data.get("expires_in") or session.expires_in), session.user,
                                     result.server_date, time.time())
    return result


def logout(transport: Transport, base_url: str, session: Session, timeout_s: float) -> ApiResult:
    return request(transport, base_url, "POST", LOGOUT, timeout_s, json_body={"refresh_token": session.refresh_token})
