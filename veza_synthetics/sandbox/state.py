"""What the sandbox's services share (its backend, chat and stream servers, and the orchestration that starts
them): secrets, addresses, the fault switchboard, the safety recorder. A module of its own, so the services
import it and nothing of the orchestration."""
from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field

from .faults import Faults
from .limits import TIME_SCALE


@dataclass
class SandboxState:
    """What the sandbox's services share: secrets, addresses and the fault switchboard."""
    faults: Faults = field(default_factory=Faults)
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    stream_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    pg_password: str = field(default_factory=lambda: secrets.token_hex(12))
    monitor_password: str = field(default_factory=lambda: secrets.token_hex(12))
    exporter_password: str = field(default_factory=lambda: secrets.token_hex(12))
    app_password: str = field(default_factory=lambda: secrets.token_hex(12))
    redis_password: str = field(default_factory=lambda: secrets.token_hex(12))
    user_password: str = field(default_factory=lambda: secrets.token_hex(12))
    admin_password: str = field(default_factory=lambda: secrets.token_hex(12))
    app_dsn: str = ""
    redis_port: int = 0
    stream_url: str = ""
    write_requests: list[tuple[str, str]] = field(default_factory=list)  # the safety recorder: (non-GET API call, its User-Agent)
    session_agents: dict[str, str] = field(default_factory=dict)  # session id -> the User-Agent that logged in
    logins: dict[str, int] = field(default_factory=dict)  # login attempts per email (Veza locks an address out after 3)
    throttled: Counter[str] = field(default_factory=Counter)  # 429s the limits answered (B11, B12), per client address
    backend_chat_sent: Counter[str] = field(default_factory=Counter)  # messages the backend's own chat re-broadcast (C6)
    variant: str = "contract"  # or "deployed", "production-server": the public Veza code (VARIANTS)
    time_scale: float = TIME_SCALE  # the rate limits' windows, this many times shorter than production's (limits.py)
    backend_log: str = ""  # each API request with its request id and traceparent, as a production log has them

    @property
    def deployed(self) -> bool:
        """The public code's shape, with either of its servers."""
        return self.variant != "contract"

    @property
    def dev_server(self) -> bool:
        """The public code with its dev server (cmd/server) in front: /api/health, no /ready."""
        return self.variant == "deployed"

    @property
    def production_server(self) -> bool:
        """The public code's production server (cmd/production-server) in front, not its dev server."""
        return self.variant == "production-server"
