"""Phase-vocoder round trip: time-stretch the STFT by ``rate`` and back by ``1 / rate`` (torchaudio's
phase vocoder), so the clip keeps its duration and pitch but its phase is re-estimated twice from
frame-to-frame phase advances and its magnitudes interpolated between frames. That leaves the
"phasiness" of tempo-changing tools: an STFT-domain synthesis trace, without weights and cheap on
a CPU. Deterministic (no random phase)."""

from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

from .base import Reconstructor

REQUIREMENTS: dict[str, str] = {}


class PhaseVocoderReconstructor(Reconstructor):
    """STFT → phase vocoder at ``rate`` → phase vocoder at ``1 / rate`` → inverse STFT.

    Args:
        rate: the intermediate tempo factor (> 0, not 1: at 1 the phase vocoder is the identity).
        n_fft / hop_length: STFT geometry (defaults: 32 ms Hann window, 8 ms hop).
    """

    name = "phasevocoder"

    def __init__(self, rate: float = 1.25, n_fft: int = 512, hop_length: int = 128, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        if not rate > 0 or math.isclose(rate, 1.0):
            raise ValueError(f"phasevocoder: rate must be > 0 and not 1 (1 is the identity), got {rate}")
        if not 0 < hop_length <= n_fft:
            raise ValueError(f"phasevocoder: need 0 < hop_length <= n_fft, got hop_length={hop_length}, n_fft={n_fft}")
        self.rate, self.n_fft, self.hop_length = float(rate), int(n_fft), int(hop_length)
        self.window = torch.hann_window(self.n_fft)
        # The expected phase advance of each bin over one hop (what the vocoder subtracts and adds back).
        self.phase_advance = torch.linspace(0, math.pi * self.hop_length, self.n_fft // 2 + 1)[:, None]
        self.length_tolerance = 0  # the inverse STFT is asked for the exact input length
        self.to(device)  # recorded only: at 0.004x real time on one core the vocoder runs on the CPU anywhere

    def _one(self, wave):
        # The centred STFT reflect-pads n_fft/2: clips shorter than a window are zero-extended first.
        x = torch.nn.functional.pad(torch.from_numpy(wave), (0, max(0, self.n_fft - len(wave))))
        spec = torch.stft(x, self.n_fft, self.hop_length, window=self.window, return_complex=True)
        for rate in (self.rate, 1.0 / self.rate):
            spec = AF.phase_vocoder(spec, rate, self.phase_advance)
        out = torch.istft(spec, self.n_fft, self.hop_length, window=self.window, length=len(x))
        return out[: len(wave)].numpy()

    @torch.inference_mode()
    def _reconstruct_batch(self, waves, seeds):
        return [self._one(w) for w in waves]


RECONSTRUCTOR = PhaseVocoderReconstructor
