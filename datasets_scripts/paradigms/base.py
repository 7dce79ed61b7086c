"""The contract every reconstruction paradigm fulfils.

A :class:`Reconstructor` takes bona fide 16 kHz mono clips and returns their reconstructions:
float32, mono, 16 kHz, with **exactly** the input length, at the input's RMS level, and the same
output for the same seed.

Alignment: generators work in frames (a hop, a codec stride, a vocoder upsampling factor), so
their raw output is a little longer or shorter than the input. :meth:`Reconstructor.reconstruct`
trims the excess or extends a short result by reflection; ``length_tolerance`` states how many
samples that may be (the raw synthesis is within ``length_tolerance`` samples of the input
length), so at most that many trailing samples are padding rather than synthesis.

Loudness: the output is scaled to the input's RMS so that level never separates an original from
its reconstruction; if that scaling would push a peak past ``peak_limit`` the clip is scaled down
just enough (rare, and recorded in no other way).
"""

from __future__ import annotations

import zlib
from typing import Iterable, Sequence

import numpy as np

from racl.labels import SAMPLING_RATE


def clip_seed(seed: int, wave: np.ndarray) -> int:
    """A per-clip seed from the call's seed and the clip's content.

    Tying the noise to the content (not to the clip's position in a batch) keeps a clip's
    reconstruction independent of which other clips share its batch.
    """
    digest = zlib.crc32(np.ascontiguousarray(wave, dtype=np.float32).tobytes())
    return (int(seed) * 1_000_003 + digest) % (2**63 - 1)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Trim or extend ``wave`` to ``length`` samples (extension by reflection, zeros if too short)."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if len(wave) >= length:
        return wave[:length]
    missing = length - len(wave)
    # Reflection avoids a digital-silence tail that a detector could learn as a trace.
    mode = "reflect" if len(wave) > 1 else "constant"
    return np.pad(wave, (0, missing), mode=mode).astype(np.float32)


def rms(wave: np.ndarray) -> float:
    """Root mean square of a clip (0 for an empty clip)."""
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0


def match_level(output: np.ndarray, reference: np.ndarray, peak_limit: float | None = 0.999) -> np.ndarray:
    """Scale ``output`` to the RMS of ``reference``; keep peaks under ``peak_limit`` if given."""
    target, current = rms(reference), rms(output)
    gain = target / current if current > 1e-10 else 0.0
    output = output * gain
    peak = float(np.max(np.abs(output))) if len(output) else 0.0
    if peak_limit is not None and peak > peak_limit:
        output = output * (peak_limit / peak)
    return output.astype(np.float32)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding per batch)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class Reconstructor:
    """Base class: analysis/synthesis of 16 kHz clips through one generator.

    Subclasses implement :meth:`_reconstruct_batch` (a list of float32 16 kHz clips in, a list of
    raw 16 kHz outputs of any length out) and, for neural models, :meth:`modules`. Everything the
    contract promises (validation, batching by length, exact length, level, seeds) lives here.

    Attributes:
        name: the registry name, also written to the dataset's ``reconstruction`` column.
        sampling_rate: always 16 kHz (the project's internal rate; resampling is internal).
        length_tolerance: samples by which the raw synthesis may differ from the input length
            before alignment (see the module docstring).
        batch_size: clips per model call; 1 on CPU (padding would only cost time), more on GPU.
    """

    name: str = "base"
    sampling_rate: int = SAMPLING_RATE
    length_tolerance: int = 0

    def __init__(self, batch_size: int | None = None, peak_limit: float | None = 0.999):
        self._batch_size = batch_size
        self.peak_limit = peak_limit
        self.device = "cpu"

    # -- to be provided by paradigms ------------------------------------------------------------
    def _reconstruct_batch(self, waves: list[np.ndarray], seeds: list[int]) -> list[np.ndarray]:
        """Reconstruct float32 16 kHz clips; ``seeds[i]`` is clip i's own seed."""
        raise NotImplementedError

    def modules(self) -> Iterable:
        """The torch modules to move with :meth:`to` (none for signal-processing paradigms)."""
        return ()

    # -- public API -----------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        if self._batch_size:
            return int(self._batch_size)
        return 8 if str(self.device).startswith("cuda") else 1

    def to(self, device) -> "Reconstructor":
        """Move the paradigm's models to ``device``; returns self."""
        for module in self.modules():
            module.to(device)
        self.device = str(device)
        return self

    def reconstruct(self, waves: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        """Reconstruct a list of 16 kHz mono clips.

        Returns float32 clips of exactly the input lengths at the input RMS levels; the same
        inputs and seed give identical outputs.
        """
        waves = [self._check(w) for w in waves]
        outputs: list[np.ndarray | None] = [None] * len(waves)
        for index in [i for i, w in enumerate(waves) if len(w) == 0]:
            outputs[index] = np.zeros(0, dtype=np.float32)
        todo = [i for i, w in enumerate(waves) if len(w)]
        for batch in length_batches([len(waves[i]) for i in todo], self.batch_size):
            indices = [todo[j] for j in batch]
            clips = [waves[i] for i in indices]
            raw = self._reconstruct_batch(clips, [clip_seed(seed, c) for c in clips])
            for i, out in zip(indices, raw):
                outputs[i] = self._finish(out, waves[i])
        return outputs

    def __call__(self, wave: np.ndarray, seed: int = 0) -> np.ndarray:
        """Reconstruct one clip."""
        return self.reconstruct([wave], seed=seed)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device!r})"

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _check(wave) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a mono 1-D clip, got shape {wave.shape}")
        if not np.all(np.isfinite(wave)):
            raise ValueError("clip contains NaN or inf")
        return wave

    def _finish(self, output: np.ndarray, reference: np.ndarray) -> np.ndarray:
        output = np.nan_to_num(np.asarray(output, dtype=np.float32).reshape(-1))
        return match_level(fit_length(output, len(reference)), reference, self.peak_limit)
