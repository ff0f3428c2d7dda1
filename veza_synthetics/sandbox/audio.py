"""The canary track: 10 s that behave like mastered music, encoded once to MP3 at every quality.

Music is what the stream checks must not false-alarm on: a fade-in and a fade-out, a quiet
break (a soft pad at about -45 dBFS, far above digital silence), drum transients whose
peaks touch full scale (a peak-normalised master), chords and a bass line with dynamics.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44100
DURATION_S = 10.0  # short: a throttled canary costs its length over the throttle, twice (confirmation)
GAP_S = (4.5, 5.5)  # the stream.silence_gap fault's 1 s dropout
# kbps -> soundfile compression level giving that constant bitrate (machine-notes.md)
LEVELS = {320: 0.0, 192: 0.4, 128: 0.65, 96: 0.75, 56: 0.9}
QUALITIES = {"high": 320, "medium": 192, "low": 128, "mobile": 96}
DEGRADED_KBPS = 56  # stream.low_bitrate: the encoder has no 64 kbps step, 56 is the nearest
CACHE_VERSION = "canary-v3"
CANARY_NAME = "veza-canary"
BREAK_S = (6.5, 8.0)  # the quiet passage
FADE_IN_S, FADE_OUT_S = 1.5, 1.5


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "veza-synthetics" / CACHE_VERSION


def canary_pcm(with_gap: bool = False) -> np.ndarray:
    """Stereo music-like audio, peak-normalised to full scale; with_gap adds the fault's 1 s dropout."""
    rate, n = SAMPLE_RATE, int(SAMPLE_RATE * DURATION_S)
    t = np.arange(n) / rate
    beat = 0.5  # 120 bpm
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (196.0, 246.9, 329.6)]
    chord = np.array(chords)[(t // (4 * beat)).astype(int) % len(chords)]
    pad = sum(np.sin(2 * np.pi * chord[:, k] * t + k) for k in range(3)) / 3
    bass = np.sin(2 * np.pi * chord[:, 0] / 2 * t) * (0.6 + 0.4 * np.cos(2 * np.pi * t / beat))
    since_beat = t % beat
    kick = np.sin(2 * np.pi * 55 * since_beat) * np.exp(-since_beat * 18)
    rng = np.random.default_rng(7)
    since_off = (t + beat / 2) % beat
    hat = rng.standard_normal(n) * np.exp(-since_off * 60) * 0.15
    left = 0.35 * pad + 0.30 * bass + 0.9 * kick + hat
    right = 0.35 * np.roll(pad, 441) + 0.30 * bass + 0.9 * kick - hat
    pcm = np.stack([left, right], axis=1)
    quiet = (t >= BREAK_S[0]) & (t < BREAK_S[1])
    pcm[quiet] = 0.006 * np.stack([pad[quiet], np.roll(pad, 441)[quiet]], axis=1)  # about -45 dBFS
    envelope = np.minimum(1.0, np.minimum(t / FADE_IN_S, (DURATION_S - t) / FADE_OUT_S))
    pcm *= envelope[:, None]
    pcm /= np.max(np.abs(pcm))  # the loudest transients touch full scale, as a mastered track's do
    if with_gap:
        pcm[int(GAP_S[0] * rate):int(GAP_S[1] * rate)] = 0.0
    return pcm.astype(np.float32)


def _encode(pcm: np.ndarray, kbps: int, path: Path) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    sf.write(tmp, pcm, SAMPLE_RATE, format="MP3", bitrate_mode="CONSTANT", compression_level=LEVELS[kbps])
    tmp.replace(path)


def canary_files() -> dict[tuple[int, bool], Path]:
    """(kbps, with_gap) -> MP3 file, encoded on first use and cached across runs. One sandbox encodes
    while the others starting beside it wait for its files (make test starts four at once)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _encoded(folder)


def _encoded(folder: Path) -> dict[tuple[int, bool], Path]:
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
