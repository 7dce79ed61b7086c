"""Regularization-Assisted Contrastive Learning (RACL), our reading of the paper (docs/design.md#the-racl-objective).

    L = Lcls + alpha * Lstd + beta * Lenh + gamma * Lreg

- Lcls: cross-entropy on the two logits (optionally class-weighted).
- Lstd: supervised contrastive loss (SupCon) on L2-normalised embeddings with the binary labels.
- Lenh: the same form restricted to the hard structure of the batch: anchors are *original* bona fide
  clips, positives the other original bona fide clips, negatives the reconstructions (of bona fide and
  of spoof), the anchor's own reconstruction included.
- Lreg: mean squared distance of normalised embeddings to their class centroid, averaged over classes.

Every term is 0 (never NaN) when its structure is absent from the batch: one class, no
reconstructions, a batch of one. Terms stay attached to the graph so ``backward`` always works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_racl import BONAFIDE


@dataclass
class RACLLossOutput:
    loss: torch.Tensor
    cls: torch.Tensor
    std: torch.Tensor
    enh: torch.Tensor
    reg: torch.Tensor

    def terms(self) -> dict[str, float]:
        """Plain floats for logging."""
        return {name: float(getattr(self, name).detach()) for name in ("loss", "cls", "std", "enh", "reg")}


def _zero_like_graph(z: torch.Tensor) -> torch.Tensor:
    # A zero that keeps the graph, so a term with no anchors still backpropagates (as 0).
    return z.sum() * 0.0


def contrastive_term(
    z: torch.Tensor, anchors: torch.Tensor, positives: torch.Tensor, candidates: torch.Tensor, temperature: float
) -> torch.Tensor:
    """SupCon form: mean over valid anchors i of ``-mean_{p in P(i)} log(exp(s_ip) / sum_{a in C(i)} exp(s_ia))``.

    ``z`` (B, D) is L2-normalised; ``anchors`` (B,) bool; ``positives`` and ``candidates`` (B, B) bool
    with the diagonal already excluded; ``P(i)`` must be a subset of ``C(i)``. An anchor counts only if
    it has at least one positive and one candidate that is not a positive (otherwise the term carries no
    contrast for it).
    """
    positives = positives & candidates
    negatives = candidates & ~positives
    valid = anchors & positives.any(dim=1) & negatives.any(dim=1)
    if not valid.any():
        return _zero_like_graph(z)
    sim = (z @ z.t()) / temperature
    log_denominator = torch.logsumexp(sim.masked_fill(~candidates, float("-inf")), dim=1, keepdim=True)
    log_prob = sim - log_denominator
    pos = positives[valid].to(z.dtype)
    per_anchor = -(log_prob[valid] * pos).sum(dim=1) / pos.sum(dim=1)
    return per_anchor.mean()


def standard_contrastive_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Lstd: every clip is an anchor, positives share its label, candidates are all other clips."""
    not_self = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    same = labels[:, None] == labels[None, :]
    return contrastive_term(z, torch.ones_like(labels, dtype=torch.bool), same & not_self, not_self, temperature)


def enhanced_contrastive_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    is_reconstructed: torch.Tensor,
    temperature: float,
    negatives: str = "reconstructed",
    source_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Lenh: original bona fide anchors vs reconstructions (and, optionally, original spoofs).

    With ``source_ids`` given, each anchor's negatives are restricted to clips derived from its own
    source (its reconstruction): the strict pair reading. Without, all reconstructions in the batch.
    """
    not_self = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    original_bonafide = (labels == BONAFIDE) & ~is_reconstructed
    negative_cols = is_reconstructed.clone()
    if negatives == "reconstructed_and_spoof":
        negative_cols |= labels != BONAFIDE
    negative_matrix = negative_cols[None, :].expand(len(z), -1)
    if source_ids is not None:
        negative_matrix = negative_matrix & (source_ids[:, None] == source_ids[None, :])
    positive_matrix = original_bonafide[None, :] & not_self
    candidates = (positive_matrix | negative_matrix) & not_self
    return contrastive_term(z, original_bonafide, positive_matrix, candidates, temperature)


def intra_class_variance(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lreg: mean squared distance to the class centroid, averaged over the classes in the batch."""
    per_class = []
    for label in labels.unique():
        members = z[labels == label]
        if len(members) > 1:
            per_class.append((members - members.mean(dim=0, keepdim=True)).pow(2).sum(dim=1).mean())
    if not per_class:
        return _zero_like_graph(z)
    return torch.stack(per_class).mean()


class RACLLoss(nn.Module):
    """The full objective; weights, temperature and interpretation switches come from ``RACLConfig``."""

    def __init__(self, config):
        super().__init__()
        self.alpha = config.racl_alpha
        self.beta = config.racl_beta
        self.gamma = config.racl_gamma
        self.temperature = config.racl_temperature
        self.enh_negatives = config.racl_enh_negatives
        weights = config.class_weights
        self.register_buffer("class_weights", torch.tensor(weights, dtype=torch.float32) if weights else None, persistent=False)

    def forward(
        self,
        logits: torch.Tensor,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        is_reconstructed: torch.Tensor | None = None,
        source_ids: torch.Tensor | None = None,
    ) -> RACLLossOutput:
        labels = labels.long().view(-1)
        if is_reconstructed is None:
            is_reconstructed = torch.zeros_like(labels, dtype=torch.bool)
        is_reconstructed = is_reconstructed.bool().view(-1)
        # The contrastive geometry is computed in float32 even under mixed precision (exp(1/0.07) overflows fp16).
        z = F.normalize(embeddings.float(), dim=-1)
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        cls = F.cross_entropy(logits.float(), labels, weight=weight)
        std = standard_contrastive_loss(z, labels, self.temperature) if self.alpha else _zero_like_graph(z)
        enh = (
            enhanced_contrastive_loss(z, labels, is_reconstructed, self.temperature, self.enh_negatives, source_ids)
            if self.beta
            else _zero_like_graph(z)
        )
        reg = intra_class_variance(z, labels) if self.gamma else _zero_like_graph(z)
        total = cls + self.alpha * std + self.beta * enh + self.gamma * reg
        return RACLLossOutput(loss=total, cls=cls, std=std, enh=enh, reg=reg)


__all__ = [
    "RACLLoss",
    "RACLLossOutput",
    "contrastive_term",
    "standard_contrastive_loss",
    "enhanced_contrastive_loss",
    "intra_class_variance",
]
