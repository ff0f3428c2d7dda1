"""`veza-synth doctor --env NAME`: before a team's first night, read-only, paced and within the login budget, each
step one line with what it saw: the endpoints (DNS, TCP, TLS and its days left, HTTP), the credentials, the grants,
the platform's shapes discovered and printed as the TOML settings that match, and what a run and serve cost.
Exit 0 ready, 1 problems found (each named with its setting), 2 bad profile."""
from __future__ import annotations

from ..catalog import Catalog
from ..profile import Profile
from ..target import Target
from . import access, chat, reach, shapes
from .findings import Findings


def examine(profile: Profile, catalog: Catalog) -> Findings:
    found = Findings()
    reach.endpoints(profile, found)
    with Target(profile, catalog) as target:
        access.credentials(target, found)
        access.grants(target, found)
        shapes.discover(target, found)
        if profile.chat.url:
            chat.discover(target, found)
        spent = target.load()
    access.cost(profile, found, spent)
    return found


def render(found: Findings) -> str:
    width = max((len(step.name) for step in found.steps), default=10)
    lines = [f"{'PROBLEM' if step.problem else 'ok':<8} {step.name:<{width}}  {step.saw}"
             + (f"\n{'':<8} {'':<{width}}  -> {step.problem}" if step.problem else "") for step in found.steps]
    fragment = found.fragment()
    lines += ["", "# The settings that match what this platform answered (paste into the profile):", fragment.rstrip()
              if fragment else "# (none: the profile's own settings match)"]
    lines += ["", f"{len(found.problems)} problem(s) found" if found.problems else "ready: no problem found"]
    return "\n".join(lines)
