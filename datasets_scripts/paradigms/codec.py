"""Shared plumbing of the neural-codec paradigms (encode → quantise → decode at the codec's rate)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .audio import pad_stack, resample, scaled_length
from .base import Reconstructor


def load_model(model_class, repo: str, config=None, model=None):
    """A ready model, a seeded random init from ``config`` (tests), or ``from_pretrained(repo)``."""
    if model is not None:
        return model.eval()
    if config is not None:
        torch.manual_seed(0)
        return model_class(config).eval()
    return model_class.from_pretrained(repo).eval()


class CodecReconstructor(Reconstructor):
    """Resample 16 kHz → codec rate, pad to the codec stride, round-trip, resample back.

    Subclasses set ``self.model`` and implement :meth:`_roundtrip` on a (batch, 1, time) tensor
    at ``self.codec_rate`` with its validity mask.
    """

    model: torch.nn.Module
    codec_rate: int
    hop_length: int

    def _setup(self, model, codec_rate: int, hop_length: int, device: str):
        self.model, self.codec_rate, self.hop_length = model, int(codec_rate), int(hop_length)
        # A codec frame at the codec rate, seen at 16 kHz, plus resampling rounding.
        self.length_tolerance = int(math.ceil(self.hop_length * self.sampling_rate / self.codec_rate)) + 2
        self.to(device)

    def modules(self):
        return (self.model,)

    def _roundtrip(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def _reconstruct_batch(self, waves, seeds):
        batch = resample(pad_stack(waves, device=self.device), self.sampling_rate, self.codec_rate)
        length = int(math.ceil(batch.shape[-1] / self.hop_length) * self.hop_length)
        batch = torch.nn.functional.pad(batch, (0, length - batch.shape[-1]))
        lengths = torch.tensor([scaled_length(len(w), self.sampling_rate, self.codec_rate) for w in waves],
                               device=self.device)
        mask = torch.arange(length, device=self.device)[None, :] < lengths[:, None]
        dtype = next(self.model.parameters()).dtype
        audio = self._roundtrip(batch.unsqueeze(1).to(dtype), mask.unsqueeze(1)).float()
        audio = resample(audio.mean(1) if audio.dim() == 3 else audio, self.codec_rate, self.sampling_rate)
        return list(audio.cpu().numpy().astype(np.float32))
