"""How the sandbox's backend answers and counts: Veza's JSON envelopes, one instance's own metrics, and the
hashes and signatures its accounts and stream URLs use."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import JSONResponse


def ok(data: Any, status: int = 200, message: str = "ok") -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "message": message}, status_code=status)


def error(text: str, status: int, headers: dict[str, str] | None = None, field: str = "error") -> JSONResponse:
    """Veza's error answer; the public code's track, search and admin handlers put the text in `message` (B4)."""
    return JSONResponse({"success": False, field: text}, status_code=status, headers=headers)


def password_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()


def sign_stream(name: str, expires: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


class InstanceMetrics:
    """One backend instance's own metrics, as each process of a deployed backend has them: Prometheus sums
    the instances of the job, so they must not report each other's requests."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"], registry=reg)
        self.duration = Histogram("http_request_duration_seconds", "HTTP request duration", ["method", "endpoint"],
                                  registry=reg, buckets=(.005, .01, .025, .05, .1, .2, .3, .5, 1, 2.5, 5, 10))
        self.active_sessions = Gauge("veza_active_sessions", "Sessions in Redis", registry=reg)
        self.auth_failures = Counter("veza_auth_failures_total", "Authentication failures", ["reason"], registry=reg)


def metrics_of(request: Request) -> InstanceMetrics:
    """The metrics of the instance serving this request (the middleware puts them in the request's state)."""
    found: InstanceMetrics = request.state.metrics
    return found
