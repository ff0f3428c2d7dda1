"""Answers read where the profile says they are: a dotted path into a JSON body
(`chat.health_status_path = "data.status"` for Veza's chat server, C4 of the public code). A path that
matches nothing is a setting that does not fit the platform: "could not evaluate", naming the setting and
what the answer held, never a crash and never a silent zero."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mismatch:
    """A shape setting the answer does not have."""
    setting: str
    path: str
    problem: str  # "matches nothing in the answer (keys: data, message, success)"

    def __str__(self) -> str:
        return f"{self.setting} = {self.path!r} {self.problem}"


def _held(value: Any) -> str:
    if isinstance(value, dict):
        return "keys: " + (", ".join(sorted(map(str, value))) or "none")
    return f"a {type(value).__name__}" if value is not None else "no JSON body"


def at_path(body: Any, path: str, setting: str) -> Any | Mismatch:
    """The value at `path` ("data.status"; "" is the body itself), or what the answer held instead."""
    value = body
    for key in [k for k in path.split(".") if k]:
        if not isinstance(value, dict) or key not in value:
            return Mismatch(setting, path, f"matches nothing in the answer ({_held(value)})")
        value = value[key]
    return value


def list_at(body: Any, path: str, setting: str) -> list[Any] | Mismatch:
    """A list the profile names ("data", "data.tracks"): anything else there is a mismatch too (a search
    answering four empty lists under `data` is not four results)."""
    value = at_path(body, path, setting)
    if isinstance(value, Mismatch) or isinstance(value, list):
        return value
    return Mismatch(setting, path, f"is not a list in the answer ({_held(value)})")
