"""The platform's database as production has it: Veza's schema and seed tracks, the canary track, the
synthetic and admin accounts, and the roles production grants the suite and its exporter (never a superuser)."""
from __future__ import annotations

import secrets
from pathlib import Path

import psycopg

from .answers import password_hash
from .audio import CANARY_NAME, DURATION_S
from .state import SandboxState

MONITOR_ROLE, MONITOR_CONNECTIONS = "veza_monitor", 5
EXPORTER_ROLE, EXPORTER_CONNECTIONS = "veza_exporter", 3  # postgres_exporter's own pg_monitor role
SYNTHETIC_EMAIL = "synthetic@veza.local"
ADMIN_EMAIL = "admin@veza.local"
CANARY_TRACK_ID = 50001  # inserted right after schema.sql's 50,000 seed tracks


async def seed(state: SandboxState, superuser_dsn: str, veza_db_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute(f"CREATE ROLE veza_user LOGIN PASSWORD '{state.app_password}'")
        await conn.execute("CREATE DATABASE veza_db OWNER veza_user")
    async with await psycopg.AsyncConnection.connect(veza_db_dsn, autocommit=True) as conn:
        await conn.execute("CREATE EXTENSION pg_stat_statements")
        await conn.execute("CREATE EXTENSION pg_prewarm")
        await conn.execute("SET ROLE veza_user")
        await conn.execute(Path(__file__).with_name("schema.sql").read_text().replace(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", ""))
        await conn.execute("INSERT INTO tracks (title, artist, duration_s, stream_name) "
                           "VALUES ('Veza Canary', 'Veza', %s, %s)", (DURATION_S, CANARY_NAME))
        for username, email, role, password in (("synthetic", SYNTHETIC_EMAIL, "user", state.user_password),
                                                ("admin", ADMIN_EMAIL, "admin", state.admin_password)):
            salt = secrets.token_hex(8)
            await conn.execute("INSERT INTO users (username, email, role, password_hash, salt) "
                               "VALUES (%s, %s, %s, %s, %s)", (username, email, role, password_hash(password, salt), salt))
        await conn.execute("RESET ROLE")
        # What production grants the suite: pg_monitor (statistics, activity), a connection limit,
        # and a read on the deployed variant's refresh_tokens. Never a superuser.
        await conn.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{state.monitor_password}' "
                           f"CONNECTION LIMIT {MONITOR_CONNECTIONS} IN ROLE pg_monitor")
        await conn.execute(f"GRANT SELECT ON refresh_tokens TO {MONITOR_ROLE}")
        await conn.execute(f"CREATE ROLE {EXPORTER_ROLE} LOGIN PASSWORD '{state.exporter_password}' "
                           f"CONNECTION LIMIT {EXPORTER_CONNECTIONS} IN ROLE pg_monitor")
        await conn.execute("SELECT pg_stat_statements_reset()")
