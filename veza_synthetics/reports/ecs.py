"""Each check result as one line of the Elastic Common Schema (ecs-logging), ready for Filebeat: event.outcome,
event.duration (ns), the check as event.action, trace.id (the attempt's, as exported to the collector),
service.name, the environment and location as labels, the verdict as the message; the suite's own fields under
`veza`. A run writes them beside results.json (checks.ecs.ndjson); serve to stdout with `--log-format ecs`."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TextIO

import ecs_logging

from .. import __version__
from ..outcome import Outcome
from ..record import CheckRecord
from ..redact import Redactor

FILE = "checks.ecs.ndjson"
EVENT_OUTCOME = {Outcome.PASSED: "success", Outcome.DEGRADED: "success", Outcome.FAILED: "failure"}  # else unknown
LEVEL = {Outcome.FAILED: logging.ERROR, Outcome.DEGRADED: logging.WARNING, Outcome.NO_DATA: logging.WARNING}
CATEGORY = {"auth": "authentication", "database": "database"}  # ECS event.category; the others are "web"
# the logging call's own place and process say nothing of the check
NOT_OURS = ["log.origin", "log.original", "log.logger", "process", "log.origin.function"]


def fields(record: CheckRecord, env: str, location: str) -> dict[str, Any]:
    """One result's ECS fields (dotted), beside the message and level the formatter adds."""
    trace = record.attempts[-1].get("trace_id") if record.attempts else None
    return {
        "event.kind": "event", "event.category": [CATEGORY.get(record.category, "web")], "event.type": ["info"],
        "event.outcome": EVENT_OUTCOME.get(Outcome(record.outcome), "unknown"),
        "event.duration": int(record.duration_s * 1e9), "event.end": record.finished_at,
        "event.dataset": "veza_synthetics.check", "event.module": "veza_synthetics", "event.action": record.id,
        **({"trace.id": trace} if trace else {}),
        "service.name": "veza-synthetics", "service.version": __version__, "service.environment": env,
        "labels": {"env": env, "location": location, "symptom": record.id, "variant": record.variant},
        "veza": {"symptom": record.id, "category": record.category, "variant": record.variant,
                 "outcome": record.outcome, "verdict": record.summary, "attempts": len(record.attempts),
                 **({"blocked_by": record.blocked_by} if record.blocked_by else {}),
                 **({"trend": record.trend["state"]} if record.trend else {})},
    }


class _Redacting(ecs_logging.StdlibFormatter):
    def __init__(self, redactor: Redactor):
        super().__init__(exclude_fields=NOT_OURS)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.text(str(super().format(record)))


class EcsLog:
    """Check results as ECS lines on one stream (a file, stdout), secrets masked as everywhere."""

    def __init__(self, stream: TextIO, env: str, location: str, redactor: Redactor):
        self.env, self.location = env, location
        self._logger = logging.Logger(f"veza_synthetics.checks.{env}.{location}")  # its own: no global logging
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_Redacting(redactor))
        self._logger.addHandler(handler)

    def write(self, records: Iterable[CheckRecord]) -> None:
        for record in records:
            self._logger.log(LEVEL.get(Outcome(record.outcome), logging.INFO), record.summary,
                             extra=fields(record, self.env, self.location))
