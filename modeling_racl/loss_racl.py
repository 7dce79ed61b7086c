"""Regularization-Assisted Contrastive Learning (RACL), our reading of the paper (docs/design.md#the-racl-objective).

    L = w_cls * Lcls + alpha * Lstd + beta * Lenh + gamma * Lreg,   w_cls = racl_cls_weight (the paper's: 1 - alpha - beta)

- Lcls: cross-entropy on the two logits (optionally class-weighted). With ``reconstruction_class`` the classes
  of Lcls, Lstd and Lreg are three: bona fide, original spoof, reconstruction.
- Lstd: supervised contrastive loss (SupCon) on L2-normalised embeddings with the labels (the three classes above
  with ``reconstruction_class``).
- Lenh: the same form restricted to the hard structure of the batch: anchors are *original* bona fide
  clips, positives the other original bona fide clips, negatives the reconstructions (of bona fide and
  of spoof), the anchor's own reconstruction included.
- Lreg: mean squared distance of normalised embeddings to their class centroid, averaged over classes.

Every term is 0 (never NaN) when its structure is absent from the batch: one class, no
reconstructions, a batch of one. Terms stay attached to the graph so ``backward`` always works.

Under multi-process training with ``RACLLoss.global_batch`` set, the three embedding terms see the batch of
every process, as supervised-contrastive implementations do: embeddings are gathered with gradients
(``torch.distributed.nn.functional.all_gather``, whose backward sums each process's gradient into the owner
of the rows), so with DDP's gradient averaging the update is that of one process on the whole batch. Lcls
stays per process (DDP's average of per-process means is the global mean for equal batch sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_racl import BONAFIDE, resolve_cls_weight


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


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _padded(t: torch.Tensor, rows: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros((rows - len(t), *t.shape[1:]))]) if rows > len(t) else t


def gather_batch(
    z: torch.Tensor, labels: torch.Tensor, is_reconstructed: torch.Tensor, source_ids: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The rows of every process, in rank order; gradients of ``z`` flow back to the process that owns each row.

    Batches may differ in size between processes (padded for the collectives, then cut). Source ids are
    numbered per batch, so they are made unique across processes (``id * world + rank``).
    """
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    world, rank = dist.get_world_size(), dist.get_rank()
    size = torch.tensor([len(z)], device=z.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    rows = max(sizes)

    def gathered(t: torch.Tensor) -> torch.Tensor:  # no gradient needed: labels and flags
        parts = [torch.zeros_like(_padded(t, rows)) for _ in range(world)]
        dist.all_gather(parts, _padded(t, rows))
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    z_all = torch.cat([p[:n] for p, n in zip(all_gather(_padded(z, rows)), sizes)])
    labels_all = gathered(labels)
    recon_all = gathered(is_reconstructed.long()).bool()  # not every backend gathers bool tensors
    sources_all = None if source_ids is None else gathered(source_ids.long().to(z.device) * world + rank)
    return z_all, labels_all, recon_all, sources_all


class RACLLoss(nn.Module):
    """The full objective; weights, temperature and interpretation switches come from ``RACLConfig``.

    ``global_batch`` (set by the training loop, off by default) computes Lstd, Lenh and Lreg over the batch
    of every process when ``torch.distributed`` runs more than one; off, each process uses its own batch.
    """

    def __init__(self, config):
        super().__init__()
        self.cls_weight = resolve_cls_weight(config.racl_cls_weight, config.racl_alpha, config.racl_beta)
        self.global_batch = False
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
        """``logits`` (B, 2), or (B, 3) with a reconstruction output: then the classes of Lcls, Lstd and Lreg are bona
        fide / original spoof / reconstruction (Lenh's structure is the same either way)."""
        labels = labels.long().view(-1)
        if is_reconstructed is None:
            is_reconstructed = torch.zeros_like(labels, dtype=torch.bool)
        is_reconstructed = is_reconstructed.bool().view(-1)
        three_way = logits.shape[-1] == 3

        def classes(labels, is_reconstructed):
            return torch.where(is_reconstructed.to(labels.device), 2, labels) if three_way else labels

        # The contrastive geometry is computed in float32 even under mixed precision (exp(1/0.07) overflows fp16).
        z = F.normalize(embeddings.float(), dim=-1)
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        cls = F.cross_entropy(logits.float(), classes(labels, is_reconstructed), weight=weight)
        if self.global_batch and (self.alpha or self.beta or self.gamma) and _world_size() > 1:
            z, labels, is_reconstructed, source_ids = gather_batch(z, labels.to(z.device), is_reconstructed.to(z.device), source_ids)
        std = standard_contrastive_loss(z, classes(labels, is_reconstructed), self.temperature) if self.alpha else _zero_like_graph(z)
        enh = (
            enhanced_contrastive_loss(z, labels, is_reconstructed, self.temperature, self.enh_negatives, source_ids)
            if self.beta
            else _zero_like_graph(z)
        )
        reg = intra_class_variance(z, classes(labels, is_reconstructed)) if self.gamma else _zero_like_graph(z)
        total = self.cls_weight * cls + self.alpha * std + self.beta * enh + self.gamma * reg
        return RACLLossOutput(loss=total, cls=cls, std=std, enh=enh, reg=reg)


__all__ = [
    "RACLLoss",
    "RACLLossOutput",
    "gather_batch",
    "contrastive_term",
    "standard_contrastive_loss",
    "enhanced_contrastive_loss",
    "intra_class_variance",
]
