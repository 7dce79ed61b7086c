"""On-the-fly waveform augmentation for training: reverberation, additive noise and RawBoost.

Every transform takes mono float audio at 16 kHz and returns the same number of samples, so
paired originals and reconstructions stay aligned. Randomness comes only from the generator
passed in (``numpy.random.Generator``, ``torch.Generator`` or an int seed), so a seeded run
is reproducible sample for sample. :class:`Augmenter` chains the three, each applied with its
own probability; in evaluation mode (``.eval()``) or with ``enabled=False`` it is the identity.

Offline defaults: without an RIR folder, rooms are simulated (:func:`synthetic_rir`); without
a noise folder, white/pink/brown noise is generated (:func:`coloured_noise`), or the waves given
to :class:`Augmenter` are used. With real corpora, point ``rir_dir`` at ``RIRS_NOISES`` and
``noise_dir`` at ``musan``.

RawBoost follows Tak et al., "RawBoost: A Raw Data Boosting and Augmentation Method applied to
Automatic Speaker Verification Anti-Spoofing", ICASSP 2022, with the published default
parameters and algorithm numbering.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from scipy import signal

from . import SAMPLING_RATE
from .audio import AUDIO_EXTENSIONS, load_audio

Generator = np.random.Generator | torch.Generator | int | None

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
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # PSD ~ 1 / f**exponent


# ---------------------------------------------------------------------------------------------
# configuration


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


@dataclass
class AugmentConfig:
    """Probabilities and ranges of the training augmentation (the ``augment:`` block of a YAML)."""

    enabled: bool = True
    sampling_rate: int = SAMPLING_RATE
    # reverberation
    rir_prob: float = 0.25
    rir_dir: str | None = None  # RIRS_NOISES-style folder; None = synthetic rooms
    rt60_range: tuple[float, float] = (0.2, 0.8)  # synthetic rooms: reverberation time (s)
    drr_range: tuple[float, float] = (0.0, 12.0)  # synthetic rooms: direct-to-reverberant ratio (dB)
    # additive noise
    noise_prob: float = 0.25
    noise_dir: str | None = None  # MUSAN-style folder (noise/ music/ speech/); None = generated
    noise_snr_ranges: dict[str, tuple[float, float]] = field(
        # per MUSAN category, as in the Kaldi / VoxCeleb recipes
        default_factory=lambda: {"noise": (0.0, 15.0), "music": (5.0, 15.0), "speech": (13.0, 20.0)}
    )
    snr_range: tuple[float, float] = (5.0, 20.0)  # generated or supplied noise
    noise_colours: tuple[str, ...] = ("white", "pink", "brown")
    # RawBoost
    rawboost_prob: float = 0.5
    rawboost: RawBoostConfig = field(default_factory=RawBoostConfig)

    def __post_init__(self):
        for name in ("rir_prob", "noise_prob", "rawboost_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {getattr(self, name)}")
        if isinstance(self.rawboost, dict):
            self.rawboost = RawBoostConfig(**self.rawboost)
        algos = self.rawboost.algo if isinstance(self.rawboost.algo, (tuple, list)) else (self.rawboost.algo,)
        bad = [a for a in algos if a not in RAWBOOST_ALGOS]
        if bad:
            raise ValueError(f"augment.rawboost.algo: unknown id(s) {bad}; valid: {sorted(RAWBOOST_ALGOS)}")
        unknown = set(self.noise_colours) - set(NOISE_COLOURS)
        if unknown:
            raise ValueError(f"augment.noise_colours: unknown {sorted(unknown)}; valid: {sorted(NOISE_COLOURS)}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "AugmentConfig":
        """Build from a YAML mapping (lists become tuples); unknown keys are an error, not ignored."""
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown augment option(s) {sorted(set(d) - known)}; known: {sorted(known)}")
        if "rawboost" in d:
            rb = dict(d["rawboost"] or {})
            rb_known = {f.name for f in dataclasses.fields(RawBoostConfig)}
            if set(rb) - rb_known:
                raise ValueError(f"unknown augment.rawboost option(s) {sorted(set(rb) - rb_known)}")
            d["rawboost"] = RawBoostConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in rb.items()})
        if "noise_snr_ranges" in d:
            d["noise_snr_ranges"] = {k: tuple(v) for k, v in d["noise_snr_ranges"].items()}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# ---------------------------------------------------------------------------------------------
# helpers


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


def _uniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = sorted(float(v) for v in lo_hi)
    return float(rng.uniform(lo, hi)) if hi > lo else lo


def _energy(x: np.ndarray) -> float:
    return float(np.sum(np.square(x, dtype=np.float64)))


def _peak_limit(x: np.ndarray) -> np.ndarray:
    """Scale down only when the peak exceeds full scale (RawBoost's normalisation)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x / peak if peak > 1.0 else x


@functools.lru_cache(maxsize=16)
def _load_cached(path: str) -> np.ndarray:
    # small cache: RIRs are short, but MUSAN music files run for minutes
    return load_audio(path)


def _list_audio(root: str | os.PathLike) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"augmentation folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


# ---------------------------------------------------------------------------------------------
# reverberation


def synthetic_rir(sr: int, rt60: float, generator: Generator = None, drr_db: float = 6.0) -> np.ndarray:
    """A simulated room impulse response: a unit direct-path impulse followed by a noise tail.

    The tail is Gaussian noise under an exponential envelope reaching -60 dB at ``rt60``
    seconds (Polack's statistical model of late reverberation), starting 2.5 ms after the
    direct path and scaled so that direct / tail energy is ``drr_db``. It needs no download,
    which makes reverberation available offline when no RIR corpus is at hand; measured RIRs
    (``rir_dir``) add early reflections and frequency-dependent decay that this model lacks.
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    rng = as_numpy_generator(generator)
    n = max(int(rt60 * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t / rt60)  # 60 dB down at rt60
    tail[: min(n - 1, max(1, int(0.0025 * sr)))] = 0.0  # gap between direct path and reflections
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / max(_energy(tail), 1e-20))
    tail[0] = 1.0  # direct path
    return tail.astype(np.float32)


def apply_rir(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with ``rir``; keep the length, the direct-path timing and the RMS of ``x``."""
    rir = np.asarray(rir, dtype=np.float32).reshape(-1)
    direct = int(np.argmax(np.abs(rir)))  # measured RIRs start with silence before the direct path
    wet = AF.fftconvolve(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(rir))
    y = wet.numpy()[direct : direct + x.shape[-1]].astype(np.float64)
    e_x, e_y = _energy(x), _energy(y)
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
    if _energy(x) == 0 or _energy(noise) == 0:
        return x.astype(np.float32, copy=True)  # no level to refer the SNR to
    y = AF.add_noise(
        torch.from_numpy(np.asarray(x, dtype=np.float32))[None],
        torch.from_numpy(np.asarray(noise, dtype=np.float32))[None],
        torch.tensor([float(snr_db)]),
    )
    return y[0].numpy()


def _fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of ``noise``, looped when the noise is shorter."""
    if noise.size < n:
        noise = np.tile(noise, int(np.ceil(n / noise.size)) + 1)
    start = int(rng.integers(0, noise.size - n + 1))
    return noise[start : start + n]


# ---------------------------------------------------------------------------------------------
# RawBoost


def _band_filter(cfg: RawBoostConfig, rng: np.random.Generator, sr: int, gain_db_range) -> np.ndarray:
    """FIR of ``n_bands`` cascaded random band-pass filters, scaled to a random peak gain (dB)."""
    nyquist = sr / 2.0
    b = np.ones(1)
    for _ in range(cfg.n_bands):
        fc = min(_uniform(rng, (cfg.min_f, cfg.max_f)), nyquist)
        bw = _uniform(rng, (cfg.min_bw, cfg.max_bw))
        taps = int(rng.integers(cfg.min_coeff, cfg.max_coeff)) if cfg.max_coeff > cfg.min_coeff else cfg.min_coeff
        taps += 1 - taps % 2  # odd length: linear phase with an integer delay
        f1 = max(fc - bw / 2.0, 1e-3)
        f2 = min(fc + bw / 2.0, nyquist - 1e-3)
        f1 = min(f1, f2 - 1.0)
        b = np.convolve(signal.firwin(taps, [f1, f2], window="hamming", fs=sr), b)
    _, h = signal.freqz(b, 1, fs=sr)
    return 10.0 ** (_uniform(rng, gain_db_range) / 20.0) * b / np.max(np.abs(h))


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
    return _peak_limit(y - y.mean())


def isd_additive_noise(x: np.ndarray, cfg: RawBoostConfig, rng: np.random.Generator) -> np.ndarray:
    """RawBoost 2: impulsive noise proportional to the signal at up to ``p`` % random samples."""
    y = np.array(x, dtype=np.float64)
    n_hit = int(x.size * _uniform(rng, (0.0, cfg.p)) / 100.0)
    idx = rng.permutation(x.size)[:n_hit]
    # product of two uniforms on [-1, 1]: peaked at zero, occasional large impulses
    shape = (2.0 * rng.random(n_hit) - 1.0) * (2.0 * rng.random(n_hit) - 1.0)
    y[idx] += cfg.g_sd * y[idx] * shape
    return _peak_limit(y)


def ssi_additive_noise(x: np.ndarray, cfg: RawBoostConfig, rng: np.random.Generator, sr: int) -> np.ndarray:
    """RawBoost 3: white noise through a random multi-band filter, added at a random SNR."""
    noise = _fir(rng.standard_normal(x.size), _band_filter(cfg, rng, sr, (cfg.min_g, cfg.max_g)))
    snr = _uniform(rng, (cfg.snr_min, cfg.snr_max))
    e_n = _energy(noise)
    if e_n == 0:
        return np.asarray(x, dtype=np.float64)
    return x + noise * np.sqrt(_energy(x) / e_n) / 10.0 ** (snr / 20.0)


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
            y = _peak_limit(lnl_convolutive_noise(y, cfg, rng, sr) + isd_additive_noise(y, cfg, rng))
    return y.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the training-time chain


class Augmenter:
    """Reverberation → additive noise → RawBoost, each with its probability from the config.

    ``Augmenter(config)(wave, generator)`` returns the same type (numpy array or tensor, on the
    same device), dtype and shape; 2-D input is treated as a batch of clips. Like a torch module
    it has ``.train()`` / ``.eval()``; in eval mode, or when ``config.enabled`` is false, it
    returns the input unchanged. ``noise_waves`` / ``rir_waves`` (16 kHz arrays) replace the
    generated defaults when no folder is configured.
    """

    def __init__(self, config: AugmentConfig | dict | None = None, noise_waves=None, rir_waves=None):
        if config is None or isinstance(config, dict):
            config = AugmentConfig.from_dict(config)
        self.config = config
        self.training = True
        self.noise_waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in (noise_waves or [])]
        self.rir_waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in (rir_waves or [])]
        self._rir_files = self._find_rirs(config.rir_dir) if config.rir_dir else []
        self._noise_files = self._find_noises(config.noise_dir) if config.noise_dir else {}

    # -- mode ---------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Augmenter":
        self.training = bool(mode)
        return self

    def eval(self) -> "Augmenter":
        return self.train(False)

    @property
    def active(self) -> bool:
        return self.config.enabled and self.training

    # -- corpora ------------------------------------------------------------------------------
    @staticmethod
    def _find_rirs(root: str) -> list[str]:
        # RIRS_NOISES keeps noise recordings next to the RIRs (*noise* file names): skip those
        files = [str(p) for p in _list_audio(root) if "noise" not in p.name.lower()]
        if not files:
            raise FileNotFoundError(f"no impulse responses found under {root}")
        return files

    def _find_noises(self, root: str) -> dict[str, list[str]]:
        """MUSAN layout: category = first sub-folder (noise/, music/, speech/); flat folder = "noise"."""
        files = _list_audio(root)
        by_category: dict[str, list[str]] = {}
        for p in files:
            parts = p.relative_to(root).parts
            if len(parts) > 1 and parts[0] in self.config.noise_snr_ranges:
                by_category.setdefault(parts[0], []).append(str(p))
        if not by_category and files:
            by_category = {"noise": [str(p) for p in files]}
        if not by_category:
            raise FileNotFoundError(f"no noise files found under {root}")
        return by_category

    # -- single transforms (numpy in, float32 numpy out, same length) ---------------------------
    def add_reverb(self, x: np.ndarray, generator: Generator = None) -> np.ndarray:
        """Convolve with a random RIR (folder, supplied waves, or a synthetic room)."""
        rng = as_numpy_generator(generator)
        cfg = self.config
        if self._rir_files:
            rir = _load_cached(self._rir_files[int(rng.integers(len(self._rir_files)))])
        elif self.rir_waves:
            rir = self.rir_waves[int(rng.integers(len(self.rir_waves)))]
        else:
            rt60, drr = _uniform(rng, cfg.rt60_range), _uniform(rng, cfg.drr_range)
            rir = synthetic_rir(cfg.sampling_rate, rt60, rng, drr_db=drr)
        return apply_rir(np.asarray(x, dtype=np.float32), rir)

    def add_noise(self, x: np.ndarray, generator: Generator = None) -> np.ndarray:
        """Mix a random noise at a random SNR from the range of its category."""
        rng = as_numpy_generator(generator)
        cfg = self.config
        if self._noise_files:
            category = sorted(self._noise_files)[int(rng.integers(len(self._noise_files)))]
            files = self._noise_files[category]
            noise = _load_cached(files[int(rng.integers(len(files)))])
            snr_range = cfg.noise_snr_ranges.get(category, cfg.snr_range)
        elif self.noise_waves:
            noise = self.noise_waves[int(rng.integers(len(self.noise_waves)))]
            snr_range = cfg.snr_range
        else:
            colour = cfg.noise_colours[int(rng.integers(len(cfg.noise_colours)))]
            noise = coloured_noise(x.shape[-1], colour, rng)
            snr_range = cfg.snr_range
        return mix_at_snr(x, _fit_length(noise, x.shape[-1], rng), _uniform(rng, snr_range))

    def apply_rawboost(self, x: np.ndarray, generator: Generator = None) -> np.ndarray:
        """RawBoost with the configured algorithm id(s)."""
        return rawboost(x, self.config.rawboost, generator, self.config.sampling_rate)

    # -- the chain ----------------------------------------------------------------------------
    def _augment_clip(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        # draw every decision up front so the random stream does not depend on which ran
        do_rir, do_noise, do_rb = rng.random(3) < (cfg.rir_prob, cfg.noise_prob, cfg.rawboost_prob)
        y = np.asarray(x, dtype=np.float32)
        if y.size == 0 or _energy(y) == 0:
            return y.copy()  # silence: nothing to reverberate, no level for an SNR
        if do_rir:
            y = self.add_reverb(y, rng)
        if do_noise:
            y = self.add_noise(y, rng)
        if do_rb:
            y = self.apply_rawboost(y, rng)
        return y.astype(np.float32, copy=False)

    def __call__(self, wave, generator: Generator = None):
        """Augment one clip (1-D) or a batch (2-D, clip by clip); same type, dtype and shape."""
        if not self.active:
            return wave
        rng = as_numpy_generator(generator)
        is_tensor = isinstance(wave, torch.Tensor)
        arr = wave.detach().cpu().numpy() if is_tensor else np.asarray(wave)
        if arr.ndim not in (1, 2):
            raise ValueError(f"expected a 1-D clip or a 2-D batch of clips, got shape {arr.shape}")
        out = np.stack([self._augment_clip(r, rng) for r in arr]) if arr.ndim == 2 else self._augment_clip(arr, rng)
        dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
        out = out.astype(dtype, copy=False)
        if is_tensor:
            return torch.from_numpy(out).to(wave.device)
        return out
