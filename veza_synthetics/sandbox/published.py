"""The profile the running sandbox publishes: its addresses, CA, accounts and grants, written where a run reads
it (`sandbox up --profile-out`, SandboxProcess)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from ..profile import SANDBOX_VARIANTS
from .audio import CANARY_NAME, DURATION_S
from .parts import Parts, up
from .processes import LOOPBACK
from .seed import ADMIN_EMAIL, CANARY_TRACK_ID, MONITOR_ROLE, SYNTHETIC_EMAIL
from .state import SandboxState


def published_profile(state: SandboxState, parts: Parts, base_profile: Path | None) -> dict[str, Any]:
    s, nginx = state, up(parts.nginx)
    profile = {
        "name": Path(SANDBOX_VARIANTS[s.variant]).stem, "kind": "sandbox", "allow": "writes",
        "backend": {"url": nginx.url("backend")},
        "chat": {"url": f"{nginx.url('chat', 'wss')}/{'ws' if s.deployed else 'chat'}",
                 "health_url": f"{nginx.url('chat')}/health"},
        # The contract's backend signs the canary's URL and says its length: no secret. The public code has
        # no route that signs one (B13) and no stream server that says a length (S6, S8): the suite signs
        # with the stream server's SECRET_KEY and is told the canary's length, as a team running it must.
        "stream": {"url": s.stream_url, "canary_track_id": CANARY_TRACK_ID, "canary": CANARY_NAME,
                   **({"secret": s.stream_secret, "canary_duration_s": DURATION_S} if s.deployed else {})},
        "tls": {"ca_file": str(nginx.ca.ca_file)},
        "postgres": {"host": LOOPBACK, "port": up(parts.pg_proxy).port, "dbname": "veza_db", "user": MONITOR_ROLE,
                     "password": s.monitor_password},
        "redis": {"url": f"redis://{LOOPBACK}:{up(parts.redis).port}/0", "password": s.redis_password},
        "accounts": {"user_email": SYNTHETIC_EMAIL, "user_password": s.user_password,
                     "admin_email": ADMIN_EMAIL, "admin_password": s.admin_password},
        "sandbox": {"admin_url": parts.servers["admin"].url},
    }
    if parts.prometheus:
        profile["prometheus"] = {"url": f"http://{LOOPBACK}:{parts.prometheus.port}"}
    if base_profile:
        profile["extends"] = str(base_profile)
    return profile


def write_profile(profile: dict[str, Any], path: Path) -> None:
    """Written whole, readable by its owner only (it holds the accounts' passwords), then renamed into place."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(profile))
    tmp.chmod(0o600)
    tmp.replace(path)
