"""results.json: the run and one record per check (schema in record.py), and what the nightly reads of it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..record import upgrade
from ..redact import Redactor


def write(run: dict[str, Any], path: Path, redactor: Redactor) -> None:
    path.write_text(json.dumps(redactor.data(run), indent=2, ensure_ascii=False, default=str))


def read(path: Path) -> dict[str, Any]:
    """A results.json of any schema version, in the current shape."""
    return upgrade(json.loads(path.read_text()))


def ids_with(path: Path, outcome: str) -> str:
    """The symptom ids that ended with this outcome, comma-separated ("none"): the nightly's issue title."""
    run = read(path)
    return ", ".join(sorted({c["id"] for c in run["checks"] if c["outcome"] == outcome})) or "none"
