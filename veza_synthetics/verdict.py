"""Verdicts: measurements compared with the catalog's thresholds, worded like Gatus conditions.

As in Gatus, a step that could not evaluate (a probe error: unreachable, timeout, bad answer)
is kept apart from a condition that measured a bad value; both fail the check.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .catalog import Symptom, Threshold
from .outcome import worst
from .probes import Result


@dataclass
class Condition:
    text: str           # "connections used 100 % >= 80 %"
    level: str          # passed | degraded | failed
    name: str = ""      # threshold name, empty for a plain requirement
    value: float | None = None


@dataclass(frozen=True)
class ProbeError:
    step: str           # the check's name for the call: "me", "forbidden", "stream_health"
    target: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"step": self.step, "target": self.target, "error": self.error}


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"


@dataclass
class Verdict:
    symptom: Symptom
    thresholds: dict[str, Threshold]
    conditions: list[Condition] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)   # "step.name" or a threshold's name
    evidence: dict[str, Any] = field(default_factory=dict)       # by step
    errors: list[ProbeError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    no_data: list[str] = field(default_factory=list)
    trace_id: str = ""  # the W3C trace every request of this attempt carried (probes/identity.py)
    skipped_for_safety: str = ""  # why the check did not measure: the profile forbids what it needs

    @classmethod
    def for_symptom(cls, symptom: Symptom, overrides: dict[str, dict[str, float]] | None = None) -> "Verdict":
        thresholds = dict(symptom.thresholds)
        for name, levels in (overrides or {}).items():
            thresholds[name] = replace(thresholds[name], warn=levels.get("warn", thresholds[name].warn),
                                       fail=levels.get("fail", thresholds[name].fail))
        return cls(symptom=symptom, thresholds=thresholds)

    # -- recording ------------------------------------------------------------------------
    def record(self, step: str, result: Result) -> bool:
        """Keep a probe call's measurements and evidence under the step's name; a probe error is an
        error of its own ("could not evaluate"), which fails the check. True if the result is usable."""
        if step in self.evidence or any(k.startswith(f"{step}.") for k in self.measurements):
            raise ValueError(f"step {step!r} recorded twice in {self.symptom.id}: name each call")
        self.measurements.update({f"{step}.{k}": v for k, v in result.measurements.items()})
        if result.evidence:
            self.evidence[step] = result.evidence
        if result.error:
            self.errors.append(ProbeError(step, result.target, result.error))
            return False
        return True

    def error(self, step: str, target: str, error: str) -> None:
        """A step that could not evaluate, found by the check itself (e.g. no token to call with)."""
        self.errors.append(ProbeError(step, target, error))

    def against(self, name: str, value: float | None, label: str | None = None, text: str | None = None,
                detail: str | None = None) -> None:
        """Compare a measurement with the threshold `name`; None means the probe could not measure it.

        The condition reads "label value op level" (Gatus style), `detail` in parentheses after it;
        `text` replaces the whole wording where a comparison reads better otherwise.
        """
        threshold = self.thresholds[name]
        label = label or name
        if value is None:
            self.no_data.append(f"{label}: not measured")
            return
        self.measurements[name] = round(value, 3) if isinstance(value, float) else value
        level = threshold.level_of(value)
        if text is None:
            bound = threshold.fail if level == "failed" or threshold.warn is None else threshold.warn
            if bound is None:  # the catalog refuses a threshold with neither level
                raise ValueError(f"threshold {name} has no level")
            unit = f" {threshold.unit}" if threshold.unit else ""
            if level == "passed":
                ok_op = "<" if threshold.bad_when == "above" else ">="
                text = f"{label} {_fmt(value)}{unit} {ok_op} {_fmt(bound)}{unit}"
            else:
                text = f"{label} {_fmt(value)}{unit} {threshold.operator} {_fmt(bound)}{unit}"
            if detail:
                text += f" ({detail})"
        self.conditions.append(Condition(text=text, level=level, name=name, value=value))

    def against_p95(self, name: str, stats: dict[str, Any], label: str, unit_of: str = "answers") -> None:
        """Judge a sample's p95 against `name`; from fewer than 20 values the max is judged, named as such."""
        n = stats["n"]
        if not n:
            self.missing(f"{label}: no {unit_of} to time")
        elif stats["p95_ms"] is not None:
            self.against(name, stats["p95_ms"], label=f"{label} p95", detail=f"n={n} {unit_of}")
        else:
            self.against(name, stats["max_ms"], label=f"{label} max", detail=f"n={n} {unit_of}, too few for a p95")

    def require(self, ok: bool, text: str, ok_text: str = "") -> bool:
        """A plain requirement: `text` says what was seen when it does not hold, `ok_text` when it does."""
        self.conditions.append(Condition(text=text if not ok else ok_text, level="passed" if ok else "failed"))
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)

    def forbid(self, reason: str) -> None:
        """The check would have to write where the profile forbids it: reported as skipped for safety."""
        self.skipped_for_safety = f"skipped for safety: {reason}"

    def missing(self, what: str) -> None:
        """Say plainly that something could not be measured ("not enough data")."""
        self.no_data.append(what)

    # -- outcome --------------------------------------------------------------------------
    @property
    def outcome(self) -> str:
        """failed > degraded > passed; a step that could not evaluate is failed; nothing measured at
        all is "no_data", never a pass."""
        if self.errors:
            return "failed"
        if self.skipped_for_safety and not self.conditions:
            return "skipped"
        if not self.conditions:
            return "no_data"
        return worst(c.level for c in self.conditions)

    def summary(self) -> str:
        outcome = self.outcome
        if outcome == "skipped":
            return f"{self.symptom.id}: {self.skipped_for_safety}"
        if outcome == "no_data":
            return f"{self.symptom.id}: not enough data: " + ("; ".join(self.no_data) or "nothing measured")
        shown = [f"could not evaluate {e.step}: {e.error}" for e in self.errors]
        shown += [c.text for c in self.conditions if c.level == outcome] if outcome != "passed" else \
            [c.text for c in self.conditions if c.text][:4]
        return f"{self.symptom.id}: " + ("; ".join(shown) or "all conditions hold")

    def thresholds_table(self) -> dict[str, dict[str, Any]]:
        return {name: {"warn": t.warn, "fail": t.fail, "unit": t.unit, "bad_when": t.bad_when, "source": t.source}
                for name, t in self.thresholds.items()}
