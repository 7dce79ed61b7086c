"""On-the-fly waveform augmentation for training: reverberation, additive noise and RawBoost.

:class:`Augmenter` chains the three, each applied with its own probability from
:class:`AugmentConfig` (the ``augment:`` block of a training YAML); in evaluation mode (``.eval()``)
or with ``enabled=False`` it is the identity. The transforms live in :mod:`racl.training.waveforms`
and :mod:`racl.training.rawboost`; they keep the length, so paired originals and reconstructions stay
aligned, and draw only from the generator passed in, so a seeded run is reproducible sample for sample.

Offline defaults: without an RIR folder, rooms are simulated
(:func:`datasets_scripts.postprocess.room_response`, the build's room model); without a noise folder,
white/pink/brown noise is generated (:func:`~racl.training.waveforms.coloured_noise`), or the waves
given to :class:`Augmenter` are used. With real corpora, point ``rir_dir`` at ``RIRS_NOISES`` and
``noise_dir`` at ``musan``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from datasets_scripts.postprocess import room_response

from ..labels import SAMPLING_RATE
from .rawboost import RAWBOOST_ALGOS, RawBoostConfig, rawboost
from .waveforms import (
    NOISE_COLOURS,
    Generator,
    apply_rir,
    as_numpy_generator,
    coloured_noise,
    energy,
    fit_length,
    list_audio,
    load_cached,
    mix_at_snr,
    uniform,
)

RIR_GAP_S = 0.0025  # simulated rooms: direct path to first reflections


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
        files = [str(p) for p in list_audio(root) if "noise" not in p.name.lower()]
        if not files:
            raise FileNotFoundError(f"no impulse responses found under {root}")
        return files

    def _find_noises(self, root: str) -> dict[str, list[str]]:
        """MUSAN layout: category = first sub-folder (noise/, music/, speech/); flat folder = "noise"."""
        files = list_audio(root)
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
            rir = load_cached(self._rir_files[int(rng.integers(len(self._rir_files)))])
        elif self.rir_waves:
            rir = self.rir_waves[int(rng.integers(len(self.rir_waves)))]
        else:
            rt60, drr = uniform(rng, cfg.rt60_range), uniform(rng, cfg.drr_range)
            rir = room_response(rt60, drr, rng, cfg.sampling_rate, gap_s=RIR_GAP_S, training_rounding=True)
        return apply_rir(np.asarray(x, dtype=np.float32), rir)

    def add_noise(self, x: np.ndarray, generator: Generator = None) -> np.ndarray:
        """Mix a random noise at a random SNR from the range of its category."""
        rng = as_numpy_generator(generator)
        cfg = self.config
        if self._noise_files:
            category = sorted(self._noise_files)[int(rng.integers(len(self._noise_files)))]
            files = self._noise_files[category]
            noise = load_cached(files[int(rng.integers(len(files)))])
            snr_range = cfg.noise_snr_ranges.get(category, cfg.snr_range)
        elif self.noise_waves:
            noise = self.noise_waves[int(rng.integers(len(self.noise_waves)))]
            snr_range = cfg.snr_range
        else:
            colour = cfg.noise_colours[int(rng.integers(len(cfg.noise_colours)))]
            noise = coloured_noise(x.shape[-1], colour, rng)
            snr_range = cfg.snr_range
        return mix_at_snr(x, fit_length(noise, x.shape[-1], rng), uniform(rng, snr_range))

    def apply_rawboost(self, x: np.ndarray, generator: Generator = None) -> np.ndarray:
        """RawBoost with the configured algorithm id(s)."""
        return rawboost(x, self.config.rawboost, generator, self.config.sampling_rate)

    # -- the chain ----------------------------------------------------------------------------
    def _augment_clip(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        # draw every decision up front so the random stream does not depend on which ran
        do_rir, do_noise, do_rb = rng.random(3) < (cfg.rir_prob, cfg.noise_prob, cfg.rawboost_prob)
        y = np.asarray(x, dtype=np.float32)
        if y.size == 0 or energy(y) == 0:
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


__all__ = ["AugmentConfig", "Augmenter"]
