"""The sandbox's admin API, on its own port and never on a Veza-facing path: the fault switches, and what the
tests read of the platform (the writes it saw, its logs and sessions, its alerting, the deployed variant's
alternatives). SandboxProcess is its client."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..catalog import load as load_catalog
from ..errors import SetupError
from . import faults as fault_ids
from .audio import CANARY_NAME
from .parts import Parts, up
from .processes import LOOPBACK, PROBER_JOB
from .seed import EXPORTER_ROLE
from .state import SandboxState
from .stream import SimpleStreamServer
from .switches import FaultSwitches


class AdminApi:
    def __init__(self, state: SandboxState, parts: Parts, switches: FaultSwitches):
        self.state, self.parts, self.switches = state, parts, switches

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/writes", self.writes), Route("/stream-secret", self.stream_secret),
                                 Route("/exporter-role", self.exporter_role),
                                 Route("/alternatives", self.alternatives),
                                 Route("/prometheus-ready", self.prometheus_ready),
                                 Route("/logs", self.logs), Route("/sessions", self.sessions),
                                 Route("/alerting", self.alerting, methods=["GET", "PUT"]),
                                 Route("/faults", self.faults, methods=["GET", "PUT"]),
                                 Route("/faults/{fault}", self.one_fault, methods=["POST", "DELETE"])])

    async def faults(self, request: Request) -> JSONResponse:
        faults = self.state.faults
        if request.method == "PUT":
            try:
                body = await request.json()
                params = {k: float(v) for k, v in body.get("params", {}).items()}
                unknown = set(params) - set(fault_ids.default_sizes())
                if unknown:
                    return JSONResponse({"error": f"faults without a size: {sorted(unknown)}; sized faults: "
                                                  f"{sorted(fault_ids.default_sizes())}"}, 400)
                faults.params = {**fault_ids.default_sizes(), **params}
                before = set(faults.active)
                await self.switches.set(list(body["active"]))
                # switched on or off alike, and from when the switch is complete (holding a whole pool takes a
                # while): the next reader of Prometheus sees the platform as it is now
                await self.switches.seen_by_prometheus(sorted(before ^ faults.active), time.time())
            except SetupError as exc:
                return JSONResponse({"error": str(exc)}, 404)
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": 'expected {"active": [fault ids]}'}, 400)
        return JSONResponse({"active": sorted(faults.active), "known": sorted(load_catalog().faults),
                             "params": faults.params, "started_in_s": self.parts.timings})

    async def one_fault(self, request: Request) -> JSONResponse:
        fault, on = request.path_params["fault"], request.method == "POST"
        try:
            if on and request.query_params.get("once"):
                self.switches.fire_once(fault)
            else:
                await self.switches.switch(fault, on)
        except SetupError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"active": sorted(self.state.faults.active), "once": sorted(self.state.faults.once)})

    async def writes(self, request: Request) -> JSONResponse:
        """Every write the suite made: API requests that change data (those of one client with
        ?user_agent=), SQL that is not a read, and the chat messages per conversation (those the chat server
        stored, and those the backend's own chat re-broadcast); the logins per account and the 429s per
        client address the platform answered."""
        agent = request.query_params.get("user_agent")
        http = [entry for entry, by in self.state.write_requests if agent is None or by == agent]
        stored = await up(self.parts.chat).stored_messages()  # None while the database cannot say
        chat = None if stored is None else dict(Counter(stored) + self.state.backend_chat_sent)
        return JSONResponse({"http": http, "logins": dict(self.state.logins), "throttled": dict(self.state.throttled),
                             "sql": up(self.parts.pg).suite_writes(), "chat": chat})

    async def prometheus_ready(self, request: Request) -> JSONResponse:
        """Waits (up to 30 s) until Prometheus has scraped every target twice: a run that started the
        sandbox without waiting asks here before its first check that reads Prometheus."""
        if not self.parts.prometheus:
            return JSONResponse({"error": "this sandbox runs without Prometheus"}, 404)
        try:
            await self.parts.prometheus_scraped()
        except SetupError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        return JSONResponse({"ready": True})

    async def logs(self, request: Request) -> JSONResponse:
        """The front door's access log and the backend's request log (the last 2000 lines of each), for the
        tests that find a report's request and trace ids where an on-call engineer would look."""
        def tail(path: Path) -> list[str]:
            return path.read_text(errors="replace").splitlines()[-2000:] if path.is_file() else []
        access = self.parts.nginx.prefix / "logs" / "access.log" if self.parts.nginx else Path()
        return JSONResponse({"access": tail(access), "backend": tail(Path(self.state.backend_log))})

    async def sessions(self, request: Request) -> JSONResponse:
        """Sessions still open (not logged out, not expired), all or those one client opened (?user_agent=)."""
        return JSONResponse({"open": await up(self.parts.backend).open_sessions(request.query_params.get("user_agent"))})

    async def alerting(self, request: Request) -> JSONResponse:
        """The sandbox's Prometheus and Alertmanager; PUT {"prober": "HOST:PORT", "webhook": URL} makes its
        Prometheus scrape a `veza-synth serve` (job veza_synthetics_serve) and its Alertmanager route to the
        webhook."""
        prometheus, alertmanager = self.parts.prometheus, self.parts.alertmanager
        if not (prometheus and alertmanager):
            return JSONResponse({"error": "this sandbox runs without Prometheus or Alertmanager"}, 404)
        if request.method == "PUT":
            try:
                body = await request.json()
                port = int(str(body["prober"]).rpartition(":")[2])
                alertmanager.route_to(str(body["webhook"]))
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": 'expected {"prober": "127.0.0.1:PORT", "webhook": "http://..."}'}, 400)
            except SetupError as exc:
                return JSONResponse({"error": str(exc)}, 400)
            prometheus.set_targets({PROBER_JOB: [port]})
        return JSONResponse({"prometheus": f"http://{LOOPBACK}:{prometheus.port}", "alertmanager": alertmanager.url,
                             "prober_job": PROBER_JOB, "webhook": alertmanager.webhook})

    async def stream_secret(self, request: Request) -> JSONResponse:
        """For the tests of a profile that signs locally: production gives no such secret."""
        return JSONResponse({"secret": self.state.stream_secret, "canary": CANARY_NAME})

    async def exporter_role(self, request: Request) -> JSONResponse:
        """For the test of a role without the grants the suite needs: postgres_exporter's (pg_monitor, but no read
        on refresh_tokens), as a team might hand the suite by mistake."""
        return JSONResponse({"user": EXPORTER_ROLE, "password": self.state.exporter_password})

    async def alternatives(self, request: Request) -> JSONResponse:
        """The deployed variant's other shapes of the public code, served beside its profile's, for the tests
        of a profile pointing there: simple_stream_server (S8) and the historical HAProxy front door (D3)."""
        if self.parts.haproxy is None:
            return JSONResponse({"error": "only the deployed variant serves the public code's alternatives"}, 404)
        return JSONResponse({"simple_stream": {"url": self.parts.servers["simple-stream"].url,
                                               "canary": SimpleStreamServer.name},
                             "haproxy": {"url": self.parts.haproxy.url, "stats": self.parts.haproxy.stats_url}})
