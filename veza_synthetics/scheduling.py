"""xdist scheduling for a run under -n: the checks that hold on purpose go to one worker together.

That worker starts all their holds at once (fixtures.veza_diagnose), so a run costs its longest
hold whatever the number of workers. xdist's own `--dist loadgroup` would do it by renaming node
ids, which pytest 9.2 no longer honours (pytest-xdist#1386): the unit of work is chosen here from
the node id's parameter instead.
"""
from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from .catalog import Catalog
from .checks import registry

HOLDS_UNIT = "veza-holds"


def in_holds_unit(nodeid: str, catalog: Catalog) -> bool:
    """Is this a holding check of the run's catalog, by the id its node id carries
    (tests_synthetic/test_auth.py::test_symptom[auth.session_lost])?"""
    return nodeid.endswith("]") and nodeid[nodeid.rfind("[") + 1:-1] in registry(catalog).holds


class HoldsTogether(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type hints
    """xdist's load distribution (every test its own unit of work), except that the holding checks are
    one unit; xdist hands out the largest units first, so their holds begin with the run."""

    def __init__(self, config: pytest.Config, log: Any, catalog: Catalog):
        super().__init__(config, log)
        self.catalog = catalog

    def _split_scope(self, nodeid: str) -> str:
        return HOLDS_UNIT if in_holds_unit(nodeid, self.catalog) else nodeid
