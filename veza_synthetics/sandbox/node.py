"""A node-metrics exporter with node_exporter's names, real figures unless a fault overrides them.

Memory and disk are the host's. CPU is the Veza stack's own share of the machine (the
sandbox process, its servers and PostgreSQL's backends), so the test harness's load on a
shared 2-core CI machine does not read as the platform's saturation.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

USER_HZ = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / USER_HZ


def read_meminfo() -> dict[str, float]:
    with open("/proc/meminfo") as info:
        return {k: float(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in info)}


class NodeExporter:
    """Counters are kept by the exporter itself, so switching a fault keeps them monotonic."""

    def __init__(self, state, stack_pids: Callable[[], list[int]]):
        self.s = state
        self.stack_pids = stack_pids
        self._per_pid: dict[int, float] = {}
        self._counters = {str(cpu): {"user": 0.0, "system": 0.0, "idle": 0.0} for cpu in range(CPUS)}
        self._last_time = time.monotonic()

    def asgi(self):
        return Starlette(routes=[Route("/metrics", self.metrics)])

    def _stack_cpu_delta(self) -> float:
        delta, seen = 0.0, {}
        for pid in self.stack_pids():
            now = process_cpu_seconds(pid)
            if now is not None:
                seen[pid] = now
                delta += max(0.0, now - self._per_pid.get(pid, now))
        self._per_pid = seen
        return delta

    def _advance_cpu(self) -> None:
        now = time.monotonic()
        elapsed, self._last_time = now - self._last_time, now
        busy_seconds = self._stack_cpu_delta()
        if self.s.faults.on("perf.cpu_saturation"):
            busy = self.s.faults.param("perf.cpu_saturation") / 100
        else:
            busy = min(1.0, busy_seconds / (elapsed * CPUS)) if elapsed > 0 else 0.0
        for counters in self._counters.values():
            counters["user"] += elapsed * busy
            counters["idle"] += elapsed * (1 - busy)

    async def metrics(self, request):
        self._advance_cpu()
        lines = ["# TYPE node_cpu_seconds_total counter"]
        for cpu, modes in sorted(self._counters.items()):
            lines += [f'node_cpu_seconds_total{{cpu="{cpu}",mode="{m}"}} {v:.2f}' for m, v in modes.items()]
        mem = read_meminfo()
        total, available = mem["MemTotal"], mem["MemAvailable"]
        if self.s.faults.on("perf.memory_pressure"):
            available = total * (1 - self.s.faults.param("perf.memory_pressure") / 100)
        disk = os.statvfs("/")
        size, avail = disk.f_blocks * disk.f_frsize, disk.f_bavail * disk.f_frsize
        if self.s.faults.on("perf.disk_full"):
            avail = size * (1 - self.s.faults.param("perf.disk_full") / 100)
        fs = 'device="rootfs",fstype="rootfs",mountpoint="/"'
        lines += [
            "# TYPE node_memory_MemTotal_bytes gauge", f"node_memory_MemTotal_bytes {total:.0f}",
            "# TYPE node_memory_MemAvailable_bytes gauge", f"node_memory_MemAvailable_bytes {available:.0f}",
            "# TYPE node_filesystem_size_bytes gauge", f"node_filesystem_size_bytes{{{fs}}} {size}",
            "# TYPE node_filesystem_avail_bytes gauge", f"node_filesystem_avail_bytes{{{fs}}} {avail:.0f}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
