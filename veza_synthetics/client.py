"""The platform's client, as long as its owner lives: a run's Target makes one for the run; serve's prober
makes one when it starts and hands it to every round and /probe, so the accounts' sessions, the pace, the
budgets, the TLS trust and each endpoint's silence outlive a round, as a listener's browser outlives a page.

A session is logged in once, refreshed when its access token nears its expiry, and logged in again only
when the platform refuses it (a refresh answered 401 or 403): a session that vanishes between rounds is
met as a listener meets it. Logins are counted against the run's `auth.max_logins_per_run` and, in serve,
against the login budget (budget.py) that restarts and /probe calls share."""
from __future__ import annotations

import datetime as dt
import threading
import time

from .probes import address, auth, forget_connections
from .probes.budget import Ledger
from .probes.http import TOKEN_EXPIRY_MARGIN_S
from .probes.transport import Transport
from .probes.window import SampleWindow
from .profile import Profile
from .tracing import SpanExport

RETRY_AFTER_TIMEOUTS = 3  # an endpoint not answering is tried again after this many request timeouts
REFUSED = (401, 403)


def transport(profile: Profile, ledger: Ledger | None = None) -> Transport:
    """The profile's way to its platform: its backend paced at sampling.max_rps (and within the ledger's request
    budget), its endpoints trusted with tls.ca_file and guarded against silence."""
    p = profile
    guarded = {address(u) for u in p.urls() + [p.redis.url] if u} | (
        {f"{p.postgres.host}:{p.postgres.port}"} if p.postgres.host else set())
    return Transport(api_url=p.backend.url, max_rps=p.sampling.max_rps, ca_file=p.tls.ca_file,
                     trusted=tuple(p.urls()), guarded=tuple(guarded),
                     retry_s=RETRY_AFTER_TIMEOUTS * p.timeouts.request_s, tracing=p.tracing,
                     request_budget=ledger.requests if ledger else None)


