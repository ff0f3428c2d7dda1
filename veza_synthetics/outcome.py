"""A check's outcomes in one place: which is worse when several meet (a check's variants, a merge of locations,
a verdict's conditions) and the colour every report paints it (readable as text and as a cell)."""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Outcome(StrEnum):
    PASSED = "passed"
    SKIPPED = "skipped"          # for safety: writes forbidden
    NO_DATA = "no_data"          # not enough data: never a pass
    MAINTENANCE = "maintenance"  # measured inside a planned window: its measured outcome kept beside it
    DEGRADED = "degraded"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def colour(self) -> str:
        return _COLOUR[self]


_RANK = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.NO_DATA: 1, Outcome.MAINTENANCE: 1, Outcome.DEGRADED: 2,
         Outcome.FAILED: 3}
_COLOUR = {Outcome.PASSED: "#1a7f37", Outcome.SKIPPED: "#8c959f", Outcome.NO_DATA: "#6e7781",
           Outcome.MAINTENANCE: "#0969da", Outcome.DEGRADED: "#9a6700", Outcome.FAILED: "#cf222e"}


def rank(outcome: str) -> int:
    """How bad an outcome is; one this version does not know counts as failed (it never hides a failure)."""
    try:
        return Outcome(outcome).rank
    except ValueError:
        return Outcome.FAILED.rank


def colour(outcome: str) -> str:
    """The outcome's colour; a neutral grey for none."""
    try:
        return Outcome(outcome).colour
    except ValueError:
        return NEUTRAL


NEUTRAL = "#57606a"


def worst(outcomes: Iterable[str]) -> str:
    return max(outcomes, key=rank)
