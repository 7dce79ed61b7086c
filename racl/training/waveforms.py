"""Waveform transforms of the training augmentation: reverberation and additive noise, and the draws they share.

Every transform takes mono float audio at 16 kHz and returns the same number of samples, so paired
originals and reconstructions stay aligned. Randomness comes only from the generator passed in
(``numpy.random.Generator``, ``torch.Generator`` or an int seed), so a seeded run is reproducible
sample for sample.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from ..audio import AUDIO_EXTENSIONS, load_audio

Generator = np.random.Generator | torch.Generator | int | None
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # PSD ~ 1 / f**exponent


# ---------------------------------------------------------------------------------------------
# draws and levels


def as_numpy_generator(generator: Generator) -> np.random.Generator:
    """One numpy Generator from whatever the caller seeds with.

    A torch.Generator is advanced by one draw, which seeds the numpy generator: the same torch
    state always gives the same augmentation, and the torch stream moves on for the next clip.
    """
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
    return np.random.default_rng(generator)  # int seed, or None = fresh entropy


def uniform(rng: np.random.Generator, lo_hi) -> float:
    """A uniform draw in a (lo, hi) range given in either order; a degenerate range gives lo, no draw."""
    lo, hi = sorted(float(v) for v in lo_hi)
    return float(rng.uniform(lo, hi)) if hi > lo else lo


def energy(x: np.ndarray) -> float:
    return float(np.sum(np.square(x, dtype=np.float64)))


def peak_limit(x: np.ndarray) -> np.ndarray:
    """Scale down only when the peak exceeds full scale (RawBoost's normalisation)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x / peak if peak > 1.0 else x


@functools.lru_cache(maxsize=16)
def load_cached(path: str) -> np.ndarray:
    # small cache: RIRs are short, but MUSAN music files run for minutes
    return load_audio(path)


def list_audio(root: str | os.PathLike) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"augmentation folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


# ---------------------------------------------------------------------------------------------
# reverberation


def apply_rir(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with ``rir``; keep the length, the direct-path timing and the RMS of ``x``."""
    rir = np.asarray(rir, dtype=np.float32).reshape(-1)
    direct = int(np.argmax(np.abs(rir)))  # measured RIRs start with silence before the direct path
    wet = AF.fftconvolve(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(rir))
    y = wet.numpy()[direct : direct + x.shape[-1]].astype(np.float64)
    e_x, e_y = energy(x), energy(y)
    return (y * np.sqrt(e_x / e_y) if e_y > 0 else y).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# additive noise


def coloured_noise(n: int, colour: str, generator: Generator = None) -> np.ndarray:
    """Gaussian noise with power spectral density ~ 1/f^k (white k=0, pink k=1, brown k=2), unit RMS."""
    if colour not in NOISE_COLOURS:
        raise ValueError(f"unknown noise colour {colour!r}; valid: {sorted(NOISE_COLOURS)}")
    rng = as_numpy_generator(generator)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = f[1] if f.size > 1 else 1.0  # no infinite gain at DC
    noise = np.fft.irfft(spec * f ** (-NOISE_COLOURS[colour] / 2.0), n=n)
    noise -= noise.mean()
    return (noise / max(np.sqrt(np.mean(noise**2)), 1e-12)).astype(np.float32)


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` + ``noise`` scaled so that energy(x) / energy(added noise) is ``snr_db`` (same length)."""
    if energy(x) == 0 or energy(noise) == 0:
        return x.astype(np.float32, copy=True)  # no level to refer the SNR to
    y = AF.add_noise(
        torch.from_numpy(np.asarray(x, dtype=np.float32))[None],
        torch.from_numpy(np.asarray(noise, dtype=np.float32))[None],
        torch.tensor([float(snr_db)]),
    )
    return y[0].numpy()


def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of ``noise``, looped when the noise is shorter."""
    if noise.size < n:
        noise = np.tile(noise, int(np.ceil(n / noise.size)) + 1)
    start = int(rng.integers(0, noise.size - n + 1))
    return noise[start : start + n]


__all__ = ["Generator", "NOISE_COLOURS", "as_numpy_generator", "uniform", "energy", "peak_limit", "load_cached", "list_audio",
           "apply_rir", "coloured_noise", "mix_at_snr", "fit_length"]
