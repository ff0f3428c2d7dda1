"""Each endpoint of the profile, as a client meets it: DNS, TCP, TLS with the profile's CA and the days its
certificate has left, and what HTTP answers."""
from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from ..client import transport
from ..probes import certificate, describe, http
from ..profile import Profile
from .findings import CERT_WARN_DAYS, Findings

DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80, "redis": 6379, "postgresql": 5432}


def _named(profile: Profile) -> list[tuple[str, str]]:
    p = profile
    urls = [("backend.url", p.backend.url), ("chat.url", p.chat.url), ("chat.health_url", p.chat.health_url),
            ("stream.url", p.stream.url), ("prometheus.url", p.prometheus.url), ("redis.url", p.redis.url)]
    if p.postgres.host:
        urls.append(("postgres.host", f"postgresql://{p.postgres.host}:{p.postgres.port}"))
    return [(setting, url) for setting, url in urls if url]


def endpoints(profile: Profile, found: Findings) -> None:
    way, timeout = transport(profile), profile.timeouts.connect_s
    for setting, url in _named(profile):
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
        try:
            addresses = sorted({str(a[4][0]) for a in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
        except OSError as exc:
            found.add(f"{setting} DNS", f"{host}: {exc}", f"{setting}: the name does not resolve from here")
            continue
        started = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            found.add(f"{setting} TCP", f"{host}:{port} ({', '.join(addresses)}): {describe(exc, timeout)}",
                      f"{setting}: nothing accepts connections at {host}:{port} from here")
            continue
        tcp = f"{host}:{port} ({', '.join(addresses)}) in {1000 * (time.perf_counter() - started):.0f} ms"
        if parts.scheme in ("https", "wss"):
            cert = certificate.days_left(way, url.replace("wss://", "https://"), timeout)
            if cert.error:
                found.add(f"{setting} TLS", f"{tcp}; {cert.error}",
                          f"{setting}: its certificate is not trusted (tls.ca_file names a private CA)")
                continue
            days = cert.measurements["days_left"]
            found.add(f"{setting} TLS", f"{tcp}; certificate of {cert.evidence['subject']} valid {days:g} more days",
                      f"{setting}: its certificate ends in {days:g} days: renew it" if days < CERT_WARN_DAYS else "")
        else:
            found.add(f"{setting} TCP", tcp)
        if parts.scheme in ("http", "https") and setting != "chat.health_url":
            answer = http.fetch(way, url, profile.timeouts.request_s)
            status = answer.measurements.get("status")
            found.add(f"{setting} HTTP", f"GET {url} answered {status if status is not None else answer.error}",
                      "" if status is not None else f"{setting}: no HTTP answer ({answer.error})")
