"""Nothing of the sandbox outlives it: `python -m veza_synthetics.sandbox.guard CMD...` runs CMD (the
sandbox) as its child and, when CMD ends for any reason (SIGKILL included), ends every process CMD
left behind: PostgreSQL's postmaster that pg_ctl detached, Redis, Prometheus, the exporters, nginx;
then unmounts the volumes mounted under the folder the sandbox kept its data in (WORKDIR_VAR: the
host tree's tmpfs volumes) and removes it (PostgreSQL's data, ~70 MB), which a SIGKILLed sandbox
could not do itself.

The guard is a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so orphaned descendants come to it
instead of init; it asks the kernel for SIGTERM when its own parent dies (PR_SET_PDEATHSIG, set by
SandboxProcess), which it passes on to the sandbox for an orderly stop. A CI job killed with SIGKILL
on a self-hosted runner thus leaves no server running.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 5.0  # what a leftover gets after SIGTERM before SIGKILL
WORKDIR_VAR = "VEZA_SANDBOX_WORKDIR"  # the folder the guard makes for the sandbox's data, and removes
OWNER_DIR_VAR = "VEZA_SANDBOX_OWNER_DIR"  # the folder its owner keeps the profile and log in: removed too


def prctl(option: int, value: int) -> None:
    """Linux's prctl(2); where it is not available the guard still stops what it can see."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def die_with_parent() -> None:
    """For Popen's preexec_fn: SIGTERM when the process that started this one is gone."""
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(root: int) -> list[int]:
    """Every live process below `root` in the process tree (zombies are reaped, not listed)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            parents[int(stat.parent.name)] = int(ppid)
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found += sorted(frontier)
    return found


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def end_leftovers() -> None:
    """SIGTERM to every descendant still running, SIGKILL to those left after GRACE_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = descendants(os.getpid())
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_S
        while left and time.monotonic() < deadline:
            _reap()
            left = descendants(os.getpid())
            time.sleep(0.05)
        if not left:
            return


def main(command: list[str]) -> int:
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    workdir = tempfile.mkdtemp(prefix="veza-sandbox-")
    os.chmod(workdir, 0o755)  # nosec B103  # the postgres user must reach its data dir; nothing secret is written here
    child = subprocess.Popen(command, env={**os.environ, WORKDIR_VAR: workdir},
                             preexec_fn=die_with_parent)  # and the sandbox stops if the guard dies

    def stop(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = child.wait()
    end_leftovers()
    remove(Path(workdir))
    if os.environ.get(OWNER_DIR_VAR):  # the owner may be gone (SIGKILLed): its folder goes with the sandbox
        shutil.rmtree(os.environ[OWNER_DIR_VAR], ignore_errors=True)
    return code


def remove(workdir: Path) -> None:
    """Unmount what is still mounted under the sandbox's folder (the deepest first), then remove it."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        points = [Path(line.split()[1].replace("\\040", " ")) for line in Path("/proc/self/mounts").read_text().splitlines()]
        for point in sorted((p for p in points if p.is_relative_to(workdir)), key=lambda p: len(p.parts), reverse=True):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=10)  # nosec B607  # the system's umount
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
