"""Stream probe: one timed download of the canary, then decoding, silence and player-buffer analysis.

The player simulation runs over the recorded arrival times (as hls.js, Shaka, ExoPlayer
buffer), so judging a track needs no track-long wait.
"""
from __future__ import annotations

import io
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from . import Result, describe, identity, refusal
from .transport import Transport

SILENCE_DBFS = -70.0  # digital silence and decoder gaps; music's quiet passages sit far above (-54 dBFS in the canary)
CLIP_LEVEL = 0.95     # -0.45 dBFS: hard clipping leaves decoded samples here, a master's peaks only graze it
WINDOW_MS = 20
EDGE_S = 0.5


@dataclass
class Download:
    status: int | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    content_length: int | None = None
    body: bytes = b""
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (seconds since request, wire bytes so far)
    error: str | None = None
    encoding: str = ""  # the Content-Encoding the server used although the player asked for identity
    wire_bytes: int = 0  # bytes received on the wire (the body as sent, before any decompression)
    request: dict[str, str] = field(default_factory=dict)  # the download's ids (identity.py)


def download(transport: Transport, url: str, connect_s: float, read_s: float, max_s: float) -> Download:
    """GET the stream, timing every chunk. A player waits read_s for each byte (a slow start is a
    measurement, not an error); max_s bounds the whole download."""
    out = Download()
    timeout_s = read_s
    chunks = []
    started, started_ns = time.perf_counter(), time.time_ns()
    try:
        marks, sent = transport.marks("GET stream")
        with httpx.Client(timeout=httpx.Timeout(read_s, connect=connect_s), verify=transport.tls(url)) as client, \
                client.stream("GET", url, headers={**marks, "Accept-Encoding": "identity"}) as response:  # a player's
            out.request = transport.ids(sent, response.headers, response.status_code)
            out.status = response.status_code
            out.encoding = response.headers.get("content-encoding", "").strip().lower().replace("identity", "")
            out.headers = {k: v for k, v in response.headers.items()
                           if k in ("content-type", "content-length", "accept-ranges", "content-encoding")}
            if "content-length" in response.headers:
                out.content_length = int(response.headers["content-length"])
            received = 0
            for chunk in response.iter_raw():
                received += len(chunk)
                chunks.append(chunk)
                out.arrivals.append((time.perf_counter() - started, received))
                if time.perf_counter() - started > max_s:
                    out.error = f"download stopped after {max_s:g} s (stream_s budget)"
                    break
    except httpx.HTTPError as exc:
        out.error = "connection closed mid-body: " + describe(exc, timeout_s) if chunks else describe(exc, timeout_s)
    identity.span("download", started_ns, out.error or "", {"veza.bytes": sum(len(c) for c in chunks)})
    out.wire_bytes = sum(len(c) for c in chunks)
    out.body = _decompressed(b"".join(chunks), out.encoding)
    return out


