"""WORLD vocoder analysis/synthesis (pyworld): f0 (Harvest or DIO+StoneMask), CheapTrick spectral
envelope, D4C aperiodicity, then resynthesis. No weights, fully deterministic."""

from __future__ import annotations

import warnings

import numpy as np

from .base import Reconstructor

REQUIREMENTS = {"pyworld": "pip install 'racl[demo]' (or: pip install pyworld 'setuptools<81')"}


def _import_pyworld():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyworld imports the deprecated pkg_resources
            import pyworld
    except ImportError as error:
        raise ImportError(f"the 'world' paradigm needs pyworld: {REQUIREMENTS['pyworld']}") from error
    return pyworld


class WorldReconstructor(Reconstructor):
    """Copy-synthesis through WORLD.

    Args:
        f0_method: ``"harvest"`` (robust, slower) or ``"dio"`` (fast, DIO refined by StoneMask).
        frame_period: analysis hop in ms.
        f0_floor / f0_ceil: f0 search range in Hz (defaults cover adult and child voices).
    """

    name = "world"

    def __init__(self, f0_method: str = "harvest", frame_period: float = 5.0, f0_floor: float = 71.0,
                 f0_ceil: float = 800.0, **kwargs):
        super().__init__(**kwargs)
        if f0_method not in ("harvest", "dio"):
            raise ValueError(f"f0_method must be 'harvest' or 'dio', got {f0_method!r}")
        self.pw = _import_pyworld()
        self.f0_method, self.frame_period = f0_method, float(frame_period)
        self.f0_floor, self.f0_ceil = float(f0_floor), float(f0_ceil)
        # WORLD synthesises one frame period per f0 frame: at most one period off.
        self.length_tolerance = int(np.ceil(self.frame_period * self.sampling_rate / 1000))

    def _f0(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fs = self.sampling_rate
        opts = dict(f0_floor=self.f0_floor, f0_ceil=self.f0_ceil, frame_period=self.frame_period)
        if self.f0_method == "harvest":
            return self.pw.harvest(x, fs, **opts)
        f0, times = self.pw.dio(x, fs, **opts)
        return self.pw.stonemask(x, f0, times, fs), times

    def _one(self, wave: np.ndarray) -> np.ndarray:
        x = wave.astype(np.float64)
        f0, times = self._f0(x)
        envelope = self.pw.cheaptrick(x, f0, times, self.sampling_rate, f0_floor=self.f0_floor)
        aperiodicity = self.pw.d4c(x, f0, times, self.sampling_rate)
        return self.pw.synthesize(f0, envelope, aperiodicity, self.sampling_rate, self.frame_period)

    def _reconstruct_batch(self, waves, seeds):
        # WORLD has no randomness to seed (its noise generator restarts on every call).
        return [self._one(w) for w in waves]


RECONSTRUCTOR = WorldReconstructor
