"""Run the sandbox in the foreground until SIGINT/SIGTERM (`veza-synth sandbox up`)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from .limits import TIME_SCALE
from .stack import Sandbox

# A production platform does not share its CPU with the suite watching it: where allowed (root), the sandbox
# and its servers (started after this) run ahead of the suite's own processes, whatever else the machine runs.
SERVER_NICENESS = -5


def run_ahead() -> None:
    """This process (and what it starts afterwards) at SERVER_NICENESS, where allowed; else as it was."""
    with contextlib.suppress(OSError):  # not permitted: it shares the CPU evenly
        os.setpriority(os.PRIO_PROCESS, 0, SERVER_NICENESS)


async def serve(inject: list[str], profile_out: Path | None, base_profile: Path | None,
                wait_prometheus: bool = True, variant: str = "contract", time_scale: float = TIME_SCALE) -> None:
    run_ahead()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sandbox = Sandbox(base_profile=base_profile, wait_prometheus=wait_prometheus, variant=variant, time_scale=time_scale)
    await sandbox.start(inject)
    try:
        if profile_out:
            sandbox.write_profile(profile_out)
        p = sandbox.profile()
        lines = [f"  backend     {p['backend']['url']}", f"  chat        {p['chat']['url']}",
                 f"  stream      {p['stream']['url']}", f"  postgres    {p['postgres']['host']}:{p['postgres']['port']}",
                 f"  redis       {p['redis']['url']}", f"  prometheus  {p.get('prometheus', {}).get('url', '(not installed)')}",
                 f"  admin       {p['sandbox']['admin_url']}/faults",
                 f"  faults on   {', '.join(sorted(sandbox.state.faults.active)) or 'none'}"]
        if profile_out:
            lines.append(f"  profile     {profile_out}  (pytest --env {profile_out})")
        print("veza sandbox ready:\n" + "\n".join(lines), flush=True)
        await stop.wait()
    finally:
        await sandbox.stop()
        print("veza sandbox stopped", file=sys.stderr, flush=True)
