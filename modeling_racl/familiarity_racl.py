"""The familiarity check: is this audio like the audio the detector was trained on?

A detector's probability holds for audio like its training data; on recordings from elsewhere it can label
nearly everything spoof (docs/design.md#conventions). The check keeps, with the weights, one backbone layer's
hidden state averaged over the frames of each of up to a few thousand training windows (unit length). A window's
distance is one minus its mean cosine similarity to the ``familiarity_neighbours`` nearest of them; above
``familiarity_threshold`` the audio is unfamiliar. Early encoder layers describe the recording (channel,
language, speaker), not the spoofing trace the head is trained to see, which is what the check needs. A plain
nearest-neighbour search in torch: one matrix product against a few thousand rows needs no index library.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .aasist_racl import masked_mean


def pooled_states(states: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, H) hidden states → (B, H): the mean over the real frames, scaled to unit length."""
    mask = None if frame_mask is None else frame_mask.unsqueeze(-1)
    return F.normalize(masked_mean(states.float(), mask, dim=1), dim=-1)


def neighbour_distances(pooled: torch.Tensor, reference: torch.Tensor, k: int, leave_one_out: bool = False) -> torch.Tensor:
    """(B,) one minus the mean cosine similarity of each row of ``pooled`` to its ``k`` nearest rows of
    ``reference`` (both unit length); ``leave_one_out``: ``pooled`` is ``reference`` and a row is not its own neighbour."""
    similarity = pooled @ reference.T
    if leave_one_out:
        similarity.fill_diagonal_(-torch.inf)
    k = min(k, reference.shape[0] - int(leave_one_out))
    if k < 1:
        raise ValueError("the familiarity check needs at least two reference windows")
    return 1.0 - similarity.topk(k, dim=1).values.mean(dim=1)


def fitted_threshold(reference: torch.Tensor, k: int, quantile: float) -> float:
    """The distance that ``quantile`` of the reference windows stay within, each measured to the others."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    return float(torch.quantile(neighbour_distances(reference, reference, k, leave_one_out=True), quantile))


class FamiliarityCheck(nn.Module):
    """Distances of windows to the stored training windows (``reference``, saved with the weights)."""

    def __init__(self, config, hidden_size: int):
        super().__init__()
        self.layer, self.k = config.familiarity_layer, config.familiarity_neighbours
        self.register_buffer("reference", torch.zeros(config.familiarity_reference_size, hidden_size))

    def forward(self, hidden_states: tuple[torch.Tensor, ...], frame_mask: torch.Tensor | None) -> torch.Tensor:
        states = hidden_states[self.layer]
        # In float32 even under bf16 autocast: similarities near 1 differ in the third decimal, bf16's last.
        with torch.autocast(states.device.type, enabled=False):
            pooled = pooled_states(states, frame_mask)
            return neighbour_distances(pooled, self.reference.float(), self.k)


__all__ = ["FamiliarityCheck", "pooled_states", "neighbour_distances", "fitted_threshold"]
