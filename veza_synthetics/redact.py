"""Keep secrets out of every output: known secret values, JWTs, bearer tokens, URL signatures."""
from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"
_known: set[str] = set()
PATTERNS = [
    re.compile(r"(://[^:/@\s]*:)[^@/\s]+(?=@)"),                               # user:password@ in URLs
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),       # JWT
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),                        # Authorization: Bearer
    re.compile(r"(?i)((?:sig|token|password|secret)=)[^&\s\"']+"),             # query strings, DSNs
    re.compile(r"(?i)(\"(?:access_token|refresh_token|password|token)\"\s*:\s*\")[^\"]+"),  # JSON bodies
]


def register(*values: str) -> None:
    """Add secret values (profile passwords, stream secret) to mask wherever they appear."""
    _known.update(v for v in values if v and len(v) >= 4)


def text(value: str) -> str:
    for secret in sorted(_known, key=len, reverse=True):
        value = value.replace(secret, MASK)
    for pattern in PATTERNS:
        value = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, value)
    return value


def data(value: Any) -> Any:
    """Redact every string inside a JSON-like structure."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [data(v) for v in value]
    return value
