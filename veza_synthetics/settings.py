"""A profile's sections, one frozen dataclass each: every setting with its default (and so its type), and
the comment that says what it is for. profile_model.py assembles them into the Profile."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import __version__


@dataclass(frozen=True)
class Backend:
    url: str = ""  # the API's base address, as clients reach it ("https://api.veza.example")
    health_path: str = "/health"  # the health route ("/api/health" for the public dev server, B1)
    health_status_path: str = "status"  # where the health answer says "healthy" (a dotted JSON path)
    ready_path: str = "/ready"          # "": the server has none (Veza's dev server, B2): not measured, said so
    # The API's search, timed by db.degraded_performance; "": none worth timing (the public code's search is
    # a stub that never reads the database, B13): not measured, said so.
    search_path: str = "/api/v1/search"
    search_query: str = "Track {n}"  # {n}: the call's number; the sandbox's titles are "Track N ..."
    search_results_path: str = "data"  # the list of results in the answer (a dotted JSON path)
    search_min_results: int = 0      # results each search must return (0: not judged)


@dataclass(frozen=True)
class Chat:
    url: str = ""  # the chat's WebSocket address ("wss://chat.veza.example/chat")
    health_url: str = ""  # the chat server's HTTP health ("https://chat.veza.example/health"); "": not checked
    health_status_path: str = "status"  # "data.status" for the public code's chat server (C4)
    auth: str = "token"  # how the socket is authenticated: "token" (?token= with the synthetic user's JWT)
    broadcast: bool = True  # a member of a conversation receives what another sends (ws.lost_messages judges it)
    # Sending chat messages is a write. A read-only profile sends none unless it names a conversation
    # kept for the synthetic account, where its messages may land (an explicit opt-in).
    synthetic_conversation: str = ""
    # The client's own heartbeat while idle, in seconds; 0 = none, as a browser on Veza's web app (it
    # answers the server's 30 s pings and sends none). An application {"type": "Ping"}, or a ping frame
    # where the chat answers no application Ping.
    client_heartbeat_s: float = 0.0
    # What the chat answers, as settings (the backend's own /ws/chat answers none of the contract's, C6):
    confirmations: bool = True          # ActionConfirmed after connecting, joining and sending
    app_ping: bool = True               # a Pong to the application {"type": "Ping"}
    delivered_type: str = "NewMessage"  # the frame a member receives a message as ("SendMessage" where the chat
                                        # re-broadcasts the sender's frame as it came, C6)
    rooms: bool = True                  # false: every connected client gets every frame, so a synthetic
                                        # conversation confines nothing and sending is a write to everyone (C6)


@dataclass(frozen=True)
class Stream:
    url: str = ""  # the stream server's base address ("https://stream.veza.example")
    # Who signs the canary's URL: the backend (its stream-url route) unless the profile holds the stream
    # server's secret; false: the server checks no signature (the public simple_stream_server, S8).
    signed: bool = True
    secret: str = field(default="", repr=False)  # the stream server's SECRET_KEY, where the suite signs (${VAR})
    canary_track_id: int = 0  # the canary's track id, for its metadata and the backend's stream-url route
    canary: str = "canary"              # the stream's name ("canary.mp3" where names carry the extension, S8)
    # The canary's length in seconds, known to the team that put it there: where neither the track's metadata nor
    # the stream server says it (the public stream servers do not, S6, S8), a truncated file is only seen by it.
    # 0: the metadata's or the server's, where one says it.
    canary_duration_s: float = 0.0
    health_path: str = "/health/detailed"  # "/health" where there is no detailed health (S8)
    health_status_path: str = "status"  # where the stream's health answer says "healthy" (a dotted JSON path)
    quality: str = "medium"  # the quality the canary is played at (the player's default)
    content_type_required: bool = True  # False for the variant that omits it


@dataclass(frozen=True)
class Postgres:
    host: str = ""  # direct access to Veza's database (read-only, pg_monitor); "": through its exporter only
    port: int = 5432  # its port (a pooler's, where the platform has one)
    dbname: str = "veza_db"  # the platform's database
    user: str = ""  # a pg_monitor role of the suite's own, never the application's
    password: str = field(default="", repr=False)  # that role's password (${VAR})
    sslmode: str = "prefer"  # libpq's sslmode ("verify-full" with a CA the machine trusts)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class Redis:
    url: str = ""  # direct access to Veza's Redis ("redis://redis.internal:6379/0"); "": through its exporter only
    password: str = field(default="", repr=False)  # its password (${VAR}); the suite sends no write command


@dataclass(frozen=True)
class Prometheus:
    url: str = ""  # the platform's Prometheus ("https://prometheus.internal:9090"); "": the checks that read it say so
    rate_window: str = "5m"  # the window of every rate() the checks ask (a Prometheus duration)
    jobs: str = "veza-backend,veza-chat,veza-stream,node,postgres,redis"  # Veza's scrape jobs (comma-separated)
    rule_groups: str = "veza_alerts"                         # the rule groups that must be loaded
    judge_real_traffic: bool = False  # judge the platform's own 5xx ratio and p95 over rate_window
    scrape_interval_s: float = 30.0   # the exporters' scrape interval: a check waits up to twice it for fresh figures
    # Which series are whose: PromQL label matchers for each exporter's series, and a regex of the
    # mountpoints whose disk is judged (every mount node_exporter reports, by default).
    node_selector: str = 'job="node"'
    postgres_selector: str = 'job="postgres"'  # postgres_exporter's series
    redis_selector: str = 'job="redis"'  # redis_exporter's series
    mountpoints: str = ".*"  # the mountpoints whose disk is judged (a regex)

    def selector(self, exporter: str) -> str:
        """The label matchers of one exporter's series: "node", "postgres" or "redis"."""
        return {"node": self.node_selector, "postgres": self.postgres_selector, "redis": self.redis_selector}[exporter]

    def job_names(self) -> set[str]:
        return {j.strip() for j in self.jobs.split(",") if j.strip()}

    def group_names(self) -> set[str]:
        return {g.strip() for g in self.rule_groups.split(",") if g.strip()}


