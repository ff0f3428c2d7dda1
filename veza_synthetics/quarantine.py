"""The quarantine file: checks known to fail, each with an owner, a reason and an expiry date.

A quarantined check still runs and reports its failure in full, but does not fail the gate.
An entry past its date fails the run before any check, naming it: a quarantine is a loan, not
a way to forget a check.

    [[quarantine]]
    check = "ws.disconnects"
    owner = "chat-team@veza.example"
    reason = "the proxy's idle timeout is being raised (INC-1234)"
    expires = 2026-12-15
"""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import load as load_catalog
from .errors import SetupError


@dataclass(frozen=True)
class Entry:
    check: str
    owner: str
    reason: str
    expires: dt.date

    def as_dict(self) -> dict[str, str]:
        return {"owner": self.owner, "reason": self.reason, "expires": self.expires.isoformat()}


def load(path: Path, today: dt.date) -> dict[str, Entry]:
    """The file's entries by check id; one clear error for a broken, unknown or expired entry."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SetupError(f"quarantine file {path}: {exc}") from None
    known, entries = load_catalog().symptoms, {}
    for number, item in enumerate(raw.get("quarantine", []), 1):
        where = f"quarantine file {path}, entry {number}"
        if not isinstance(item, dict) or set(item) != {"check", "owner", "reason", "expires"}:
            raise SetupError(f"{where}: needs exactly check, owner, reason and expires")
        if item["check"] not in known:
            raise SetupError(f"{where}: unknown check {item['check']!r}")
        if not str(item["owner"]).strip() or not str(item["reason"]).strip():
            raise SetupError(f"{where}: owner and reason must not be empty")
        expires = item["expires"]
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            raise SetupError(f"{where}: expires must be a date (2026-12-15), not {expires!r}")
        if expires < today:
            raise SetupError(f"{where}: the quarantine of {item['check']} (owner {item['owner']}) expired on "
                             f"{expires.isoformat()}: fix the check or renew the entry with a new date")
        entries[item["check"]] = Entry(item["check"], str(item["owner"]), str(item["reason"]), expires)
    return entries
