"""What a run can afford before its deadline at the declared pace, decided before its first request.

At production's pace (0.4 requests a second) the HTTP sample is most of a run: 80 requests take 200 s, and a
failure's confirmation samples again. The plan sizes the sample so that every call of the run, each possibly
confirmed once, fits in `timeouts.run_s`; the sample then stops at the deadline whatever happens (planning.py
sizes, politeness.Pace.deadline enforces)."""
from __future__ import annotations

from dataclasses import dataclass

from .profile import Profile

# The API calls of a run besides the sample, the searches and the `me` calls: two logins, a refresh, two
# logouts, health and ready, the forbidden call, the canary's track and URL, the session checks' own `me`s.
OTHER_CALLS = 15
SLACK = 0.9  # of the deadline's turns: 429 pauses and a slow answer's wait take the rest
ENDPOINTS = 4  # the sample's endpoints: it never shrinks below one request each


@dataclass(frozen=True)
class Plan:
    sample_requests: int
    note: str = ""  # why the sample is smaller than sampling.requests ("" when it is not)


def plan(profile: Profile, budget_rps: float | None = None) -> Plan:
    """The sample's size at the run's pace: sampling.max_rps, or the request budget's rate where it is slower
    (serve: serve.max_requests per serve.request_window_s)."""
    s, run_s = profile.sampling, profile.timeouts.run_s
    rate, named = (s.max_rps, "sampling.max_rps") if budget_rps is None or budget_rps >= s.max_rps else \
        (budget_rps, "the request budget (serve.max_requests per serve.request_window_s)")
    turns = int(run_s * rate * SLACK)
    affordable = turns // 2 - (s.search_calls + s.auth_calls + OTHER_CALLS)  # // 2: each call confirmed once
    if affordable >= s.requests:
        return Plan(s.requests)
    size = max(ENDPOINTS, affordable)
    return Plan(size, f"a sample of {size} requests, not sampling.requests = {s.requests}: at {named}, "
                      f"{rate:g} a second, a run of timeouts.run_s = {run_s:g} s affords {turns} API requests, each "
                      "call possibly confirmed once")