class Client:
    def __init__(self, profile: Profile, ledger: Ledger | None = None, window: SampleWindow | None = None,
                 location: str = ""):
        """`ledger`: the budgets no caller exceeds; `window`: recent samples judged together (both serve's);
        `location`: where it runs, on the spans it exports (the profile's when not given)."""
        self.profile, self.ledger, self.window = profile, ledger, window
        self.transport = transport(profile, ledger)
        tracing = profile.tracing
        self.spans = SpanExport(tracing, profile.name, location or profile.location, profile.redactor()) \
            if tracing.otlp_endpoint else None  # each check attempt's spans, to the team's collector
        self._lock = threading.RLock()
        self._held: dict[bool, auth.LoginResult] = {}  # admin? -> the account's login (with its session, or why not)
        self._refused: set[bool] = set()  # accounts whose held session the platform refused: logged in again at next use
        self._opened: list[auth.Session] = []  # every session opened and not yet logged out
        self.logins = 0  # made by this client
        self._refusals: list[str] = []  # sessions the platform refused, said once to auth.session_lost
        self._round_logins = 0

    @property
    def api_requests(self) -> int:
        """Requests that reached (or may have reached) the API, by this client."""
        return self.transport.pace.turns if self.transport.pace else 0

    def new_round(self) -> None:
        """A new run of the checks on this client: a login that failed is tried again (within the budgets);
        the sessions held stay."""
        with self._lock:
            self._held = {admin: held for admin, held in self._held.items() if held.session is not None}
            self._round_logins = 0

    # -- sessions ---------------------------------------------------------------------------------------
    def session(self, admin: bool = False) -> auth.LoginResult:
        """The account's session: logged in at first use (or after the platform refused it), refreshed
        when its access token nears its own expiry."""
        with self._lock:
            held = self._held.get(admin)
            if held is not None and held.session is not None and _expiring(held.session):
                self._refresh(held)
            if held is None or admin in self._refused:
                again = self._login(admin)
                if held is None or again.session is not None:  # a login refused or over budget keeps the old session:
                    held = self._held[admin] = again             # its checks meet its refusal, the truth
                    self._refused.discard(admin)
            return held

    def refresh(self) -> auth.RefreshResult:
        """Refresh the synthetic user's session: its new tokens (and rotated refresh token) become the session's."""
        with self._lock:
            held = self.session(False)
            if held.session is None:
                return auth.RefreshResult("auth", f"POST {auth.REFRESH}",
                                          error=f"no session to refresh: {login_failure(held)}")
            return self._refresh(held)

    def _refresh(self, held: auth.LoginResult) -> auth.RefreshResult:
        session = held.session
        if session is None:
            return auth.RefreshResult("auth", f"POST {auth.REFRESH}", error=f"no session to refresh: {login_failure(held)}")
        budget = self.ledger.refreshes if self.ledger else None
        if budget is not None and budget.try_spend() is None:
            free = dt.datetime.fromtimestamp(budget.next_free(), dt.UTC).isoformat(timespec="seconds")
            return auth.RefreshResult("auth", f"POST {auth.REFRESH}", over_budget=True,
                                      error=f"not refreshed: the refresh budget ({budget.describe()}: serve.max_refreshes, "
                                            f"serve.refresh_window_s) is spent until {free}")
        result = auth.refresh(self.transport, self.profile.backend.url, session, self.profile.timeouts.request_s)
        if result.session is not None:
            self._opened = [result.session if s is session else s for s in self._opened]
            held.session = result.session
        elif not result.error and result.measurements.get("status") in REFUSED:
            # the platform refused the session: the next use logs in again (logged out at the close all the same)
            self._refused |= {admin for admin, h in self._held.items() if h is held}
            self._refusals.append(f"a session held {time.time() - session.received_at:.0f} s was refused at its refresh "
                                  f"at {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}: "
                                  f"{auth.answered(result.measurements.get('status'), result.evidence)}")
        return result

    def refusals(self) -> list[str]:
        """The sessions the platform refused since the last call (each said once)."""
        with self._lock:
            said, self._refusals = self._refusals, []
            return said

    def _login(self, admin: bool) -> auth.LoginResult:
        p = self.profile
        who = "admin" if admin else "synthetic user"
        if self._round_logins >= p.auth.max_logins_per_run:
            return auth.LoginResult("auth", f"POST {auth.LOGIN}", over_budget=True,
                                    error=f"{who} not logged in: the run made its {self._round_logins} login(s) of "
                                          f"auth.max_logins_per_run = {p.auth.max_logins_per_run}")
        budget = self.ledger.logins if self.ledger else None
        spent = budget.try_spend() if budget else 0.0
        if budget is not None and spent is None:
            free = dt.datetime.fromtimestamp(budget.next_free(), dt.UTC).isoformat(timespec="seconds")
            return auth.LoginResult("auth", f"POST {auth.LOGIN}", over_budget=True,
                                    error=f"{who} not logged in: the login budget ({budget.describe()}: "
                                          f"serve.max_logins, serve.login_window_s) is spent until {free}")
        self._round_logins += 1
        self.logins += 1
        acc = p.accounts
        email, password = (acc.admin_email, acc.admin_password) if admin else (acc.user_email, acc.user_password)
        result = auth.login(self.transport, p.backend.url, email, password, p.timeouts.request_s)
        if result.session is not None:
            self._opened.append(result.session)
        return result

    def close(self) -> None:
        """Log out every session this client opened; close this thread's connections."""
        with self._lock:
            sessions, self._opened, self._held, self._refused = self._opened, [], {}, set()
        if self.transport.pace is not None:
            self.transport.pace.resume()  # a halted prober's logouts still wait for their turns, as every request
        for session in sessions:
            auth.logout(self.transport, self.profile.backend.url, session, self.profile.timeouts.request_s)
        forget_connections()
        if self.spans is not None:
            self.spans.close()


def _expiring(session: auth.Session) -> bool:
    expires_at = session.expires_at
    return expires_at is not None and time.time() >= expires_at - TOKEN_EXPIRY_MARGIN_S


def login_failure(login: auth.LoginResult) -> str:
    return login.error or f"login {auth.answered(login.measurements.get('status'), login.evidence)}"
