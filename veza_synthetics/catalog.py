"""Load and validate the symptom catalog (catalog.yaml), the suite's single source of truth."""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import SetupError

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
CATALOG_VAR = "VEZA_CATALOG"  # a team's own catalog (a copy of this one, extended) replaces it
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
    depends_on: tuple[str, ...] = ()  # what must be up for it to measure (DEPENDENCIES), the deepest first

    def runbook(self) -> dict[str, Any]:
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
    size: float | None = None  # the fault's default strength, where it has one
    seen_by: str = ""  # "scrape" or "rate_window": in effect once Prometheus has scraped (over that window) since


SEEN_BY = ("", "scrape", "rate_window")


@dataclass(frozen=True)
class Catalog:
    symptoms: dict[str, Symptom]
    faults: dict[str, Fault]
    sections: dict[str, Section]
    check_modules: tuple[str, ...]

    def markers(self) -> dict[str, str]:
        """The pytest markers: one per category (from its section's title), plus writes and destructive."""
        categories = {c: next((s.title_en for s in self.sections.values() if s.key == c), c) for c in CATEGORIES}
        return {**categories,
                "writes": "creates synthetic data (with cleanup); skipped where the profile is read-only",
                "destructive": "would change the target's state; never run outside the sandbox"}

    def validate_faults(self, fault_ids: list[str]) -> list[str]:
        unknown = [f for f in fault_ids if f not in self.faults]
        if unknown:
            raise SetupError(f"unknown fault id(s): {', '.join(unknown)}. Known faults: {', '.join(sorted(self.faults))}")
        return fault_ids

    def fault_sizes(self) -> dict[str, float]:
        return {f.id: f.size for f in self.faults.values() if f.size is not None}

    def allowed_to_fail(self, fault_id: str) -> set[str]:
        """Checks that may fail under a fault: its must_fail plus its may_fail patterns."""
        fault = self.faults[fault_id]
        allowed = set(fault.must_fail)
        for pattern in fault.may_fail:
            allowed.update(fnmatch.filter(self.symptoms, pattern))
        return allowed


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise SetupError(f"catalog: {where} has no '{key}'")
    return mapping[key]


def _expand_group(name: str) -> tuple[str, ...]:
    return {"any": ("*",), "backend users": BACKEND_USERS}.get(name, (name,))


def parse(raw: Any, source: str = "catalog") -> Catalog:
    if not isinstance(raw, dict):
        raise SetupError(f"{source}: expected a mapping at the top level")
    sections = {key: _section(key, body) for key, body in _require(raw, "sections", source).items()}
    symptoms: dict[str, Symptom] = {}
    for entry in _require(raw, "checks", source):
        symptom = _symptom(entry, sections, source)
        if symptom.id in symptoms:
            raise SetupError(f"{source}: check {symptom.id} is listed twice")
        symptoms[symptom.id] = symptom
    faults = {fid: _fault(fid, body, symptoms, source) for fid, body in _require(raw, "faults", source).items()}
    modules = _strings(_require(raw, "check_modules", source), "check_modules")
    return Catalog(symptoms=symptoms, faults=faults, sections=sections, check_modules=modules)


def _section(key: str, body: Any) -> Section:
    where = f"section {key}"
    return Section(key=key, title_fr=_require(body, "title_fr", where), title_en=_require(body, "title_en", where),
                   solutions=_strings([_require(body, "solutions", where)], f"{where}.solutions")[0],
                   prevention=_strings([_require(body, "prevention", where)], f"{where}.prevention")[0],
                   diagnostics=_strings(body.get("diagnostics", ()), f"{where}.diagnostics"),
                   severity=_require(body, "severity", where))


def _threshold(sid: str, name: str, spec: Any, source: str) -> Threshold:
    if spec.get("bad_when") not in ("above", "below"):
        raise SetupError(f"{source}: {sid}.{name}.bad_when must be 'above' or 'below'")
    if spec.get("warn") is None and spec.get("fail") is None:
        raise SetupError(f"{source}: {sid}.{name} needs a warn or a fail level")
    return Threshold(name=name, unit=str(spec.get("unit", "")), bad_when=spec["bad_when"],
                     source=str(_require(spec, "source", f"{sid}.{name}")), warn=spec.get("warn"), fail=spec.get("fail"))


def _symptom(entry: Any, sections: dict[str, Section], source: str) -> Symptom:
    sid = _require(entry, "id", "a check")
    section_key = _require(entry, "section", sid)
    if section_key not in sections:
        raise SetupError(f"{source}: check {sid} names unknown section '{section_key}'")
    return Symptom(id=sid, category=section_key if section_key in CATEGORIES else "health",
                   section=sections[section_key], title_fr=_require(entry, "title_fr", sid),
                   title_en=_require(entry, "title_en", sid), measures=_require(entry, "measures", sid),
                   thresholds={name: _threshold(sid, name, spec, source)
                               for name, spec in (entry.get("thresholds") or {}).items()},
                   depends_on=_dependencies(entry.get("depends_on", []), sid, source))


def _fault(fid: str, body: Any, symptoms: dict[str, Symptom], source: str) -> Fault:
    must = tuple(_require(body, "must_fail", f"fault {fid}"))
    unknown = [sid for sid in must if sid not in symptoms]
    if unknown:
        raise SetupError(f"{source}: fault {fid} must fail unknown check '{unknown[0]}'")
    size = body.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float))):
        raise SetupError(f"{source}: fault {fid}.size must be a number")
    seen_by = body.get("seen_by", "")
    if seen_by not in SEEN_BY:
        raise SetupError(f"{source}: fault {fid}.seen_by must be one of {', '.join(SEEN_BY[1:])}, not {seen_by!r}")
    return Fault(id=fid, does=_require(body, "does", f"fault {fid}"), must_fail=must,
                 may_fail=tuple(p for name in body.get("may_fail", ()) for p in _expand_group(name)),
                 size=None if size is None else float(size), seen_by=seen_by)


def _strings(values: Any, where: str) -> tuple[str, ...]:
    """A list of plain strings; YAML turns an unquoted "key: value" line into a mapping, which is refused."""
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise SetupError(f"catalog: {where} must be a list of strings (quote lines that contain ': ')")
    return tuple(values)


DEPENDENCIES = ("backend", "login", "chat", "stream", "postgres", "redis", "prometheus")


def _dependencies(value: Any, sid: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or set(value) - set(DEPENDENCIES):
        raise SetupError(f"{source}: {sid}.depends_on must be a list of {', '.join(DEPENDENCIES)}, not {value!r}")
    return tuple(value)


def load(path: Path | None = None) -> Catalog:
    """The catalog: `path`, else $VEZA_CATALOG, else the one shipped with the suite."""
    return _load(Path(path or os.environ.get(CATALOG_VAR) or CATALOG_PATH))


@cache
def _load(path: Path) -> Catalog:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"catalog {path}: cannot be read: {exc}") from None
    return parse(raw, str(path))
