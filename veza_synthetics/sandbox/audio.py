"""The canary track: a continuous two-tone signal encoded once to MP3 at every quality."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44100
DURATION_S = 20.0
GAP_S = (9.5, 10.5)  # the stream.silence_gap fault's 1 s dropout
# kbps -> soundfile compression level giving that constant bitrate (machine-notes.md)
LEVELS = {320: 0.0, 192: 0.4, 128: 0.65, 96: 0.75, 56: 0.9}
QUALITIES = {"high": 320, "medium": 192, "low": 128, "mobile": 96}
DEGRADED_KBPS = 56  # stream.low_bitrate: the encoder has no 64 kbps step, 56 is the nearest
CACHE_VERSION = "canary-v1"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "veza-synthetics" / CACHE_VERSION


def canary_pcm(with_gap: bool = False) -> np.ndarray:
    """Stereo, never silent, never clipping: 440 Hz left, 660 Hz right, gently modulated."""
    t = np.arange(int(SAMPLE_RATE * DURATION_S)) / SAMPLE_RATE
    envelope = 0.35 + 0.1 * np.sin(2 * np.pi * 0.5 * t)
    pcm = np.stack([envelope * np.sin(2 * np.pi * 440 * t), envelope * np.sin(2 * np.pi * 660 * t)], axis=1)
    if with_gap:
        pcm[int(GAP_S[0] * SAMPLE_RATE):int(GAP_S[1] * SAMPLE_RATE)] = 0.0
    return pcm.astype(np.float32)


def _encode(pcm: np.ndarray, kbps: int, path: Path) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    sf.write(tmp, pcm, SAMPLE_RATE, format="MP3", bitrate_mode="CONSTANT", compression_level=LEVELS[kbps])
    tmp.replace(path)


def canary_files() -> dict[tuple[int, bool], Path]:
    """(kbps, with_gap) -> MP3 file, encoded on first use and cached across runs."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for with_gap in (False, True):
        pcm = None
        for kbps in LEVELS:
            path = folder / f"canary-{kbps}k{'-gap' if with_gap else ''}.mp3"
            if not path.exists():
                pcm = canary_pcm(with_gap) if pcm is None else pcm
                _encode(pcm, kbps, path)
            files[(kbps, with_gap)] = path
    return files
