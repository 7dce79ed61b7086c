"""Griffin-Lim phase reconstruction: keep the STFT magnitude, discard the phase, iterate to a
consistent phase (torchaudio's fast Griffin-Lim with momentum). No weights."""

from __future__ import annotations

import torch
import torchaudio

from .base import Reconstructor

REQUIREMENTS: dict[str, str] = {}


class GriffinLimReconstructor(Reconstructor):
    """Magnitude-only resynthesis.

    Args:
        n_fft / win_length / hop_length: STFT geometry (defaults: 32 ms Hann window, 8 ms hop).
        n_iter: Griffin-Lim iterations; fewer leave more phasiness (a stronger trace).
        momentum: fast Griffin-Lim momentum (0 is the classic algorithm).
        rand_init: start from a seeded random phase (``False``: zero phase).
    """

    name = "griffinlim"

    def __init__(self, n_fft: int = 512, hop_length: int = 128, win_length: int | None = None, n_iter: int = 32,
                 momentum: float = 0.99, rand_init: bool = True, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        win_length = win_length or n_fft
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, power=1.0
        )
        self.options = dict(n_fft=n_fft, win_length=win_length, hop_length=hop_length, n_iter=n_iter,
                            momentum=momentum, rand_init=rand_init)
        self.length_tolerance = 0  # the inverse STFT is asked for the exact input length
        self.to(device)

    def modules(self):
        return (self.spectrogram,)

    def _one(self, wave, seed: int):
        # The centred STFT reflect-pads n_fft/2: clips shorter than a window are zero-extended first.
        x = torch.nn.functional.pad(torch.from_numpy(wave), (0, max(0, self.options["n_fft"] - len(wave))))
        x = x.to(self.device)
        inverse = torchaudio.transforms.GriffinLim(power=1.0, length=len(x), **self.options).to(self.device)
        # GriffinLim draws its initial phase from the global RNG: fork it so the seed stays local.
        devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return inverse(self.spectrogram(x)).cpu().numpy()

    @torch.inference_mode()
    def _reconstruct_batch(self, waves, seeds):
        return [self._one(w, s) for w, s in zip(waves, seeds)]


RECONSTRUCTOR = GriffinLimReconstructor
