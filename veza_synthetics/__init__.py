"""veza-synthetics: the Veza troubleshooting guide as a synthetic monitoring suite."""
from __future__ import annotations

import subprocess  # nosec B404  # git only, fixed arguments
from pathlib import Path

__version__ = "0.1.0"


def git_commit() -> str:
    """The suite's own commit, where it runs from a checkout ("" elsewhere): each result says what judged it."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"],  # nosec B607 B603  # git from PATH, fixed arguments
                              capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
