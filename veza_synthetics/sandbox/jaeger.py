"""A real Jaeger (v2, built from the Go module proxy into tools/jaeger/bin by `make setup`) on loopback, with
in-memory storage and its OTLP/HTTP receiver: where the tests find the spans a check attempt exported, through
Jaeger's own query API, as an on-call engineer finds a trace."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ..errors import SetupError
from .guard import die_with_parent
from .processes import LOOPBACK, _stop, free_port, wait_for_port

BUILT = Path(__file__).resolve().parents[2] / "tools" / "jaeger" / "bin" / "jaeger"


class Jaeger:
    def __init__(self) -> None:
        self.binary = self.available()
        if self.binary is None:
            raise SetupError(f"jaeger not found at {BUILT}: `make setup` builds it (Go, from the module proxy)")
        self.dir = Path(tempfile.mkdtemp(prefix="veza-jaeger-"))
        self.otlp_port, self.query_port, self.health_port, self.grpc_port = (free_port() for _ in range(4))
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return str(BUILT) if BUILT.is_file() else shutil.which("jaeger")

    @property
    def otlp_endpoint(self) -> str:
        """What a profile's [tracing] otlp_endpoint names (OTLP/HTTP, /v1/traces appended by the exporter)."""
        return f"http://{LOOPBACK}:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://{LOOPBACK}:{self.query_port}"

    def start(self) -> None:
        config = self.dir / "jaeger.yaml"
        config.write_text(f"""service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "{LOOPBACK}:{self.query_port}"
    grpc:
      endpoint: "{LOOPBACK}:{self.grpc_port}"
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{LOOPBACK}:{self.health_port}"
receivers:
  otlp:
    protocols:
      http:
        endpoint: "{LOOPBACK}:{self.otlp_port}"
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
""")
        # it dies with the process that started it, even a killed one (start() from that process's main thread)
        self.proc = subprocess.Popen([str(self.binary), "--config", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "jaeger.log", "wb"), start_new_session=True,
                                     preexec_fn=die_with_parent)
        wait_for_port(self.otlp_port, 30, self.proc, "jaeger")
        wait_for_port(self.query_port, 30, self.proc, "jaeger")

    def trace(self, trace_id: str, timeout_s: float = 15) -> dict[str, Any]:
        """The trace as Jaeger's query API gives it (its spans, with their tags), once it has arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = httpx.get(f"{self.query_url}/api/traces/{trace_id}", timeout=5)
            if answer.status_code == 200 and answer.json().get("data"):
                found: dict[str, Any] = answer.json()["data"][0]
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"trace {trace_id} not in Jaeger after {timeout_s:g} s: HTTP {answer.status_code}")
            time.sleep(0.3)

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
