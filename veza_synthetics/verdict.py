"""Verdicts: measurements compared with the catalog's thresholds, worded like Gatus conditions."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .catalog import Symptom, Threshold
from .probes import Result

ORDER = {"passed": 0, "no_data": 1, "degraded": 2, "failed": 3}


@dataclass
class Condition:
    text: str           # "connections used 100 % >= 80 %"
    level: str          # passed | degraded | failed
    name: str = ""      # threshold name, empty for a plain requirement
    value: float | None = None


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"


@dataclass
class Verdict:
    symptom: Symptom
    thresholds: dict[str, Threshold]
    conditions: list[Condition] = field(default_factory=list)
    measurements: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    no_data: list[str] = field(default_factory=list)

    @classmethod
    def for_symptom(cls, symptom: Symptom, overrides: dict | None = None) -> "Verdict":
        thresholds = dict(symptom.thresholds)
        for name, levels in (overrides or {}).items():
            thresholds[name] = replace(thresholds[name], **levels)
        return cls(symptom=symptom, thresholds=thresholds)

    # -- recording ------------------------------------------------------------------------
    def record(self, result: Result) -> bool:
        """Keep a probe's measurements and evidence; a probe error fails the check. True if usable."""
        self.measurements.update(result.measurements)
        if result.evidence:
            self.evidence[result.probe] = result.evidence
        if result.error:
            self.require(False, f"{result.probe} {result.target}: {result.error}")
            return False
        return True

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
            unit = f" {threshold.unit}" if threshold.unit else ""
            if level == "passed":
                ok_op = "<" if threshold.bad_when == "above" else ">="
                text = f"{label} {_fmt(value)}{unit} {ok_op} {_fmt(bound)}{unit}"
            else:
                text = f"{label} {_fmt(value)}{unit} {threshold.operator} {_fmt(bound)}{unit}"
            if detail:
                text += f" ({detail})"
        self.conditions.append(Condition(text=text, level=level, name=name, value=value))

    def require(self, ok: bool, text: str, ok_text: str = "") -> bool:
        """A plain requirement: `text` says what was seen when it does not hold, `ok_text` when it does."""
        self.conditions.append(Condition(text=text if not ok else ok_text, level="passed" if ok else "failed"))
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)

    def missing(self, what: str) -> None:
        """Say plainly that something could not be measured ("not enough data")."""
        self.no_data.append(what)

    # -- outcome --------------------------------------------------------------------------
    @property
    def outcome(self) -> str:
        """failed > degraded > passed; nothing measured at all is "no_data", never a pass."""
        if not self.conditions:
            return "no_data"
        return max((c.level for c in self.conditions), key=ORDER.__getitem__)

    def summary(self) -> str:
        outcome = self.outcome
        if outcome == "no_data":
            return f"{self.symptom.id}: not enough data: " + ("; ".join(self.no_data) or "nothing measured")
        shown = [c.text for c in self.conditions if c.level == outcome] if outcome != "passed" else \
            [c.text for c in self.conditions if c.text][:4]
        return f"{self.symptom.id}: " + ("; ".join(shown) or "all conditions hold")

    def thresholds_table(self) -> dict:
        return {name: {"warn": t.warn, "fail": t.fail, "unit": t.unit, "bad_when": t.bad_when, "source": t.source}
                for name, t in self.thresholds.items()}
