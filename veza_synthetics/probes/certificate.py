"""Certificate probe: the TLS certificate an HTTPS endpoint presents, verified, and the days it has left."""
from __future__ import annotations

import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from . import Result, describe
from .transport import Transport


def _names(cert: dict[str, Any], field: str) -> str:
    return ", ".join(value for rdn in cert.get(field, ()) for key, value in rdn if key == "commonName")


def days_left(transport: Transport, url: str, timeout_s: float) -> Result:
    """Connect and verify as every other probe does; report notAfter and the days until it."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    target = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                transport.tls(url).wrap_socket(sock, server_hostname=host) as wrapped:
            cert: dict[str, Any] = dict(wrapped.getpeercert() or {})
    except (OSError, ssl.SSLError) as exc:
        return Result("certificate", target, error=describe(exc, timeout_s))
    not_after = str(cert.get("notAfter", ""))
    try:
        expires = ssl.cert_time_to_seconds(not_after)
    except ValueError:
        return Result("certificate", target, error=f"bad response: no readable notAfter ({not_after!r})")
    return Result("certificate", target, {"days_left": round((expires - time.time()) / 86400, 2)},
                  {"not_after": not_after, "subject": _names(cert, "subject"), "issuer": _names(cert, "issuer")})
