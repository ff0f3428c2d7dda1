"""The client of a running sandbox's admin API (sandbox/admin.py): the one way the suite, the tests and the
benchmarks talk to its switches and recorders. Outside the sandbox package and httpx only: the core reaches a
sandbox the profile names (its `[sandbox] admin_url`) without loading the sandbox's servers."""
from __future__ import annotations

from typing import Any

import httpx

from .errors import SetupError


class AdminClient:
    def __init__(self, url: str):
        self.url = url

    def _answer(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            try:
                raise SetupError(str(response.json().get("error", response.text)))
            except ValueError:
                raise SetupError(f"the sandbox's admin API answered {response.status_code}") from None
        return response.json()

    def faults(self) -> dict[str, Any]:
        """The faults on, those known, their sizes and the sandbox's start phases (seconds)."""
        answer: dict[str, Any] = self._answer(httpx.get(f"{self.url}/faults", timeout=5))
        return answer

    def set_faults(self, faults: list[str], params: dict[str, float] | None = None) -> list[str]:
        """Exactly these faults on (each switch returns once Prometheus sees it); the faults now on."""
        answer = self._answer(httpx.put(f"{self.url}/faults", json={"active": faults, "params": params or {}},
                                        timeout=60))
        return [str(fault) for fault in answer["active"]]

    def fire_once(self, fault: str) -> None:
        """Switch a fault on for a single request: a network blip."""
        self._answer(httpx.post(f"{self.url}/faults/{fault}", params={"once": "1"}, timeout=10))

    def prometheus_ready(self) -> None:
        """Return once the sandbox's Prometheus has scraped every target twice (at once when long done)."""
        try:
            self._answer(httpx.get(f"{self.url}/prometheus-ready", timeout=40))
        except httpx.HTTPError as exc:
            raise SetupError(f"the sandbox's admin API did not answer: {exc}") from None

    def writes(self, user_agent: str | None = None) -> dict[str, Any]:
        """What the write recorder saw (API writes of one client only, with its User-Agent), the logins per
        account and the 429s per client address."""
        params = {"user_agent": user_agent} if user_agent is not None else {}
        answer: dict[str, Any] = self._answer(httpx.get(f"{self.url}/writes", params=params, timeout=10))
        return answer

    def open_sessions(self, user_agent: str) -> int:
        """Sessions the client with this User-Agent opened and has not logged out (nor let expire)."""
        return int(self._answer(httpx.get(f"{self.url}/sessions", params={"user_agent": user_agent}, timeout=10))["open"])

    def route_alerts(self, prober: str, webhook: str) -> dict[str, Any]:
        """The sandbox's Prometheus scrapes this `veza-synth serve` (HOST:PORT); its Alertmanager routes to webhook."""
        routed: dict[str, Any] = self._answer(httpx.put(f"{self.url}/alerting", json={"prober": prober,
                                                                                     "webhook": webhook}, timeout=10))
        return routed

    def logs(self) -> dict[str, list[str]]:
        """The front door's access log and the backend's request log (their last lines)."""
        logs: dict[str, list[str]] = self._answer(httpx.get(f"{self.url}/logs", timeout=10))
        return logs

    def stream_secret(self) -> dict[str, str]:
        """The stream server's signing secret and canary, for the tests of a profile that signs locally."""
        secret: dict[str, str] = self._answer(httpx.get(f"{self.url}/stream-secret", timeout=5))
        return secret

    def exporter_role(self) -> dict[str, str]:
        """postgres_exporter's role and password: pg_monitor without a read on refresh_tokens."""
        role: dict[str, str] = self._answer(httpx.get(f"{self.url}/exporter-role", timeout=5))
        return role

    def alternatives(self) -> dict[str, Any]:
        """The deployed variant's other shapes of the public code: simple_stream_server and the HAProxy door."""
        answer: dict[str, Any] = self._answer(httpx.get(f"{self.url}/alternatives", timeout=5))
        return answer