@dataclass(frozen=True)
class Accounts:
    user_email: str = ""  # the synthetic account every check logs in as (a user, never an admin)
    user_password: str = field(default="", repr=False)  # its password (${VAR})
    admin_email: str = ""  # an admin account, for the checks that need one; "": they say so
    admin_password: str = field(default="", repr=False)  # its password (${VAR})


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 3.0  # a TCP and TLS connection's bound
    request_s: float = 5.0  # one API request's bound, its answer included
    stream_read_s: float = 10.0  # the longest a player waits for the stream's next bytes
    stream_s: float = 90.0  # the whole canary download's bound
    ws_s: float = 5.0  # the WebSocket handshake's bound, and each frame awaited
    # The whole run's deadline (a serve round's: its interval, if shorter). The HTTP sample is planned within it
    # at sampling.max_rps, every call possibly confirmed once, and stops at it: a check says what it measured,
    # never nothing. 15 minutes: half of the nightly job's 30.
    run_s: float = 900.0


@dataclass(frozen=True)
class Holds:
    session_s: float = 5.0  # how long auth.session_lost holds a fresh session before asking with it again
    ws_idle_s: float = 60.0  # how long ws.disconnects keeps a socket idle (longer when the front door's timeout is)
    # The front door's read timeout on the chat (nginx's proxy_read_timeout, 60 s by default and in the public
    # Veza's deploy script; HAProxy's timeout tunnel); 0: none to outlast. The idle hold outlasts it by a margin:
    # a hold equal to it is a coin flip between a true disconnect and a pass.
    front_door_read_timeout_s: float = 60.0

    @property
    def ws_hold_s(self) -> float:
        """How long ws.disconnects stays idle: ws_idle_s, or longer than the front door's read timeout."""
        door = self.front_door_read_timeout_s
        return max(self.ws_idle_s, door + max(0.1 * door, 1.0)) if door > 0 else self.ws_idle_s


@dataclass(frozen=True)
class Sampling:
    requests: int = 80      # 20 per sampled endpoint: the fewest a p95 is computed from
    concurrency: int = 2    # in flight at once: low enough that the sample never queues behind itself
    # The run's pace toward the API, every request counted (sample, checks, logins): 24 a minute, under the
    # 30 a minute Veza's production server allows an address (B12) and its dev server's 100 (B11).
    max_rps: float = 0.4
    chat_messages: int = 50  # messages ws.lost_messages sends A to B (a write: where a conversation allows it)
    db_connects: int = 20   # p95 needs 20 or more values (else the max is judged, named so)
    search_calls: int = 20  # searches db.degraded_performance times
    auth_calls: int = 10  # `me` calls of auth.http_401_403: enough to reach every instance behind a balancer


@dataclass(frozen=True)
class Auth:
    expires_in_s: int = 0  # the access token's lifetime the platform promises; 0: the one its login says
    session_store: str = "redis"  # where auth.session_lost finds a session: "redis" (the contract), "postgres" (B9)
    # An admin-only route: a non-admin's token must get 403 there (the public code has no /admin/stats and
    # guards /api/v1/admin/dashboard, B7).
    forbidden_path: str = "/api/v1/admin/stats"
    # Logins a run may make: the synthetic account once, the admin account once. Veza's production server
    # allows 3 logins per 15 minutes per address (B12) and keeps one session per account (B10).
    max_logins_per_run: int = 2


