"""The canary the stream checks play: a signed URL for the profile's track, that track's metadata, and
one timed download of it (analysed once for the three stream checks).

Signed by the backend (its stream-url route, as a player gets one), or here where the profile holds
the stream server's secret (the public code has no such route, B13), or not at all where the stream
server checks no signature (its simple_stream_server, S8).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from .probes import Result, auth, http, stream
from .probes.transport import Transport
from .settings import Stream, Timeouts

SIGNED_FOR_S = 300  # the lifetime of a URL signed here
CONTRACT_KBPS = {"high": 320, "medium": 192, "low": 128, "mobile": 96}
SIGNED_HERE = "the profile's stream secret"
UNSIGNED = "nobody (stream.signed = false)"


@dataclass(frozen=True)
class Canary:
    url: str          # signed; never reported (redact masks its signature)
    name: str         # the stream's name: the track's stream_name
    duration_s: float  # from the same track's metadata, or the stream server's /info (0: unknown)
    signed_by: str
    title: str = ""


@dataclass(frozen=True)
class Player:
    """What playing the canary takes: the way to the platform, the backend that signs, the stream settings, the
    timeouts, and the run's token (a thread's login failure to say where there is none)."""
    transport: Transport
    backend_url: str
    stream: Stream
    timeouts: Timeouts
    token: Callable[[], str | None]
    login_failure: Callable[[], str]


def _declared(cfg: Stream, canary: Canary) -> tuple[Canary, str]:
    """The canary with the length the profile declares (stream.canary_duration_s) where it declares one, and
    where the length comes from."""
    if cfg.canary_duration_s > 0:
        return replace(canary, duration_s=cfg.canary_duration_s), "stream.canary_duration_s"
    return canary, "the platform" if canary.duration_s else "nowhere"


def signed_canary(player: Player) -> Canary | Result:
    """The canary to stream: signed by the backend for the profile's track (its metadata from that
    same track), or here where the profile holds the stream secret, or unsigned. A Result on failure."""
    cfg, base, timeout, way = player.stream, player.backend_url, player.timeouts.request_s, player.transport
    if cfg.secret or not cfg.signed:
        return _signed_here(way, cfg, timeout)
    token = player.token()
    if token is None:
        return Result("stream", base, error=f"no token to ask for a signed stream URL: {player.login_failure()}")
    track = auth.request(way, base, "GET", f"/api/v1/tracks/{cfg.canary_track_id}", timeout, token=token)
    signed = auth.request(way, base, "GET", f"/api/v1/tracks/{cfg.canary_track_id}/stream-url?quality={cfg.quality}",
                          timeout, token=token)
    for answer in (track, signed):
        if answer.error or answer.measurements.get("status") != 200:
            return Result("stream", answer.target, answer.measurements, answer.evidence,
                          error=answer.error or f"bad response: {answer.target} answered "
                                                f"{answer.measurements.get('status')}: {answer.evidence.get('reason')}")
    meta, url = track.body.get("data") or {}, (signed.body.get("data") or {}).get("url")
    name = str(meta.get("stream_name", ""))
    if not isinstance(url, str) or not name or urlsplit(url).path.rsplit("/", 1)[-1] != name:
        return Result("stream", signed.target, error=f"bad response: the signed URL does not stream track "
                                                     f"{cfg.canary_track_id}'s audio {name!r}")
    return Canary(url, name, float(meta.get("duration_s") or 0.0), "the backend", str(meta.get("title", "")))


def _signed_here(transport: Transport, cfg: Stream, timeout: float) -> Canary:
    """The canary's URL made here (signed with the profile's secret, or unsigned), its duration from the
    stream server's /info where that says one."""
    query = f"quality={cfg.quality}"
    if cfg.signed:
        expires = int(time.time()) + SIGNED_FOR_S
        sig = hmac.new(cfg.secret.encode(), f"{cfg.canary}:{expires}".encode(), hashlib.sha256).hexdigest()
        query = f"expires={expires}&sig={sig}&{query}"
    info = http.fetch(transport, f"{cfg.url}/info/{cfg.canary}", timeout)
    body = info.evidence.get("body") if not info.error else None
    duration = float(body["duration_s"]) if isinstance(body, dict) and "duration_s" in body else 0.0
    return Canary(f"{cfg.url}/stream/{cfg.canary}?{query}", cfg.canary, duration,
                  SIGNED_HERE if cfg.signed else UNSIGNED)


def played(player: Player) -> Result:
    """The canary downloaded as a player does and analysed; a refusal of a URL signed here names the
    secret and the clock to look at."""
    found = signed_canary(player)
    if isinstance(found, Result):
        found.error = f"could not get a signed stream URL: {found.error}"
        return found
    canary, length_from = _declared(player.stream, found)
    t = player.timeouts
    dl = stream.download(player.transport, canary.url, t.connect_s, t.stream_read_s, t.stream_s)
    result = stream.analyse(dl, canary.url, CONTRACT_KBPS[player.stream.quality], canary.duration_s)
    result.evidence["canary"] = {"track_id": player.stream.canary_track_id, "name": canary.name,
                                 "title": canary.title, "signed_by": canary.signed_by, "duration_from": length_from}
    if result.measurements.get("status") == 403 and canary.signed_by == SIGNED_HERE:
        result.error = f"{result.error} (signed here with stream.secret: is it the stream server's secret key, " \
                       "and is this machine's clock right?)"
    return result
