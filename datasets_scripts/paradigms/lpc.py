"""LPC vocoder (LPC-10 style) analysis/resynthesis: per frame an all-pole envelope, a level and a
voiced/unvoiced pitch decision, then the excitation is *replaced*: a pulse train at the estimated
f0 in voiced frames, white noise in unvoiced ones, filtered through each frame's envelope and
overlap-added. The result keeps the words, formants and intonation but has a buzzy, phase-free
source: the oldest synthetic-speech trace, a hard sample because nothing of the original waveform
survives except its envelope and pitch. Seeded (the noise); no weights.

Written here because no maintained Python library does LPC vocoding; the coefficients come from
scipy's Levinson solver (``scipy.linalg.solve_toeplitz``) on the frame's autocorrelation.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.signal

from .base import Reconstructor

REQUIREMENTS: dict[str, str] = {}
PRE_EMPHASIS = 0.97


def lpc(frame: np.ndarray, order: int, sampling_rate: int = 16_000) -> np.ndarray:
    """``[1, a1, ..., ap]`` of the autocorrelation method (stable for any frame), lag-windowed."""
    r = np.correlate(frame, frame, "full")[len(frame) - 1 : len(frame) + order]
    if r[0] <= 1e-12:
        return np.r_[1.0, np.zeros(order)]
    r = r * np.exp(-0.5 * (2 * np.pi * 60 / sampling_rate * np.arange(order + 1)) ** 2)  # 60 Hz lag window
    r[0] *= 1.0001  # white-noise correction: keeps the normal equations well conditioned
    return np.r_[1.0, -scipy.linalg.solve_toeplitz(r[:-1], r[1:])]


def pitch(segment: np.ndarray, min_lag: int, max_lag: int, threshold: float) -> int:
    """Period in samples of the normalised autocorrelation's peak, 0 if unvoiced.

    The shortest lag within 90 % of the best peak is taken, against period doubling.
    """
    n = len(segment)
    if n <= max_lag + 1 or not np.any(segment):
        return 0
    spectrum = np.fft.rfft(segment, 2 * n)
    corr = np.fft.irfft(spectrum * np.conj(spectrum))[: max_lag + 1]
    energy = np.cumsum(segment**2)
    lags = np.arange(min_lag, max_lag + 1)
    # Energies of the two overlapping parts, segment[:n-k] and segment[k:].
    norm = np.sqrt(energy[n - 1 - lags] * (energy[-1] - energy[lags - 1])) + 1e-12
    nccf = corr[lags] / norm
    best = float(nccf.max())
    return int(lags[np.argmax(nccf >= 0.9 * best)]) if best >= threshold else 0


class LpcReconstructor(Reconstructor):
    """Frame-wise LPC analysis, pulse/noise excitation, all-pole synthesis, overlap-add.

    Args:
        order: LPC order (16 covers the formants below 8 kHz).
        frame_ms / hop_ms: analysis and synthesis frame and hop (Hann windows).
        f0_floor / f0_ceil: pitch search range in Hz.
        voicing_threshold: minimum normalised autocorrelation peak for a voiced frame.
    """

    name = "lpc"

    def __init__(self, order: int = 16, frame_ms: float = 25.0, hop_ms: float = 10.0, f0_floor: float = 60.0,
                 f0_ceil: float = 400.0, voicing_threshold: float = 0.5, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        self.frame = int(round(frame_ms * self.sampling_rate / 1000))
        self.hop = int(round(hop_ms * self.sampling_rate / 1000))
        if not (order >= 1 and 0 < self.hop <= self.frame and 0 < f0_floor < f0_ceil <= self.sampling_rate / 4):
            raise ValueError(f"lpc: need order >= 1, 0 < hop_ms <= frame_ms and 0 < f0_floor < f0_ceil <= "
                             f"{self.sampling_rate // 4} Hz; got {order}, {hop_ms}, {frame_ms}, {f0_floor}, {f0_ceil}")
        self.order, self.threshold = int(order), float(voicing_threshold)
        self.min_lag = int(self.sampling_rate // f0_ceil)
        self.max_lag = int(np.ceil(self.sampling_rate / f0_floor))
        self.window = np.hanning(self.frame + 2)[1:-1]
        self.length_tolerance = 0  # frames cover the (padded) clip and are cut back to its length
        self.to(device)  # recorded only: numpy on the CPU

    def _excitation(self, periods: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-power pulses (phase-continuous across frames) where voiced, unit-variance noise elsewhere."""
        nearest = np.clip(np.rint((np.arange(n) - self.frame / 2) / self.hop), 0, len(periods) - 1)
        per_sample = periods[nearest.astype(int)]
        excitation = rng.standard_normal(n) * (per_sample == 0)
        t = 0
        while t < n:
            if per_sample[t]:
                excitation[t] = np.sqrt(per_sample[t])
                t += int(per_sample[t])
            else:
                t += 1
        return excitation

    def _one(self, wave: np.ndarray, seed: int) -> np.ndarray:
        x = scipy.signal.lfilter([1.0, -PRE_EMPHASIS], [1.0], wave.astype(np.float64))
        lead = self.frame - self.hop  # frame k spans x[k*hop - lead :][:frame]: the edges get full weight
        half = max(0, (2 * self.max_lag - self.frame + 1) // 2)  # pitch segments span two longest periods
        n_frames = int(np.ceil((len(x) + lead) / self.hop))
        padded, plain = np.zeros((2, n_frames * self.hop + self.frame + 2 * half))
        padded[half + lead : half + lead + len(x)], plain[half + lead : half + lead + len(x)] = x, wave
        starts = np.arange(n_frames) * self.hop
        # Pitch on the signal itself: pre-emphasis would weaken the low harmonics that carry it.
        periods = np.array([pitch(plain[s : s + self.frame + 2 * half], self.min_lag, self.max_lag, self.threshold)
                            for s in starts])
        periods = scipy.signal.medfilt(periods, 3) if n_frames >= 3 else periods  # no lone voicing flips
        out = np.zeros(len(padded) - 2 * half)
        weight = np.zeros_like(out)
        excitation = self._excitation(periods, len(out), np.random.default_rng(seed))
        for s in starts:
            weight[s : s + self.frame] += self.window**2
            frame = padded[half + s : half + s + self.frame] * self.window
            if not np.any(frame):
                continue
            synth = scipy.signal.lfilter([1.0], lpc(frame, self.order, self.sampling_rate), excitation[s : s + self.frame]) * self.window
            # The frame's level: LPC-10 sends the RMS of the speech, not of the prediction error.
            gain = np.sqrt(np.sum(frame**2) / (np.sum(synth**2) + 1e-20))
            out[s : s + self.frame] += gain * synth * self.window
        out = out[lead : lead + len(x)] / np.maximum(weight[lead : lead + len(x)], 1e-6)
        return scipy.signal.lfilter([1.0], [1.0, -PRE_EMPHASIS], out)

    def _reconstruct_batch(self, waves, seeds):
        return [self._one(w, s) for w, s in zip(waves, seeds)]


RECONSTRUCTOR = LpcReconstructor
