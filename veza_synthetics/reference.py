"""The reference pages, written from the single sources: every setting of settings.py (its section, type, default
and the comment that says what it changes) and every check of catalog.yaml (what it measures, its thresholds and
their sources, the faults that prove it, the guide's remedies). `veza-synth reference --out docs/reference`; the
project's tests keep the committed pages current."""
from __future__ import annotations

import ast
import inspect
import io
import json
import tokenize
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from . import settings
from .catalog import Catalog
from .profile_model import DEFAULTS, SECTIONS

PAGES = ("settings.md", "checks.md")


def _comments(source: str) -> tuple[dict[int, str], dict[int, tuple[int, str]]]:
    """The comments of a source: those beside code, by line; those alone on their line, by line with their column."""
    beside, alone = {}, {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            (row, col), text = token.start, token.string.lstrip("#").strip()
            if token.line[:col].strip():
                beside[row] = text
            else:
                alone[row] = (col, text)
    return beside, alone


def describe(cls: type) -> dict[str, str]:
    """What each field of a settings section is for: the comment lines just above it (at its indentation) and
    the one beside it with its more indented continuation lines."""
    source = inspect.getsource(settings)
    beside, alone = _comments(source)
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    out = {}
    for item in node.body:
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        above: list[str] = []
        row = item.lineno - 1
        while row in alone and alone[row][0] == item.col_offset:
            above.insert(0, alone[row][1])
            row -= 1
        after = [beside[item.lineno]] if item.lineno in beside else []
        row = item.lineno + 1
        while after and row in alone and alone[row][0] > item.col_offset:
            after.append(alone[row][1])
            row += 1
        out[item.target.id] = " ".join([*above, *after])
    return out


def _default(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`" if value not in ("", {}, []) else "(none)"


def settings_page() -> str:
    out = ["# Settings", "", "Every setting a profile may hold, by section (generated from `veza_synthetics/settings.py`:"
           " edit there). A profile sets only what differs from these defaults; `extends` names the one it builds on.",
           "", "## Top level", "", "| setting | type | default |", "|---|---|---|"]
    out += [f"| `{k}` | {type(v).__name__} | {_default(v)} |" for k, v in DEFAULTS.items() if k not in SECTIONS]
    for name, cls in SECTIONS.items():
        doc = " ".join((cls.__doc__ or "").split()) if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(") else ""
        described = describe(cls)
        out += ["", f"## [{name}]", "", *([doc, ""] if doc else []), "| setting | type | default | what it changes |",
                "|---|---|---|---|"]
        for f in fields(cls):
            factory = f.default_factory
            default = f.default if f.default is not MISSING else factory() if callable(factory) else None
            kind = str(f.type).replace("|", "or")
            out.append(f"| `{f.name}` | {kind} | {_default(default)} | {described.get(f.name, '').replace('|', '/')} |")
    return "\n".join(out) + "\n"


def checks_page(catalog: Catalog) -> str:
    out = ["# Checks", "", "Every check of the catalog, by category (generated from `veza_synthetics/catalog.yaml`: "
           "edit there): what it measures, its thresholds and where they come from, the sandbox faults that prove it "
           "fails, and the guide's remedies."]
    proving: dict[str, list[str]] = {}
    for fault in catalog.faults.values():
        for sid in fault.must_fail:
            proving.setdefault(sid, []).append(fault.id)
    for category in sorted({s.category for s in catalog.symptoms.values()}):
        out += ["", f"## {category}"]
        for s in sorted((s for s in catalog.symptoms.values() if s.category == category), key=lambda s: s.id):
            runbook = s.runbook()
            out += ["", f"### {s.id}", "", f"**{s.title_en}** ({s.title_fr}). {s.measures}", ""]
            if s.thresholds:
                out += ["| threshold | warn | fail | unit | bad when | source |", "|---|---|---|---|---|---|"]
                out += [f"| `{t.name}` | {_level(t.warn)} | {_level(t.fail)} | {t.unit} | {t.bad_when} | "
                        f"{t.source.replace('|', '/')} |" for t in s.thresholds.values()]
                out.append("")
            faults = ", ".join(f"`{f}`" for f in sorted(proving.get(s.id, []))) or "none (not provable on the sandbox)"
            out += [f"Proved by: {faults}. Depends on: {', '.join(s.depends_on) or 'nothing'}.", "",
                    f"Guide: *{runbook['section']}*", "", "Solutions:", "", "```", runbook["solutions"], "```", "",
                    "Prévention:", "", "```", runbook["prevention"], "```"]
    return "\n".join(out) + "\n"


def _level(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def pages(catalog: Catalog) -> dict[str, str]:
    return {"settings.md": settings_page(), "checks.md": checks_page(catalog)}


def write(catalog: Catalog, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages(catalog).items():
        (folder / name).write_text(text, encoding="utf-8")
