"""Keep secrets out of every output: a run's own secret values, and whatever looks like a secret in
any run (JWTs, bearer tokens, URL credentials and signatures)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET = 4  # shorter values would mask ordinary words
PATTERNS = [
    re.compile(r"(://[^:/@\s]*:)[^@/\s]+(?=@)"),                               # user:password@ in URLs
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),       # JWT
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),                        # Authorization: Bearer
    re.compile(r"(?i)((?:sig|token|password|secret)=)[^&\s\"']+"),             # query strings, DSNs
    re.compile(r"(?i)(\"(?:access_token|refresh_token|password|token)\"\s*:\s*\")[^\"]+"),  # JSON bodies
]


class Redactor:
    """One run's masking: the secret values its profile resolved (passwords, the stream secret), plus the
    patterns every run masks. Each run, check process and serve instance holds its own: two profiles in
    one process never share their secrets' list."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        for pattern in PATTERNS:
            value = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, value)
        return value

    def data(self, value: Any) -> Any:
        """Redact every string inside a JSON-like structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


PATTERNS_ONLY = Redactor()  # for text no profile stands behind (a merge of written results, a gateway URL)
