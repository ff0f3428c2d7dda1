"""`--web.config.file`: TLS and basic auth for /metrics, /probe and /report, in the format of Prometheus's
exporter-toolkit (the one blackbox_exporter and every exporter built on it read), so a team's existing file
and scrape configuration work unchanged:

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: clients-ca.crt
    basic_auth_users:
      prometheus: $2y$10$...   # a bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n'), never a password

Relative paths are read from the file's folder. Bad input is one error naming the setting."""
from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from ..errors import SetupError

CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "RequestClientCert": ssl.CERT_OPTIONAL,
               "RequireAnyClientCert": ssl.CERT_REQUIRED, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
OPTION = "--web.config.file"


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    _known: dict[tuple[str, bytes], bool] = field(default_factory=dict)  # checked before: bcrypt costs ~50 ms
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self, authorization: str | None) -> bool:
        """Whether a request's Authorization header passes (always, where no users are declared)."""
        if not self.users:
            return True
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        with self._lock:
            known = self._known.get(key)
        if known is None:
            known = bcrypt.checkpw(password.encode(), hashed)
            with self._lock:
                self._known[key] = known
        return known


def load(path: str) -> WebConfig:
    """The file's TLS context and users; SetupError naming the setting at fault."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except OSError as exc:
        raise SetupError(f"{OPTION} {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SetupError(f"{OPTION} {path}: not YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SetupError(f"{OPTION} {path}: must be a mapping (tls_server_config, basic_auth_users)")
    unknown = sorted(set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"})
    if unknown:
        raise SetupError(f"{OPTION} {path}: unknown section(s) {', '.join(unknown)}")
    return WebConfig(_tls(data.get("tls_server_config"), source), _users(data.get("basic_auth_users"), source))


def _tls(section: Any, source: Path) -> ssl.SSLContext | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise SetupError(f"{OPTION} {source}: 'tls_server_config' must be a mapping")

    def file(name: str) -> str:
        value = section.get(name)
        if not isinstance(value, str) or not value:
            raise SetupError(f"{OPTION} {source}: 'tls_server_config.{name}' must name a file")
        resolved = (source.parent / value) if not Path(value).is_absolute() else Path(value)
        if not resolved.is_file():
            raise SetupError(f"{OPTION} {source}: 'tls_server_config.{name}' {value}: no such file")
        return str(resolved)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(file("cert_file"), file("key_file"))
    except ssl.SSLError as exc:
        raise SetupError(f"{OPTION} {source}: 'tls_server_config.cert_file'/'key_file' do not make a key pair "
                         f"({exc.reason})") from None
    auth_type = section.get("client_auth_type", "NoClientCert")
    if auth_type not in CLIENT_AUTH:
        raise SetupError(f"{OPTION} {source}: 'tls_server_config.client_auth_type' must be one of "
                         f"{', '.join(CLIENT_AUTH)}, not {auth_type!r}")
    context.verify_mode = CLIENT_AUTH[auth_type]
    if auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        try:
            context.load_verify_locations(cafile=file("client_ca_file"))
        except ssl.SSLError as exc:
            raise SetupError(f"{OPTION} {source}: 'tls_server_config.client_ca_file' is no CA ({exc.reason})") from None
    return context


def _users(section: Any, source: Path) -> dict[str, bytes]:
    if section is None:
        return {}
    if not isinstance(section, dict) or not section:
        raise SetupError(f"{OPTION} {source}: 'basic_auth_users' must map user names to bcrypt hashes")
    users = {}
    for user, hashed in section.items():
        if not isinstance(hashed, str) or not hashed.startswith(BCRYPT_PREFIXES) or len(hashed) != 60:
            raise SetupError(f"{OPTION} {source}: 'basic_auth_users.{user}' must be a bcrypt hash ($2y$...), "
                             "never a password")
        users[str(user)] = hashed.encode()
    return users
