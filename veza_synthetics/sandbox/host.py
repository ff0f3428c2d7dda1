"""The sandboxed instance's host, as the real node_exporter reads it.

node_exporter runs with `--path.procfs` pointed at a tree kept here: `stat` carries the CPU
time of the Veza stack's own processes (so the test harness's load on a shared CI machine
does not read as the platform's saturation), `meminfo` is the host's, `mounts` lists the
instance's two volumes. The volumes are real tmpfs mounts, so perf.disk_full fills the
data volume with a real file and node_exporter's statfs sees it. CPU and memory faults
write the figures the kernel would show under that load into the tree.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import SetupError
from .faults import Faults

USER_HZ = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1
VOLUMES = {"data": 32, "logs": 16}  # name -> size in MiB
REFRESH_S = 0.5


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / USER_HZ


class HostTree:
    """The procfs tree and volumes of the sandbox's one instance."""

    def __init__(self, workdir: Path, faults: Faults, stack_pids: Callable[[], list[int]]):
        self.procfs = workdir / "host" / "proc"
        self.volumes = {name: workdir / "host" / "volumes" / name for name in VOLUMES}
        self.faults = faults
        self.stack_pids = stack_pids
        self.mounted: list[Path] = []
        self._per_pid: dict[int, float] = {}
        self._seconds = {"user": 0.0, "idle": 0.0}  # per CPU; kept here so a fault switch keeps them monotonic
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def create(self) -> None:
        self.procfs.mkdir(parents=True)
        for name, path in self.volumes.items():
            path.mkdir(parents=True)
            mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUMES[name]}m,mode=0755",  # nosec B607
                                    f"veza-{name}", str(path)], capture_output=True, text=True, timeout=10)
            if mount.returncode == 0:
                self.mounted.append(path)
        (self.procfs / "mounts").write_text("".join(
            f"veza-{name} {path} tmpfs rw,relatime,size={VOLUMES[name] * 1024}k 0 0\n"
            for name, path in self.volumes.items()))
        self._last = time.monotonic()
        self._write()

    async def start(self) -> None:
        self.create()
        self._task = asyncio.create_task(self._refresh())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for path in self.mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)  # nosec B607  # the system's umount
        self.mounted = []

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            await asyncio.to_thread(self._write)

    def _write(self) -> None:
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        busy = self._stack_busy(elapsed)
        if self.faults.on("perf.cpu_saturation"):
            busy = self.faults.param("perf.cpu_saturation") / 100
        self._seconds["user"] += elapsed * busy
        self._seconds["idle"] += elapsed * (1 - busy)
        user, idle = (round(self._seconds[k] * USER_HZ) for k in ("user", "idle"))
        per_cpu = [f"cpu{n} {user} 0 0 {idle} 0 0 0 0 0 0" for n in range(CPUS)]
        stat = [f"cpu  {user * CPUS} 0 0 {idle * CPUS} 0 0 0 0 0 0", *per_cpu]
        self._replace("stat", "\n".join(stat) + "\n")
        self._replace("meminfo", self._meminfo())

    def _stack_busy(self, elapsed: float) -> float:
        """The stack's share of the machine's CPU time since the last write."""
        spent, seen = 0.0, {}
        for pid in self.stack_pids():
            now = process_cpu_seconds(pid)
            if now is not None:
                seen[pid] = now
                spent += max(0.0, now - self._per_pid.get(pid, now))
        self._per_pid = seen
        return min(1.0, spent / (elapsed * CPUS)) if elapsed > 0 else 0.0

    def _meminfo(self) -> str:
        lines = Path("/proc/meminfo").read_text().splitlines()
        if not self.faults.on("perf.memory_pressure"):
            return "\n".join(lines) + "\n"
        total_kb = next(int(line.split()[1]) for line in lines if line.startswith("MemTotal:"))
        available_kb = round(total_kb * (1 - self.faults.param("perf.memory_pressure") / 100))
        return "\n".join(f"MemAvailable:   {available_kb} kB" if line.startswith("MemAvailable:") else line
                         for line in lines) + "\n"

    def _replace(self, name: str, text: str) -> None:
        """Whole-file swaps: node_exporter never reads a half-written file."""
        tmp = self.procfs / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(self.procfs / name)

    def fill_data_volume(self, percent: float | None) -> None:
        """Fill the data volume to `percent` with a real file (None empties it)."""
        path = self.volumes["data"]
        filler = path / "filler"
        filler.unlink(missing_ok=True)
        if percent is None:
            return
        if path not in self.mounted:
            raise SetupError("perf.disk_full needs the sandbox's data volume, a tmpfs mount: run the sandbox as root "
                             "(mount -t tmpfs), or leave this fault out")
        disk = os.statvfs(path)
        size, free = disk.f_blocks * disk.f_frsize, disk.f_bavail * disk.f_frsize
        wanted = int(size * percent / 100) - (size - free)
        if wanted > 0:
            with open(filler, "wb") as out:
                os.posix_fallocate(out.fileno(), 0, wanted)
