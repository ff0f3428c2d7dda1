"""Streaming: one timed download of the canary serves cuts, quality and buffering."""
from __future__ import annotations

from typing import Any

from ..target import Target
from ..verdict import Verdict
from . import check


def _download(v: Verdict, target: Target, attempt: int) -> dict[str, Any] | None:
    if not target.profile.has_stream:
        v.missing("no stream server in this profile")
        return None
    result = target.stream_download(attempt)
    return result.measurements if v.record("stream", result) else None


@check("stream.audio_cut", holds=True)
def audio_cut(v: Verdict, target: Target, attempt: int) -> None:
    m = _download(v, target, attempt)
    if m is None:
        return
    ev = v.evidence["stream"]
    v.require(ev["decode_error"] is None, f"decode error: {ev['decode_error']}")
    if m["content_length"] is not None:
        missing = m["content_length"] - m["bytes"]
        v.against("missing_bytes", missing, text=f"received {m['bytes']} of {m['content_length']} bytes"
                  + (f" ({ev['transfer_error']})" if ev["transfer_error"] else ""))
    declared = " (stream.canary_duration_s)" if ev["canary"]["duration_from"] == "stream.canary_duration_s" else ""
    if "decoded_s" in m and m["track_s"]:
        v.against("missing_audio_s", m["track_s"] - m["decoded_s"],
                  text=f"decoded {m['decoded_s']:.2f} s of a {m['track_s']:g} s track{declared}")
    elif "decoded_s" in m:
        v.missing(f"missing audio: not measured: the canary's duration is unknown (decoded {m['decoded_s']:.2f} s; "
                  "neither track metadata nor the stream server's /info gives one: stream.canary_duration_s can)")
    if "longest_gap_ms" in m:
        gaps = ev["silence_gaps"]
        v.against("longest_gap_ms", m["longest_gap_ms"], label="longest silence gap",
                  detail=f"at {gaps[0]['at_s']} s" if gaps else None)


@check("stream.quality_degraded", holds=True)
def quality_degraded(v: Verdict, target: Target, attempt: int) -> None:
    m = _download(v, target, attempt)
    if m is None:
        return
    if "delivered_kbps" not in m:
        v.missing("nothing decoded: no quality to measure")
        return
    deviation = 100 * abs(m["delivered_kbps"] - m["nominal_kbps"]) / m["nominal_kbps"]
    v.against("bitrate_deviation_pct", deviation, label="bitrate deviation",
              detail=f"{m['delivered_kbps']:.0f} kbps delivered, {m['nominal_kbps']} kbps requested")
    v.against("sample_rate_hz", m["sample_rate_hz"], label="sample rate")
    if target.profile.stream.content_type_required:
        v.require(m["content_type"].startswith("audio/"), f"Content-Type {m['content_type'] or 'missing'!r}, "
                  "players need audio/mpeg", ok_text=f"Content-Type {m['content_type']}")
    else:
        v.missing(f"Content-Type not judged: this stream server omits it (answered {m['content_type'] or 'none'!r})")
    v.against("clipped_pct", m["clipped_pct"], label="clipped samples")
    encoding = v.evidence["stream"].get("content_encoding")
    if encoding:  # a finding, not a failure: the audio decoded
        v.require(True, "", ok_text=f"the stream server compressed the MP3 (Content-Encoding {encoding}) although the "
                                    f"player asked for identity: decoded; players that accept {encoding} pay for it")


@check("stream.excessive_buffering", holds=True)
def excessive_buffering(v: Verdict, target: Target, attempt: int) -> None:
    m = _download(v, target, attempt)
    if m is None:
        return
    v.against("ttfb_s", m.get("ttfb_s"), label="time to first byte")
    if m.get("startup_s") is None and "decoded_s" in m:
        v.require(False, "playback never started: less than 2 s of audio arrived")
    v.against("startup_s", m.get("startup_s"), label="startup")
    stalls = m.get("stalls", 0)
    v.against("rebuffer_pct", m.get("rebuffer_pct"), label="rebuffer ratio",
              detail=f"{stalls} stalls, {m.get('stall_s', 0):.1f} s")
    v.against("speed_ratio", m.get("speed_ratio"), label="download speed / bitrate")