@dataclass(frozen=True)
class Tracing:
    """The headers that make the suite's requests findable on the platform (probes/identity.py): a W3C
    traceparent, a request id, a User-Agent naming the suite. A front door that strips or refuses unknown
    headers is told here to get none."""
    traceparent: bool = True  # a W3C traceparent on every request (one trace per check attempt)
    request_id_header: str = "X-Request-ID"  # "": send none
    user_agent: str = f"veza-synthetics/{__version__} (synthetic monitoring)"  # "": the HTTP client's own
    # Each check attempt as OpenTelemetry spans (tracing.py), to an OTLP/HTTP collector: its base address
    # ("http://collector:4318"; /v1/traces is appended), "" for none (the default). Its headers (a token
    # through ${VAR}) are secrets: masked everywhere. A dead collector never slows a run: each export is bounded.
    otlp_endpoint: str = ""
    otlp_headers: dict[str, str] = field(default_factory=dict)  # the collector's headers ({Authorization = "..."})
    export_timeout_s: float = 2.0  # each export's bound


@dataclass(frozen=True)
class Links:
    """Templates from a verdict to the platform's tools (links.py): {trace_id}; {request_id}, {trace_id},
    {start}, {end}; a Prometheus (or Grafana) graph address, the Prometheus URL's /graph when empty."""
    trace: str = ""       # "https://jaeger.example/trace/{trace_id}"
    logs: str = ""        # "https://kibana.example/app/discover#/?_a=(query:'{request_id}')&from={start}&to={end}"
    prometheus: str = ""  # a graph page taking ?g0.expr= ("https://prometheus.example/graph"); "": the Prometheus URL's


@dataclass(frozen=True)
class Serve:
    """`veza-synth serve` (serve/). Every check runs every `interval_s`; `intervals` sets another per
    category or check id (`health = 60`, `"auth.jwt_expired" = 3600`). Checks due together share one round
    (one session per account, the run's pace). The defaults: health and performance every minute (the HTTP sample,
    judged over serve.window_s), the streaming and chat checks, the sessions and the database's connections every
    2 minutes (almost no API request of their own), auth.http_401_403 with them (serve.auth_calls `me` calls,
    not the run's ten), the rest every 15 minutes. A check that failed runs again after `retry_interval_s`: that
    round confirms it, and pages. docs/ways/serve.md: what each default costs, and how fast each pages."""
    interval_s: float = 900.0  # seconds between a check's rounds
    intervals: dict[str, float] = field(default_factory=lambda: {  # by category or check id
        "health": 60.0, "performance": 60.0, "auth": 120.0, "streaming": 120.0, "websocket": 120.0,
        "db.connection_timeout": 120.0})
    # A check whose last round failed runs again this soon (if sooner than its interval), as Uptime Kuma's retry
    # interval: the page (two failed rounds) comes a retry after the first failure, not an interval after it.
    retry_interval_s: float = 30.0
    # `me` calls of auth.http_401_403 in a round (a run makes sampling.auth_calls): the rounds' HTTP samples, judged
    # together over window_s, are what reaches every instance behind a balancer; ten a round would starve them.
    auth_calls: int = 2
    # The performance checks judge the requests of serve's small samples over this window (probes/window.py), at
    # most the sample's size (sampling.requests): a round affords a few within the request budget.
    window_s: float = 600.0
    listen: str = "127.0.0.1:9464"  # /metrics, /probe, /report, /-/healthy, /-/ready
    # What the prober may spend on the platform, whoever asks (rounds, /probe, a restart: the ledger is kept beside
    # the history), under what Veza's production server allows an address (B12: 3 logins per 15 minutes, 8
    # refreshes an hour, 30 requests a minute): a third of its logins and requests, 5 of its 8 refreshes. Requests
    # wait for the budget as for sampling.max_rps; a login or a refresh over it is not made, and said so.
    max_logins: int = 1
    login_window_s: float = 900.0  # the logins' window
    max_refreshes: int = 5  # refreshes of the held sessions per window
    refresh_window_s: float = 3600.0  # the refreshes' window
    max_requests: int = 10  # API requests per window
    request_window_s: float = 60.0  # the requests' window
    report: str = "loopback"  # /report answers "on": anyone who reaches listen; "loopback": local clients; "off"
    # The prober's address as the on-call reaches it, for the alert's links to a check's /report entry and runbook
    # ("https://synth.example:9464"); "": http:// and the address it listens on.
    external_url: str = ""


@dataclass(frozen=True)
class Tls:
    """Verification stays on; a private CA (a front door's own) is trusted by naming its file."""
    ca_file: str = ""  # a PEM CA trusted for the profile's own endpoints only (beside the public CAs)


@dataclass(frozen=True)
class History:
    """Run-to-run memory (history.py): runs kept per env and location, and what flapping means."""
    keep: int = 30          # runs kept per env and location
    flap_window: int = 10   # runs looked at for flapping
    flap_changes: int = 3   # changes between failing and not in that window that make a check flap


@dataclass(frozen=True)
class SandboxAdmin:
    admin_url: str = ""  # the sandbox's admin API (fault switches), set by the sandbox's own profiles only
