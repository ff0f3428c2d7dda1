"""Evidence people would rather look at than read: small self-contained SVG charts."""
from __future__ import annotations

from html import escape
from typing import Any

W, H, PAD = 560, 220, 40


def _scale(values: list[float], lo: float, hi: float, out_lo: float, out_hi: float) -> list[float]:
    span = (hi - lo) or 1.0
    return [out_lo + (v - lo) * (out_hi - out_lo) / span for v in values]


def _frame(title: str, x_label: str, y_label: str, x_max: float, y_max: float) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '  # scales down
            'font-family="sans-serif" font-size="11">',
            f'<text x="{W / 2}" y="14" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
            f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#444"/>',
            f'<line x1="{PAD}" y1="22" x2="{PAD}" y2="{H - PAD}" stroke="#444"/>',
            f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{escape(x_label)} (0–{x_max:.3g})</text>',
            f'<text x="10" y="{H / 2}" transform="rotate(-90 10 {H / 2})" text-anchor="middle">'
            f'{escape(y_label)} (0–{y_max:.3g})</text>']


def stream_timeline(timeline: list[list[float]], stalls: list[dict[str, float]]) -> str | None:
    """Media seconds buffered and the playhead against wall time, stalls shaded."""
    if len(timeline) < 2:
        return None
    t = [p[0] for p in timeline]
    x_max, y_max = max(t), max(max(p[1] for p in timeline), 1.0)
    xs = _scale(t, 0, x_max, PAD, W - 10)
    out = _frame("Stream: buffered audio and playhead", "wall time, s", "media time, s", x_max, y_max)
    for stall in stalls:
        x0, x1 = _scale([stall["at_s"], stall["at_s"] + stall["s"]], 0, x_max, PAD, W - 10)
        out.append(f'<rect x="{x0:.1f}" y="22" width="{max(x1 - x0, 1):.1f}" height="{H - PAD - 22}" fill="#f5c2c7"/>')
    for index, colour, name in ((1, "#0969da", "buffered"), (2, "#1a7f37", "playhead")):
        ys = _scale([p[index] for p in timeline], 0, y_max, H - PAD, 22)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        out.append(f'<text x="{W - 80}" y="{30 + 14 * index}" fill="{colour}">{name}</text>')
    if stalls:
        out.append(f'<text x="{W - 80}" y="72" fill="#cf222e">stalls</text>')
    return "".join(out) + "</svg>"


def latency_histogram(latencies_ms: list[float], bins: int = 20) -> str | None:
    """How A-to-B delivery latencies spread."""
    if not latencies_ms:
        return None
    top = max(latencies_ms) or 1.0
    counts = [0] * bins
    for value in latencies_ms:
        counts[min(int(value / top * bins), bins - 1)] += 1
    out = _frame("Chat delivery latency, A to B", "latency, ms", "messages", top, max(counts))
    width = (W - 10 - PAD) / bins
    for i, count in enumerate(counts):
        height = (H - PAD - 22) * count / max(counts)
        out.append(f'<rect x="{PAD + i * width + 1:.1f}" y="{H - PAD - height:.1f}" width="{width - 2:.1f}" '
                   f'height="{height:.1f}" fill="#8250df"/>')
    return "".join(out) + "</svg>"


def for_record(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, svg) charts that fit this check's evidence."""
    charts = []
    stream = record["evidence"].get("stream")
    if record["id"].startswith("stream.") and isinstance(stream, dict):
        svg = stream_timeline(stream.get("timeline", []), stream.get("stalls", []))
        if svg:
            charts.append(("stream timeline", svg))
    chat = record["evidence"].get("delivery")
    if record["id"] in ("ws.high_latency", "ws.message_loss") and isinstance(chat, dict):
        svg = latency_histogram(chat.get("latencies_ms", []))
        if svg:
            charts.append(("chat latency distribution", svg))
    return charts
