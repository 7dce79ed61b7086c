"""RawBoost data boosting for training (one of the augmentations of :mod:`racl.training.augment`).

Follows Tak et al., "RawBoost: A Raw Data Boosting and Augmentation Method applied to Automatic
Speaker Verification Anti-Spoofing", ICASSP 2022, with the published default parameters and
algorithm numbering. Mono float audio in, float32 out, same length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..labels import SAMPLING_RATE
from .waveforms import Generator, as_numpy_generator, energy, peak_limit, uniform

RAWBOOST_ALGOS = {
    0: (),  # no RawBoost
    1: ("lnl",),  # linear and non-linear convolutive noise
    2: ("isd",),  # impulsive signal-dependent additive noise
    3: ("ssi",),  # stationary signal-independent additive noise
    4: ("lnl", "isd", "ssi"),  # series 1+2+3
    5: ("lnl", "isd"),  # series 1+2
    6: ("lnl", "ssi"),  # series 1+3
    7: ("isd", "ssi"),  # series 2+3
    8: ("lnl|isd",),  # parallel 1 || 2 (sum of both outputs)
}


@dataclass
class RawBoostConfig:
    """RawBoost parameters; defaults are those of the original implementation."""

    algo: int | tuple[int, ...] = 5  # id from RAWBOOST_ALGOS; a tuple = one drawn per clip
    n_bands: int = 5  # band-pass filters cascaded per filter (more = stronger colouring)
    min_f: float = 20.0  # centre frequency range (Hz)
    max_f: float = 8000.0
    min_bw: float = 100.0  # bandwidth range (Hz)
    max_bw: float = 1000.0
    min_coeff: int = 10  # FIR length range (taps)
    max_coeff: int = 100
    min_g: float = 0.0  # gain range of the linear component (dB)
    max_g: float = 0.0
    min_bias_lin_nonlin: float = 5.0  # non-linear components are this much quieter (dB)
    max_bias_lin_nonlin: float = 20.0
    n_f: int = 5  # order of the non-linearity (1 = linear only)
    p: float = 10.0  # impulsive noise: at most this % of samples hit
    g_sd: float = 2.0  # impulsive noise gain
    snr_min: float = 10.0  # coloured stationary noise SNR range (dB)
    snr_max: float = 40.0


def _band_filter(cfg: RawBoostConfig, rng: np.random.Generator, sr: int, gain_db_range) -> np.ndarray:
    """FIR of ``n_bands`` cascaded random band-pass filters, scaled to a random peak gain (dB)."""
    nyquist = sr / 2.0
    b = np.ones(1)
    for _ in range(cfg.n_bands):
        fc = min(uniform(rng, (cfg.min_f, cfg.max_f)), nyquist)
        bw = uniform(rng, (cfg.min_bw, cfg.max_bw))
        taps = int(rng.integers(cfg.min_coeff, cfg.max_coeff)) if cfg.max_coeff > cfg.min_coeff else cfg.min_coeff
        taps += 1 - taps % 2  # odd length: linear phase with an integer delay
        f1 = max(fc - bw / 2.0, 1e-3)
        f2 = min(fc + bw / 2.0, nyquist - 1e-3)
        f1 = min(f1, f2 - 1.0)
        b = np.convolve(signal.firwin(taps, [f1, f2], window="hamming", fs=sr), b)
    _, h = signal.freqz(b, 1, fs=sr)
    return 10.0 ** (uniform(rng, gain_db_range) / 20.0) * b / np.max(np.abs(h))


def _fir(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Filter with the group delay removed (centred convolution), same length as ``x``."""
    return signal.fftconvolve(x, b, mode="same")


def lnl_convolutive_noise(x: np.ndarray, cfg: RawBoostConfig, rng: np.random.Generator, sr: int) -> np.ndarray:
    """RawBoost 1: sum over k = 1..n_f of x**k through its own random multi-band filter.

    The linear term (k = 1) mimics channel colouring; the higher powers, quieter by a random
    bias, mimic the non-linear distortion of amplifiers and codecs.
    """
    y = np.zeros_like(x, dtype=np.float64)
    for k in range(1, cfg.n_f + 1):
        if k == 1:
            gains = (cfg.min_g, cfg.max_g)
        else:
            gains = (cfg.min_g - cfg.max_bias_lin_nonlin, cfg.max_g - cfg.min_bias_lin_nonlin)
        y += _fir(np.power(x, k), _band_filter(cfg, rng, sr, gains))
    return peak_limit(y - y.mean())


def isd_additive_noise(x: np.ndarray, cfg: RawBoostConfig, rng: np.random.Generator) -> np.ndarray:
    """RawBoost 2: impulsive noise proportional to the signal at up to ``p`` % random samples."""
    y = np.array(x, dtype=np.float64)
    n_hit = int(x.size * uniform(rng, (0.0, cfg.p)) / 100.0)
    idx = rng.permutation(x.size)[:n_hit]
    # product of two uniforms on [-1, 1]: peaked at zero, occasional large impulses
    shape = (2.0 * rng.random(n_hit) - 1.0) * (2.0 * rng.random(n_hit) - 1.0)
    y[idx] += cfg.g_sd * y[idx] * shape
    return peak_limit(y)


def ssi_additive_noise(x: np.ndarray, cfg: RawBoostConfig, rng: np.random.Generator, sr: int) -> np.ndarray:
    """RawBoost 3: white noise through a random multi-band filter, added at a random SNR."""
    noise = _fir(rng.standard_normal(x.size), _band_filter(cfg, rng, sr, (cfg.min_g, cfg.max_g)))
    snr = uniform(rng, (cfg.snr_min, cfg.snr_max))
    e_n = energy(noise)
    if e_n == 0:
        return np.asarray(x, dtype=np.float64)
    return x + noise * np.sqrt(energy(x) / e_n) / 10.0 ** (snr / 20.0)


def rawboost(x: np.ndarray, cfg: RawBoostConfig, generator: Generator = None, sr: int = SAMPLING_RATE) -> np.ndarray:
    """Apply the RawBoost algorithm ``cfg.algo`` (see ``RAWBOOST_ALGOS``); float32, same length."""
    rng = as_numpy_generator(generator)
    algo = cfg.algo
    if isinstance(algo, (tuple, list)):
        algo = int(algo[int(rng.integers(len(algo)))])
    y = np.asarray(x, dtype=np.float64)
    for step in RAWBOOST_ALGOS[algo]:
        if step == "lnl":
            y = lnl_convolutive_noise(y, cfg, rng, sr)
        elif step == "isd":
            y = isd_additive_noise(y, cfg, rng)
        elif step == "ssi":
            y = ssi_additive_noise(y, cfg, rng, sr)
        else:  # parallel 1 || 2 on the same input
            y = peak_limit(lnl_convolutive_noise(y, cfg, rng, sr) + isd_additive_noise(y, cfg, rng))
    return y.astype(np.float32)


__all__ = ["RAWBOOST_ALGOS", "RawBoostConfig", "rawboost", "lnl_convolutive_noise", "isd_additive_noise", "ssi_additive_noise"]
