"""The front door of the public code's history (D3): one HAProxy, plain HTTP, paths to the servers, and a
rate rule that drops the connection of an address over 20 requests in 10 s (no answer, not a 429).

Its configuration is the historical one (configs/haproxy.cfg up to commit 792bd4c): `/api` to the backend
(health-checked on /api/health), `/ws` to the backend's own chat, `/chat-api` to the chat server (the
prefix stripped), `/stream` to simple_stream_server; nothing else is routed. The rule's window is on the
sandbox's time scale (limits.TIME_SCALE), as the backend's own limits are.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import SetupError
from .limits import TIME_SCALE
from .processes import LOOPBACK, _stop, find_binary, free_port, wait_for_port

# HAProxy's own address toward the backend (its health checks come from there; proxied requests name their
# client in X-Forwarded-For): not the suite's, whose rate limit (B11) its checks must not share, as in production.
OWN_ADDRESS = "127.0.0.2"
D3_LIMIT, D3_WINDOW_S = 20, 10.0  # `http-request reject if { sc_http_req_rate(0) gt 20 }` over http_req_rate(10s)


class HAProxy:
    def __init__(self, workdir: Path, backend: int, chat: int, stream: int):
        self.binary = find_binary("haproxy", "Install it: `make setup` (apt-get install haproxy)")
        self.folder = workdir / "haproxy"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.upstreams = {"backend": backend, "chat": chat, "stream": stream}
        self.port, self.stats_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def stats_url(self) -> str:
        """HAProxy's own statistics (CSV with `;csv`): the front end's `dreq` counts the dropped requests."""
        return f"http://{LOOPBACK}:{self.stats_port}/stats"

    def _config(self) -> str:
        u, window_ms = self.upstreams, round(1000 * D3_WINDOW_S / TIME_SCALE)
        return f"""global
    maxconn 1000
    pidfile {self.folder / 'haproxy.pid'}
defaults
    mode http
    option forwardfor
    option http-server-close
    timeout connect 5000ms
    timeout client 50000ms
    timeout server 50000ms
    timeout http-request 15s
    timeout http-keep-alive 15s
listen stats
    bind {LOOPBACK}:{self.stats_port}
    stats enable
    stats uri /stats
frontend veza_main
    bind {LOOPBACK}:{self.port}
    stick-table type ip size 100k expire 30s store http_req_rate({window_ms}ms)
    http-request track-sc0 src
    http-request reject if {{ sc_http_req_rate(0) gt {D3_LIMIT} }}
    acl is_api path_beg /api
    acl is_chat_api path_beg /chat-api
    acl is_stream_api path_beg /stream
    acl is_websocket_chat path_beg /ws
    use_backend veza_websocket if is_websocket_chat
    use_backend veza_api if is_api
    use_backend veza_chat if is_chat_api
    use_backend veza_stream if is_stream_api
backend veza_websocket
    timeout server 3600s
    timeout tunnel 3600s
    server websocket1 {LOOPBACK}:{u['backend']}
backend veza_api
    option httpchk GET /api/health
    http-check expect status 200
    timeout server 30s
    server api1 {LOOPBACK}:{u['backend']} check inter 5s fall 2 rise 3 source {OWN_ADDRESS}
backend veza_chat
    http-request replace-path ^/chat-api/(.*) /\\1
    timeout server 3600s
    timeout tunnel 3600s
    server chat1 {LOOPBACK}:{u['chat']}
backend veza_stream
    timeout server 7200s
    server stream1 {LOOPBACK}:{u['stream']}
"""

    def start(self) -> None:
        conf = self.folder / "haproxy.cfg"
        conf.write_text(self._config())
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(conf)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise SetupError(f"sandbox: haproxy refused its configuration: {check.stderr.strip()[-300:]}")
        self.proc = subprocess.Popen([self.binary, "-db", "-f", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in (self.port, self.stats_port):
            wait_for_port(port, 15, self.proc, "haproxy")

    def stop(self) -> None:
        _stop(self.proc)
