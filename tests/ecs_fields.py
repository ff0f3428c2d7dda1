"""Elastic Common Schema's own field types (tests/data: ECS 9.4.0's ecs_flat.yml, reduced to each field's type,
the categorization fields' allowed values and the fields normalized to arrays), and a line checked against them."""
import datetime as dt
import json
from pathlib import Path
from typing import Any

ECS = json.loads((Path(__file__).with_name("data") / "ecs-9.4.0-fields.json").read_text())
STRINGS = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text", "ip", "version"}
NUMBERS = {"long": int, "integer": int, "short": int, "byte": int, "unsigned_long": int,
           "float": (int, float), "double": (int, float), "scaled_float": (int, float), "half_float": (int, float)}
REQUIRED = ("@timestamp", "message", "log.level", "ecs.version", "event.outcome", "event.duration", "event.action",
            "trace.id", "service.name", "labels.env", "labels.location")
OURS = "veza."  # the suite's own namespace: no ECS field set of that name


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and ECS["types"].get(name) not in ("object", "flattened") or name == "labels":
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def _wrong(name: str, kind: str, one: Any) -> str | None:
    if kind in STRINGS and not isinstance(one, str):
        return f"{name}: {kind} expects a string, not {one!r}"
    if kind in NUMBERS and (isinstance(one, bool) or not isinstance(one, NUMBERS[kind])):
        return f"{name}: {kind} expects a number, not {one!r}"
    if kind == "boolean" and not isinstance(one, bool):
        return f"{name}: boolean expects true or false, not {one!r}"
    if kind == "date":
        try:
            dt.datetime.fromisoformat(str(one).replace("Z", "+00:00"))
        except ValueError:
            return f"{name}: date expects ISO 8601, not {one!r}"
    if name in ECS["allowed_values"] and one not in ECS["allowed_values"][name]:
        return f"{name}: {one!r} is not one of ECS's {ECS['allowed_values'][name]}"
    return None


def problems(line: str) -> list[str]:
    """What in one JSON line is not ECS: unknown fields outside `veza.`, values of the wrong type or not allowed."""
    fields = flat(json.loads(line))
    found = [f"missing {name}" for name in REQUIRED if name not in fields]
    assert not any(name.startswith(OURS) for name in ECS["types"])
    for name, value in fields.items():
        kind = ECS["types"].get(name)
        if name.startswith(OURS):
            continue
        if name.startswith("labels."):
            found += [] if isinstance(value, str) else [f"{name}: labels are keywords, not {value!r}"]
        elif kind is None:
            found.append(f"{name}: not an ECS field (the suite's own go under {OURS})")
        else:
            values = value if isinstance(value, list) and name in ECS["arrays"] else [value]
            found += [wrong for one in values if (wrong := _wrong(name, kind, one))]
    return found
