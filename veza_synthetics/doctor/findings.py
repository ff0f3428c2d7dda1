"""What doctor found: one Step per line, and the settings that match the platform (the TOML fragment)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tomli_w

CERT_WARN_DAYS = 14  # a certificate this close to its end is a problem found today, not on the night it expires


@dataclass(frozen=True)
class Step:
    """One line: what doctor looked at, what it saw; `problem` names the setting (or the platform's part) to fix."""
    name: str
    saw: str
    problem: str = ""  # "": fine


@dataclass
class Findings:
    steps: list[Step] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # section -> key -> value that matches

    def add(self, name: str, saw: str, problem: str = "") -> None:
        self.steps.append(Step(name, saw, problem))

    def setting(self, section: str, key: str, value: Any) -> None:
        self.settings.setdefault(section, {})[key] = value

    def compare(self, setting: str, profile_value: Any, value: Any, saw: str) -> None:
        """A discovered value: said, and put in the fragment where the profile's differs (a problem: the
        profile's would fail)."""
        section, key = setting.split(".")
        if value == profile_value:
            self.add(setting, saw)
            return
        self.setting(section, key, value)
        self.add(setting, saw, f"{setting} = {value!r} (the profile says {profile_value!r})")

    @property
    def problems(self) -> list[Step]:
        return [step for step in self.steps if step.problem]

    def fragment(self) -> str:
        return tomli_w.dumps(self.settings) if self.settings else ""
