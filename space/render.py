"""The page's two pictures: the score per window over time, and the spectrogram the model hears.

Both are bounded in size whatever the recording's length (long series are binned, long audio is
sampled to a fixed number of spectrogram frames), so a 30-minute upload draws as fast as a short one.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from racl import SAMPLING_RATE
from racl.scoring import ClipScore

MAX_PLOT_POINTS = 1500  # timeline points drawn; longer recordings are binned (mean, min-max band)
MAX_SPECTROGRAM_FRAMES = 1500


def _render(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _time_axis(duration: float) -> tuple[str, float]:
    return ("min", 60.0) if duration > 180 else ("s", 1.0)


def bin_series(t: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, mean, min, max) over at most ``max_points`` consecutive bins (identity when short enough)."""
    if len(y) <= max_points:
        return t, y, y, y
    starts = np.linspace(0, len(y), max_points + 1).astype(int)[:-1]
    counts = np.diff(np.append(starts, len(y)))
    return np.add.reduceat(t, starts) / counts, np.add.reduceat(y, starts) / counts, np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)


def timeline_image(result: ClipScore, threshold: float) -> Image.Image | None:
    """Score per window over time, green above the decision threshold and red below (None for one window)."""
    if len(result.windows) < 2:
        return None
    centres = np.array([(w.start + w.end) / 2 for w in result.windows])
    scores = np.array([w.score for w in result.windows])
    t, mean, low, high = bin_series(centres, scores, MAX_PLOT_POINTS)
    unit, scale = _time_axis(result.duration)
    t = t / scale
    fig = Figure(figsize=(9, 2.8))
    ax = fig.add_subplot()
    if len(t) < len(scores):
        ax.fill_between(t, low, high, color="0.6", alpha=0.35, lw=0, label="range within each point")
    ax.fill_between(t, threshold, mean, where=mean >= threshold, interpolate=True, color="tab:green", alpha=0.3, lw=0, label="bona fide side")
    ax.fill_between(t, threshold, mean, where=mean < threshold, interpolate=True, color="tab:red", alpha=0.3, lw=0, label="spoof side")
    if len(scores) <= 60:  # few windows: show the stretch of audio each one covers
        ax.hlines(scores, [w.start / scale for w in result.windows], [w.end / scale for w in result.windows], color="0.15", lw=0.6, alpha=0.5)
    ax.plot(t, mean, color="0.15", lw=1.2, marker="o" if len(t) <= 60 else None, ms=3)
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold {threshold:+.2f}")
    low_y, high_y = min(low.min(), threshold), max(high.max(), threshold)
    pad = 0.1 * (high_y - low_y) or 0.1
    ax.set_ylim(low_y - pad, high_y + pad)
    ax.set_xlim(0, result.duration / scale)
    ax.set_xlabel(f"time ({unit}, window centres)")
    ax.set_ylabel("score")
    ax.set_title("Score per window — higher = more bona fide")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)
    return _render(fig)


def spectrogram_image(wave: np.ndarray, sr: int = SAMPLING_RATE, n_fft: int = 512) -> Image.Image:
    """Log-magnitude spectrogram, 0 to 8 kHz (what the model hears); long audio is sampled to a bounded number of frames."""
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    hop = max(n_fft // 4, int(np.ceil((len(wave) - n_fft + 1) / MAX_SPECTROGRAM_FRAMES)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop]  # a view: only kept frames get copied
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1))
    db = 20 * np.log10(magnitude + 1e-6)
    db = np.maximum(db, db.max() - 80)
    duration = len(wave) / sr
    unit, scale = _time_axis(duration)
    fig = Figure(figsize=(9, 2.8))
    ax = fig.add_subplot()
    image = ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", extent=(0, duration / scale, 0, sr / 2000))
    fig.colorbar(image, ax=ax, label="dB", pad=0.01)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title("Spectrogram (16 kHz mono, as the model hears it)")
    return _render(fig)
