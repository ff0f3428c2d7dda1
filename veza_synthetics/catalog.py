"""Load and validate the symptom catalog (catalog.yaml), the suite's single source of truth."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import SetupError

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
CATEGORIES = ("health", "auth", "database", "websocket", "streaming", "performance")
BACKEND_USERS = ("auth.*", "db.constraint_errors", "db.degraded_performance", "ws.*", "stream.*", "perf.*")


@dataclass(frozen=True)
class Threshold:
    name: str
    unit: str
    bad_when: str  # "above": crossed when value >= level; "below": crossed when value < level
    source: str
    warn: float | None = None
    fail: float | None = None

    def crossed(self, value: float, level: float) -> bool:
        return value >= level if self.bad_when == "above" else value < level

    def level_of(self, value: float) -> str:
        if self.fail is not None and self.crossed(value, self.fail):
            return "failed"
        if self.warn is not None and self.crossed(value, self.warn):
            return "degraded"
        return "passed"

    @property
    def operator(self) -> str:
        """The operator that reads true when the level is crossed (Gatus style)."""
        return ">=" if self.bad_when == "above" else "<"


@dataclass(frozen=True)
class Section:
    key: str
    title_fr: str
    title_en: str
    solutions: str
    prevention: str
    diagnostics: tuple[str, ...]
    severity: str  # Allure's: blocker, critical, normal, minor, trivial


@dataclass(frozen=True)
class Symptom:
    id: str
    category: str
    section: Section
    title_fr: str
    title_en: str
    measures: str
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    def runbook(self) -> dict:
        return {
            "section": self.section.title_fr,
            "solutions": self.section.solutions.strip(),
            "prevention": self.section.prevention.strip(),
            "diagnostics": list(self.section.diagnostics),
        }


@dataclass(frozen=True)
class Fault:
    id: str
    does: str
    must_fail: tuple[str, ...]
    may_fail: tuple[str, ...]  # check ids or patterns, groups expanded


@dataclass(frozen=True)
class Catalog:
    symptoms: dict[str, Symptom]
    faults: dict[str, Fault]

    def by_category(self, category: str) -> list[Symptom]:
        return [s for s in self.symptoms.values() if s.category == category]

    def allowed_to_fail(self, fault_id: str) -> set[str]:
        """Checks that may fail under a fault: its must_fail plus its may_fail patterns."""
        fault = self.faults[fault_id]
        allowed = set(fault.must_fail)
        for pattern in fault.may_fail:
            allowed.update(fnmatch.filter(self.symptoms, pattern))
        return allowed


def _require(mapping: dict, key: str, where: str):
    if key not in mapping:
        raise SetupError(f"catalog: {where} has no '{key}'")
    return mapping[key]


def _expand_group(name: str) -> tuple[str, ...]:
    return {"any": ("*",), "backend users": BACKEND_USERS}.get(name, (name,))


def parse(raw: dict, source: str = "catalog") -> Catalog:
    if not isinstance(raw, dict):
        raise SetupError(f"{source}: expected a mapping at the top level")
    sections = {}
    for key, body in _require(raw, "sections", source).items():
        sections[key] = Section(
            key=key,
            title_fr=_require(body, "title_fr", f"section {key}"),
            title_en=_require(body, "title_en", f"section {key}"),
            solutions=_require(body, "solutions", f"section {key}"),
            prevention=_require(body, "prevention", f"section {key}"),
            diagnostics=tuple(body.get("diagnostics", ())),
            severity=_require(body, "severity", f"section {key}"),
        )
    symptoms: dict[str, Symptom] = {}
    for entry in _require(raw, "checks", source):
        sid = _require(entry, "id", "a check")
        if sid in symptoms:
            raise SetupError(f"{source}: check {sid} is listed twice")
        section_key = _require(entry, "section", sid)
        if section_key not in sections:
            raise SetupError(f"{source}: check {sid} names unknown section '{section_key}'")
        category = section_key if section_key in CATEGORIES else "health"
        thresholds = {}
        for name, spec in (entry.get("thresholds") or {}).items():
            if spec.get("bad_when") not in ("above", "below"):
                raise SetupError(f"{source}: {sid}.{name}.bad_when must be 'above' or 'below'")
            if spec.get("warn") is None and spec.get("fail") is None:
                raise SetupError(f"{source}: {sid}.{name} needs a warn or a fail level")
            thresholds[name] = Threshold(
                name=name,
                unit=str(spec.get("unit", "")),
                bad_when=spec["bad_when"],
                source=str(_require(spec, "source", f"{sid}.{name}")),
                warn=spec.get("warn"),
                fail=spec.get("fail"),
            )
        symptoms[sid] = Symptom(
            id=sid,
            category=category,
            section=sections[section_key],
            title_fr=_require(entry, "title_fr", sid),
            title_en=_require(entry, "title_en", sid),
            measures=_require(entry, "measures", sid),
            thresholds=thresholds,
        )
    faults = {}
    for fid, body in _require(raw, "faults", source).items():
        must = tuple(_require(body, "must_fail", f"fault {fid}"))
        for sid in must:
            if sid not in symptoms:
                raise SetupError(f"{source}: fault {fid} must fail unknown check '{sid}'")
        may = tuple(p for name in body.get("may_fail", ()) for p in _expand_group(name))
        faults[fid] = Fault(id=fid, does=_require(body, "does", f"fault {fid}"), must_fail=must, may_fail=may)
    return Catalog(symptoms=symptoms, faults=faults)


@lru_cache(maxsize=None)
def load(path: Path = CATALOG_PATH) -> Catalog:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"catalog {path}: cannot be read: {exc}") from None
    return parse(raw, str(path))