def _decompressed(raw: bytes, encoding: str) -> bytes:
    """The audio itself from a body the server compressed (gzip or deflate; a cut stream gives what it
    holds); bytes of another encoding are left as they are, and fail to decode as audio."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding)
    if wbits is None:
        return raw
    try:
        return zlib.decompressobj(wbits).decompress(raw)
    except zlib.error:
        return raw


def _refusal(excerpt: str) -> str:
    """A refusal's text: a JSON body's error or message, or the plain text the public stream_server sends
    (S2: "Invalid signature")."""
    try:
        return refusal(json.loads(excerpt)) or ""
    except ValueError:
        return excerpt.strip().splitlines()[0][:120] if excerpt.strip() else ""


def decode(mp3: bytes) -> tuple[np.ndarray | None, int, str | None]:
    try:
        pcm, rate = sf.read(io.BytesIO(mp3), dtype="float32", always_2d=True)
        return pcm, rate, None
    except Exception as exc:  # libsndfile's errors are the measurement ("decode error")
        return None, 0, f"{type(exc).__name__}: {exc}"


def silence_gaps(pcm: np.ndarray, rate: int, level_dbfs: float = SILENCE_DBFS, edge_s: float = EDGE_S) -> list[dict[str, Any]]:
    """Runs of 20 ms windows whose RMS is below level_dbfs, away from the edges."""
    window = int(rate * WINDOW_MS / 1000)
    frames = len(pcm) // window
    if frames == 0:
        return []
    mono = pcm[: frames * window].mean(axis=1).reshape(frames, window)
    rms = np.sqrt((mono.astype(np.float64) ** 2).mean(axis=1))
    silent = 20 * np.log10(np.maximum(rms, 1e-12)) < level_dbfs
    gaps, start = [], None
    edge = int(edge_s * 1000 / WINDOW_MS)
    for i, quiet in enumerate([*silent, False]):
        if quiet and start is None:
            start = i
        elif not quiet and start is not None:
            if start >= edge and i <= frames - edge:
                gaps.append({"at_s": round(start * WINDOW_MS / 1000, 2), "ms": (i - start) * WINDOW_MS})
            start = None
    return gaps


def simulate_player(arrivals: list[tuple[float, float]], total_media_s: float, start_goal_s: float = 2.0,
                    resume_goal_s: float = 2.0) -> dict[str, Any]:
    """Replay (wall time, media seconds buffered) through a player buffer: startup, stalls, rebuffer ratio."""
    startup, playhead, stalls, timeline = None, 0.0, [], []
    stall_start, t_prev, buffered_prev = None, 0.0, 0.0
    for t, buffered in arrivals:
        if startup is None:
            if buffered >= min(start_goal_s, total_media_s):
                startup, t_prev, buffered_prev = t, t, buffered
                timeline.append((t, buffered, 0.0))
            continue
        if stall_start is None:
            reach = playhead + (t - t_prev)
            if reach > buffered_prev and buffered_prev < total_media_s:
                stall_start = t_prev + (buffered_prev - playhead)
                playhead = buffered_prev
            else:
                playhead = min(reach, total_media_s)
        if stall_start is not None and (buffered >= playhead + resume_goal_s or buffered >= total_media_s):
            stalls.append({"at_s": round(stall_start, 3), "s": round(t - stall_start, 3)})
            stall_start = None
        t_prev, buffered_prev = t, buffered
        timeline.append((t, buffered, playhead))
    stall_s = sum(s["s"] for s in stalls)
    play_s = total_media_s
    return {"startup_s": None if startup is None else round(startup, 3), "stalls": stalls, "stall_s": round(stall_s, 3),
            "rebuffer_pct": round(100 * stall_s / (play_s + stall_s), 3) if startup is not None and play_s else None,
            "timeline": timeline}


def analyse(dl: Download, url: str, nominal_kbps: int, track_s: float) -> Result:
    """Everything the three stream checks need, from one download."""
    target = url.split("?")[0]
    if dl.status is None:
        return Result("stream", target, error=dl.error or "no response")
    if dl.status != 200:
        excerpt = dl.body[:200].decode(errors="replace")
        reason = _refusal(excerpt)
        return Result("stream", target, {"status": dl.status}, {"body_excerpt": excerpt, "request": dl.request},
                      error=f"bad response: HTTP {dl.status}" + (f": {reason}" if reason else ""))
    pcm, rate, decode_error = decode(dl.body)
    m: dict[str, Any] = {"status": dl.status, "bytes": dl.wire_bytes or len(dl.body), "audio_bytes": len(dl.body),
               "content_length": dl.content_length,
               "content_type": dl.headers.get("content-type", ""), "track_s": track_s, "nominal_kbps": nominal_kbps}
    evidence: dict[str, Any] = {"headers": dl.headers, "transfer_error": dl.error, "decode_error": decode_error,
                                "content_encoding": dl.encoding or None, "request": dl.request}
    if dl.arrivals:
        m["ttfb_s"] = round(dl.arrivals[0][0], 3)
        m["download_s"] = round(dl.arrivals[-1][0], 3)
    if pcm is None or not len(pcm):
        evidence["decode_error"] = decode_error or "no audio decoded"
        return Result("stream", target, m, evidence)
    decoded_s = len(pcm) / rate
    m.update({"decoded_s": round(decoded_s, 3), "sample_rate_hz": rate, "channels": pcm.shape[1],
              "delivered_kbps": round(len(dl.body) * 8 / decoded_s / 1000, 1),
              "clipped_pct": round(100 * float(np.mean(np.abs(pcm) >= CLIP_LEVEL)), 4)})
    gaps = silence_gaps(pcm, rate)
    m["longest_gap_ms"] = max((g["ms"] for g in gaps), default=0)
    evidence["silence_gaps"] = gaps[:10]
    bytes_per_media_s = m["bytes"] / decoded_s  # arrivals count wire bytes
    media = [(t, n / bytes_per_media_s) for t, n in dl.arrivals]
    transfer_s = max(dl.arrivals[-1][0] - dl.arrivals[0][0], 1e-3)
    m["speed_ratio"] = round(decoded_s / transfer_s, 3)
    player = simulate_player(media, decoded_s)
    m.update({"startup_s": player["startup_s"], "stalls": len(player["stalls"]), "stall_s": player["stall_s"],
              "rebuffer_pct": player["rebuffer_pct"]})
    evidence["stalls"] = player["stalls"][:20]
    evidence["timeline"] = [(round(t, 3), round(b, 3), round(p, 3)) for t, b, p in player["timeline"]]
    return Result("stream", target, m, evidence)
