"""Production's front door: nginx terminating TLS in front of the backend, the chat and the stream.

As a production Veza is served: a CA of the sandbox's own signs the server certificate
(clients verify it: the profile names the CA file), two backend instances behind an
upstream, WebSocket upgrade with a proxy read timeout, and a per-client rate limit on the
API answering 429 with Retry-After. The backend's own chat (/ws/chat, C6) goes to
the first instance only, its hub being in one process. Faults rewrite the configuration and reload nginx, as
an operator's change would.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import SetupError
from .processes import LOOPBACK, _stop, find_binary, free_port, wait_for_port

CERT_DAYS = 90
RELOAD_SETTLE_S = 0.5  # new workers take over; old ones finish their connections


class CertificateAuthority:
    """A throwaway CA and the server certificates it signs for 127.0.0.1 / localhost."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        # A name of its own per run: a client trusting two sandboxes' CAs must not mistake one for the other.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"veza-sandbox CA {secrets.token_hex(4)}")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, days: float) -> tuple[Path, Path]:
        """A server certificate valid for `days` from now; (certificate, key) files."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veza.sandbox")]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                                                            x509.DNSName("localhost")]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_file, key_file = self.folder / "server.pem", self.folder / "server.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                              + self.cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        return cert_file, key_file


@dataclass
class DoorSettings:
    """What the faults change: the chat's proxy read timeout and the API's per-client rate."""
    chat_read_timeout: str = "60s"    # as the public Veza deploy script sets it
    api_rate: str = "600r/s"          # well above the suite's own peak (about 400 requests/s on loopback)
    api_burst: int = 400


class Nginx:
    """A private nginx (Debian's package; its default site is neither needed nor touched)."""

    def __init__(self, workdir: Path, backends: list[int], chat: int, stream: int, deny_metrics: bool = False):
        self.deny_metrics = deny_metrics  # as the public deploy script: /metrics only from inside the network
        self.binary = find_binary("nginx", "Install it: `make setup` (apt-get install nginx)")
        self.prefix = workdir / "nginx"
        for sub in ("logs", "temp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority(workdir / "tls")
        self.cert, self.key = self.ca.issue(CERT_DAYS)
        self.backends, self.upstreams = backends, {"chat": chat, "stream": stream}
        self.ports = {"backend": free_port(), "chat": free_port(), "stream": free_port()}
        self.settings = DoorSettings()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, service: str, scheme: str = "https") -> str:
        return f"{scheme}://{LOOPBACK}:{self.ports[service]}"

    def _config(self) -> str:
        s, p, temp = self.settings, self.ports, self.prefix / "temp"
        backends = "\n".join(f"    server {LOOPBACK}:{port} max_fails=0;" for port in self.backends)
        tls = (f"ssl_certificate {self.cert}; ssl_certificate_key {self.key}; "
               "ssl_protocols TLSv1.2 TLSv1.3;")
        return f"""worker_processes 1;
pid {self.prefix / 'nginx.pid'};
error_log {self.prefix / 'logs' / 'error.log'} warn;
user root;
events {{ worker_connections 1024; }}
http {{
  log_format veza '$remote_addr [$time_iso8601] "$request" $status $request_time '
                  'rid=$http_x_request_id traceparent=$http_traceparent ua="$http_user_agent"';
  access_log {self.prefix / 'logs' / 'access.log'} veza;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  proxy_http_version 1.1;
  proxy_set_header Host $host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto https;
  proxy_connect_timeout 60s; proxy_send_timeout 60s; proxy_read_timeout 60s;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  limit_req_zone $binary_remote_addr zone=api:10m rate={s.api_rate};
  limit_req_status 429;
  upstream veza_backend {{
{backends}
    keepalive 16;
  }}
  server {{
    listen {LOOPBACK}:{p['backend']} ssl; {tls}
    {"location /metrics { deny all; }" if self.deny_metrics else ""}
    location /ws/chat {{
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout {s.chat_read_timeout};
      proxy_pass http://{LOOPBACK}:{self.backends[0]};
    }}
    location / {{
      limit_req zone=api burst={s.api_burst} nodelay;
      proxy_set_header Connection "";
      proxy_next_upstream off;
      proxy_pass http://veza_backend;
    }}
    error_page 429 = @throttled;
    location @throttled {{
      add_header Retry-After 1 always;
      default_type application/json;
      return 429 '{{"error": "rate limited", "retry_after_s": 1}}';
    }}
  }}
  server {{
    listen {LOOPBACK}:{p['chat']} ssl; {tls}
    location / {{
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout {s.chat_read_timeout};
      proxy_pass http://{LOOPBACK}:{self.upstreams['chat']};
    }}
  }}
  server {{
    listen {LOOPBACK}:{p['stream']} ssl; {tls}
    location / {{
      proxy_buffering off;
      proxy_set_header Connection "";
      proxy_pass http://{LOOPBACK}:{self.upstreams['stream']};
    }}
  }}
}}
"""

    def _write(self) -> Path:
        conf = self.prefix / "nginx.conf"
        conf.write_text(self._config())
        check = subprocess.run([self.binary, "-t", "-q", "-p", str(self.prefix), "-c", str(conf)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise SetupError(f"sandbox: nginx refused its configuration: {check.stderr.strip()[-300:]}")
        return conf

    def start(self) -> None:
        conf = self._write()
        self.proc = subprocess.Popen([self.binary, "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in self.ports.values():
            wait_for_port(port, 15, self.proc, "nginx")

    def reload(self, **changes: object) -> None:
        """Apply setting changes (or a new certificate) the way an operator does: rewrite, HUP."""
        for name, value in changes.items():
            setattr(self.settings, name, value)
        self._write()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGHUP)

    def reissue(self, days: float) -> None:
        self.cert, self.key = self.ca.issue(days)
        self.reload()

    def stop(self) -> None:
        _stop(self.proc)
