"""A node-metrics exporter with node_exporter's names: real host figures unless a fault overrides them."""
from __future__ import annotations

import os
import time

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
USER_HZ = os.sysconf("SC_CLK_TCK")
FAULT_FIGURES = {"perf.cpu_saturation": 95.0, "perf.memory_pressure": 92.0, "perf.disk_full": 95.0}


def read_cpu_seconds() -> dict[str, dict[str, float]]:
    cpus = {}
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3].isdigit():
                name, *ticks = line.split()
                cpus[name[3:]] = {mode: int(t) / USER_HZ for mode, t in zip(MODES, ticks)}
    return cpus


def read_meminfo() -> dict[str, float]:
    with open("/proc/meminfo") as info:
        return {k: float(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in info)}


class NodeExporter:
    """CPU counters are kept by the exporter itself, so switching a fault keeps them monotonic."""

    def __init__(self, state):
        self.s = state
        self._last_real = read_cpu_seconds()
        self._counters = {cpu: dict(modes) for cpu, modes in self._last_real.items()}
        self._last_time = time.monotonic()

    def asgi(self):
        return Starlette(routes=[Route("/metrics", self.metrics)])

    def _advance_cpu(self) -> None:
        real, now = read_cpu_seconds(), time.monotonic()
        elapsed, self._last_time = now - self._last_time, now
        for cpu, modes in real.items():
            counters = self._counters.setdefault(cpu, dict(modes))
            if self.s.faults.on("perf.cpu_saturation"):
                busy = FAULT_FIGURES["perf.cpu_saturation"] / 100
                counters["user"] += elapsed * busy
                counters["idle"] += elapsed * (1 - busy)
            else:
                for mode in MODES:
                    counters[mode] += max(0.0, modes[mode] - self._last_real[cpu][mode])
        self._last_real = real

    async def metrics(self, request):
        self._advance_cpu()
        lines = ["# TYPE node_cpu_seconds_total counter"]
        for cpu, modes in sorted(self._counters.items()):
            lines += [f'node_cpu_seconds_total{{cpu="{cpu}",mode="{m}"}} {v:.2f}' for m, v in modes.items()]
        mem = read_meminfo()
        total, available = mem["MemTotal"], mem["MemAvailable"]
        if self.s.faults.on("perf.memory_pressure"):
            available = total * (1 - FAULT_FIGURES["perf.memory_pressure"] / 100)
        disk = os.statvfs("/")
        size, avail = disk.f_blocks * disk.f_frsize, disk.f_bavail * disk.f_frsize
        if self.s.faults.on("perf.disk_full"):
            avail = size * (1 - FAULT_FIGURES["perf.disk_full"] / 100)
        fs = 'device="rootfs",fstype="rootfs",mountpoint="/"'
        lines += [
            "# TYPE node_memory_MemTotal_bytes gauge", f"node_memory_MemTotal_bytes {total:.0f}",
            "# TYPE node_memory_MemAvailable_bytes gauge", f"node_memory_MemAvailable_bytes {available:.0f}",
            "# TYPE node_filesystem_size_bytes gauge", f"node_filesystem_size_bytes{{{fs}}} {size}",
            "# TYPE node_filesystem_avail_bytes gauge", f"node_filesystem_avail_bytes{{{fs}}} {avail:.0f}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
