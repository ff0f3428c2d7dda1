"""The environment under test: its profile, its client (client.py: the sessions, the pace, the budgets; the
run's own, or serve's for the prober's life), plus measurements shared by several checks.

One stream download serves the three stream checks, one chat run serves loss and
latency, one HTTP sample serves the perf checks. A confirmation (attempt 2) measures
again instead of reusing attempt 1. Checks with a deliberate hold measure their first
attempt in the background (start_early), so holds overlap each other and the rest of
the run; every shared measurement is taken once, whichever thread asks first.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlencode

from .canary import Player, played
from .catalog import Catalog
from .catalog import load as load_catalog
from .client import Client, login_failure
from .planning import plan
from .probes import Result, auth, delivery, exporters, forget_connections, http, politeness, websocket
from .profile import Profile
from .verdict import Verdict

LATENCY = ("perf.high_response_time", "p95_ms")  # the sample stops once this is decided to fail
TIMEOUTS = ("perf.frequent_timeouts", "timeout_pct")  # and once this is


@dataclass(frozen=True)
class Load:
    """What a run (or a round of serve) cost the platform: the figures its operators budget."""
    logins: int
    api_requests: int   # every request to the backend, paced (sample, checks' calls, logins, refreshes)
    chat_messages: int  # sent by the chat runs


ResultT = TypeVar("ResultT", bound=Result)


class Target:
    def __init__(self, profile: Profile, catalog: Catalog | None = None, client: Client | None = None):
        """A run's target; `client` the platform's client where one outlives the run (serve's), else its own."""
        self.profile = profile
        self.catalog = catalog or load_catalog()  # the checks' symptoms and thresholds: the run's, passed in
        self.redactor = profile.redactor()  # every record of this target masks this profile's secrets
        self._owns_client = client is None
        self.client = client or Client(profile)
        self.client.new_round()
        self.transport = self.client.transport  # every probe of the run goes through it
        self._spent = (self.client.logins, self.client.api_requests)  # what the client had cost before this run
        self.deadline = time.monotonic() + profile.timeouts.run_s  # planned within, before the first request
        # the recent samples of earlier rounds (serve): each attempt of this run judges its own with them
        self._window_before = self.client.window.recent() if self.client.window else []
        budget = self.client.ledger.requests if self.client.ledger else None
        self.plan = plan(profile, budget.limit / budget.window_s if budget else None)
        self._memo: dict[tuple[str, int], Future[Result]] = {}
        self._lock = threading.Lock()
        self._refused: list[str] = []  # sessions the platform refused, as the client met them
        self._last_login = threading.local()  # token()'s failure, per thread: each check explains its own
        self._early: dict[str, Future[Any]] = {}
        self._started: set[str] = set()
        self._background: list[Future[Any]] = []  # every background measurement, awaited by close()

    def timeout(self, kind: str) -> float:
        """A profile timeout by kind: connect, request, stream_read, stream, ws."""
        t = self.profile.timeouts
        return {"connect": t.connect_s, "request": t.request_s, "stream_read": t.stream_read_s, "stream": t.stream_s,
                "ws": t.ws_s}[kind]

    def shared(self, key: str, attempt: int, measure: Callable[[], ResultT]) -> ResultT:
        """`measure()` once per key and attempt; a second caller, in any thread, waits for the first's result."""
        with self._lock:
            slot = self._memo.get((key, attempt))
            owner = slot is None
            if slot is None:
                slot = self._memo[(key, attempt)] = Future()
        if owner:
            try:
                slot.set_result(measure())
            except BaseException as exc:
                slot.set_exception(exc)
                raise
        return slot.result()  # type: ignore[return-value]  # one key, one measure

    def _measured(self, key: str, attempt: int) -> Result | None:
        """A shared measurement already taken, or None."""
        with self._lock:
            slot = self._memo.get((key, attempt))
        return slot.result() if slot is not None and slot.done() and slot.exception() is None else None

    def start_early(self, jobs: dict[str, Callable[[], Any]]) -> None:
        """Run these measurements in the background now (deliberate holds), each in its own thread; a name
        started before is not started again."""
        for name, job in jobs.items():
            with self._lock:
                if name in self._started:
                    continue
                self._started.add(name)
            future: Future[Any] = Future()

            def measure(job: Callable[[], Any] = job, future: Future[Any] = future) -> None:
                try:
                    future.set_result(job())
                except BaseException as exc:  # the check's own caller reports it
                    future.set_exception(exc)
            threading.Thread(target=measure, name=f"veza-hold-{name}", daemon=True).start()
            with self._lock:
                self._early[name] = future
                self._background.append(future)

    def early(self, name: str) -> Future[Any] | None:
        """The background measurement started for `name`, once (its caller owns the result)."""
        with self._lock:
            return self._early.pop(name, None)

    def exporter_figures(self, exporter: str, queries: dict[str, str]) -> exporters.Figures:
        """Figures of one exporter ("node", "postgres", "redis") through Prometheus: its series picked
        by the profile's selector, over the profile's rate window (and mountpoints, for disks)."""
        cfg = self.profile.prometheus
        return exporters.read(self.transport, cfg.url, queries, self.timeout("request"), f"{exporter}_exporter",
                              s=cfg.selector(exporter), w=cfg.rate_window, m=cfg.mountpoints)

    def _fail_level(self, symptom_id: str, threshold: str) -> float | None:
        """A threshold's fail level for this profile (its override, else the catalog's), as the verdict has it."""
        symptom = self.catalog.symptoms[symptom_id]
        return Verdict.for_symptom(symptom, self.profile.threshold_overrides(symptom_id)).thresholds[threshold].fail

    # -- the synthetic account: one session, the client's ---------------------------------
    def session(self, admin: bool = False) -> auth.LoginResult:
        """The account's one session (Veza keeps one session per account and locks an address out after a
        few logins): shared by every check, every confirmation and the root-cause grouping (client.py)."""
        return self.client.session(admin)

    def refresh(self) -> auth.RefreshResult:
        return self.client.refresh()

    def refused_sessions(self) -> list[str]:
        """Every session the platform refused, since the last run on this client (a round, in serve): each
        attempt of auth.session_lost sees them all."""
        with self._lock:
            self._refused += self.client.refusals()
            return list(self._refused)

    def token(self) -> str | None:
        result = self.session()
        self._last_login.result = result
        return result.session.access_token if result.session else None

    def login_failure(self) -> str:
        """Why this thread's last token() gave none."""
        last: auth.LoginResult | None = getattr(self._last_login, "result", None)
        return "no login attempted" if last is None else login_failure(last)

    def close(self) -> None:
        """Background measurements first (each bounded by its hold and timeouts); then, where the run owns its
        client, every session it opened is logged out, whatever happened to the checks that used them."""
        wait(self._background)
        if self._owns_client:
            self.client.close()
        else:
            forget_connections()  # the next round opens its own, as a new page would

    def load(self) -> Load:
        chat_runs = [slot.result() for (key, _), slot in list(self._memo.items())
                     if key == "chat" and slot.done() and slot.exception() is None]
        logins, requests = self._spent
        return Load(self.client.logins - logins, self.client.api_requests - requests,
                    sum(int(run.measurements.get("sent", 0)) for run in chat_runs))

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared measurements --------------------------------------------------------------
    def chat_delivery(self, attempt: int) -> Result:
        chat = self.profile.chat

        def measure() -> Result:
            token = self.token() if chat.auth == "token" else None
            if chat.auth == "token" and token is None:
                return Result("websocket", chat.url, error=f"no token for the chat: {self.login_failure()}")
            conversation = chat.synthetic_conversation or str(uuid.uuid4())
            return delivery.delivery(self.transport, chat.url, token, self.profile.sampling.chat_messages, self.timeout("ws"),
                                      conversation, websocket.Frames.of(chat))
        return self.shared("chat", attempt, measure)

    def may_send_chat(self) -> str | None:
        """None if the run may send chat messages, else why not (messages are writes)."""
        p = self.profile
        if p.allows_writes:
            return None
        if not p.chat.synthetic_conversation:
            return (f"profile '{p.name}' is read-only and names no chat.synthetic_conversation "
                    "where the synthetic account may send messages")
        if not p.chat.rooms:  # the backend's own chat (C6): its members are every connected client
            return (f"profile '{p.name}' is read-only and this chat sends every frame to every connected client "
                    "(chat.rooms = false): chat.synthetic_conversation confines no message")
        return None

    def http_sample(self, attempt: int) -> Result:
        backend, sampling = self.profile.backend, self.profile.sampling
        search = f"{backend.search_path}?{urlencode({'q': backend.search_query.replace('{n}', '1')})}"
        endpoints = {"health": backend.health_path, "tracks": "/api/v1/tracks?limit=20",
                     **({"search": search} if backend.search_path else {}), "me": "/api/v1/auth/me"}

        def measure() -> Result:
            first = self._measured("http", 1) if attempt > 1 else None
            chosen, requests = endpoints, self.plan.sample_requests
            if first is not None:  # a confirmation samples again what failed, not the whole sample
                failing = list(endpoints) if first.error else http.failing_endpoints(
                    first, self._fail_level(*LATENCY), token_sent=first.evidence.get("login") == "ok")
                if not failing:
                    return _again(first, "not sampled again: every endpoint of the first sample answered well "
                                         "(what failed was not the sample)")
                if time.monotonic() + 1 / sampling.max_rps + self.timeout("request") > self.deadline:
                    return _again(first, "not sampled again: the run's deadline (timeouts.run_s) leaves no time; "
                                         "judged on the first sample")
                # as many requests as the first sample, on what failed: a one-in-twenty error is confirmed as surely
                chosen = {n: endpoints[n] for n in failing}
            login = self.session()
            session = login.session
            headers = {"Authorization": f"Bearer {session.access_token}"} if session else {}
            pace = politeness.Pace(requests, sampling.concurrency, sampling.max_rps, self._fail_level(*LATENCY),
                             self._fail_level(*TIMEOUTS), deadline=self.deadline - self.timeout("request"))
            result = http.sample(self.transport, backend.url, chosen, headers, pace, self.timeout("request"),
                                 session.expires_at if session else None, earlier=self._earlier(first))
            if self.client.window is not None and first is None:
                self.client.window.add(result.sent)
            result.evidence["login"] = "ok" if session else login_failure(login)
            if first is not None:
                result.evidence["confirming"] = f"sampled again: {', '.join(chosen)} (what failed in the first sample)"
            if self.plan.note:
                result.evidence["planned"] = self.plan.note
            return result
        return self.shared("http", attempt, measure)

    def _earlier(self, first: Result | None) -> list[dict[str, Any]]:
        """What a sample is judged with beside its own requests: serve's window of earlier rounds, and for a
        confirmation the first attempt's requests too (the window is the unit judged: an error stays in it
        until it is older than serve.window_s); a run judges each sample alone."""
        if self.client.window is None:
            return []
        return [*self._window_before, *_sent(first)]

    def stream_download(self, attempt: int) -> Result:
        return self.shared("stream", attempt, lambda: played(self.player()))

    def player(self) -> Player:
        """What the canary takes from this run (canary.py)."""
        p = self.profile
        return Player(self.transport, p.backend.url, p.stream, p.timeouts, self.token, self.login_failure)


def _sent(result: Result | None) -> list[dict[str, Any]]:
    return list(result.sent) if isinstance(result, http.SampleResult) else []


def _again(first: Result, why: str) -> Result:
    """The first sample standing for its confirmation, said so."""
    return replace(first, measurements=dict(first.measurements), evidence={**first.evidence, "confirming": why})
