"""AASIST head (Jung et al., 2022) in its SSL front-end form, and the masked operations it is built from.

Residual encoder on the (feature x time) map, spectral and temporal graph attention + graph pooling,
heterogeneous stacking graph attention with a master node, readout. Every time-mixing operation ignores
padded frames (masked softmax, masked max-pool, masked graph attention and pooling, masked readout), so a
padded batch gives each clip the logits it gets alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_racl import RACLConfig

NEG_INF = float("-inf")


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    if mask is None:
        return F.softmax(scores, dim=dim)
    return F.softmax(scores.masked_fill(~mask, NEG_INF), dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` (broadcastable to x) is True."""
    if mask is None:
        return x.mean(dim=dim)
    mask = mask.to(x.dtype)
    return (x * mask).sum(dim=dim) / mask.sum(dim=dim).clamp_min(1.0)


def masked_max_pool(x: torch.Tensor, time_mask: torch.Tensor, kernel: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pool (B, C, F, T) by ``kernel`` = (kf, kt), padded frames excluded; returns the pooled time mask.

    The time axis is padded with -inf to a multiple of kt so a clip's last partial window pools only its
    own frames (exactly what happens when it is scored alone); the feature axis is floored as usual.
    """
    kf, kt = kernel
    lengths = time_mask.sum(dim=1)
    x = x.masked_fill(~time_mask[:, None, None, :], NEG_INF)
    pad = (-x.shape[-1]) % kt
    if pad:
        x = F.pad(x, (0, pad), value=NEG_INF)
    pooled = F.max_pool2d(x, (kf, kt))
    new_mask = torch.arange(pooled.shape[-1], device=x.device)[None, :] * kt < lengths[:, None]
    return pooled.masked_fill(~new_mask[:, None, None, :], 0.0), new_mask


class ResidualBlock(nn.Module):
    """Pre-activation residual block on (B, C, F, T). Kernel (2, 3) twice, so F and T are preserved.

    AASIST's reference code computes ``conv1`` on the block input and discards its BN+SELU; here the
    pre-activation is used as the design intends.
    """

    def __init__(self, in_channels: int, out_channels: int, first: bool, time_pool: int = 1):
        super().__init__()
        self.time_pool = time_pool
        self.pre = nn.Identity() if first else nn.Sequential(nn.BatchNorm2d(in_channels), nn.SELU())
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.mid = nn.Sequential(nn.BatchNorm2d(out_channels), nn.SELU())
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1)) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor, time_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Re-zero padded frames before every conv: the convs then see exactly the zero padding they would
        # see on the clip alone.
        mask = time_mask[:, None, None, :].to(x.dtype)
        out = self.conv1(self.pre(x) * mask)
        out = self.conv2(self.mid(out) * mask)
        out = (out + self.shortcut(x)) * mask
        if self.time_pool > 1:
            return masked_max_pool(out, time_mask, (1, self.time_pool))
        return out, time_mask


def masked_batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor, node_mask: torch.Tensor | None) -> torch.Tensor:
    """BatchNorm over the nodes of (B, N, D) using only real nodes (padded ones would bias the statistics)."""
    if node_mask is None or not (bn.training or bn.running_mean is None):  # running statistics: no selection needed
        out = bn(x.reshape(-1, x.shape[-1])).view_as(x)
        return out if node_mask is None else out * node_mask.unsqueeze(-1)
    out = torch.zeros_like(x)
    out[node_mask] = bn(x[node_mask])
    return out


class GraphAttention(nn.Module):
    """Graph attention over fully connected nodes (B, N, D); padded nodes are never attended to."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float, dropout: float):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.drop = nn.Dropout(dropout)
        self.temperature = temperature

    def forward(self, x: torch.Tensor, node_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.drop(x)
        pair = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # (B, N, N, out)
        scores = (pair @ self.att_weight).squeeze(-1) / self.temperature  # (B, N, N)
        att = masked_softmax(scores, None if node_mask is None else node_mask[:, None, :], dim=-1)
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(masked_batch_norm(self.bn, out, node_mask))


class HeteroGraphAttention(nn.Module):
    """Heterogeneous stacking graph attention over temporal + spectral nodes, with a master node.

    Attention weights differ for (type1, type1), (type2, type2) and mixed pairs; the master node
    attends over all real nodes.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float, dropout: float):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_proj_master = nn.Linear(in_dim, out_dim)
        # columns: (type1, type1), mixed, (type2, type2) — indexed by type_i + type_j
        self.att_weights = nn.Parameter(torch.empty(out_dim, 3))
        self.att_weight_master = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_att_master = nn.Linear(in_dim, out_dim)
        self.proj_without_att_master = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.drop = nn.Dropout(dropout)
        self.temperature = temperature

    def forward(self, x1, x2, master, mask1=None, mask2=None):
        n1, n2 = x1.shape[1], x2.shape[1]
        x = self.drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))
        mask = self._joint_mask(x, n1, n2, mask1, mask2)
        node_type = torch.cat([x.new_zeros(n1, dtype=torch.long), x.new_ones(n2, dtype=torch.long)])
        pair_type = node_type[:, None] + node_type[None, :]  # (N, N) in {0, 1, 2}
        pair = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # (B, N, N, out)
        scores = (pair @ self.att_weights).gather(-1, pair_type.expand(x.shape[0], -1, -1).unsqueeze(-1)).squeeze(-1)
        att = masked_softmax(scores / self.temperature, None if mask is None else mask[:, None, :], dim=-1)

        master_scores = (torch.tanh(self.att_proj_master(x * master)) @ self.att_weight_master).squeeze(-1) / self.temperature
        master_att = masked_softmax(master_scores, mask, dim=-1)  # (B, N)
        master = self.proj_with_att_master(master_att.unsqueeze(1) @ x) + self.proj_without_att_master(master)

        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        out = F.selu(masked_batch_norm(self.bn, out, mask))
        return out[:, :n1], out[:, n1:], master

    @staticmethod
    def _joint_mask(x, n1, n2, mask1, mask2):
        if mask1 is None and mask2 is None:
            return None
        ones = lambda n: torch.ones(x.shape[0], n, dtype=torch.bool, device=x.device)  # noqa: E731
        return torch.cat([mask1 if mask1 is not None else ones(n1), mask2 if mask2 is not None else ones(n2)], dim=1)


class GraphPool(nn.Module):
    """Keep the top ``ratio`` fraction of each clip's real nodes, scaled by their sigmoid scores."""

    def __init__(self, ratio: float, dim: int, dropout: float):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, node_mask: torch.Tensor | None = None):
        scores = torch.sigmoid(self.proj(self.drop(h)))  # (B, N, 1)
        if node_mask is None:
            k = max(int(h.shape[1] * self.ratio), 1)
            idx = scores.topk(k, dim=1).indices
            return torch.gather(h * scores, 1, idx.expand(-1, -1, h.shape[-1])), None
        keep = (node_mask.sum(dim=1) * self.ratio).long().clamp_min(1)  # per clip, as if alone
        k = keep.max().item()
        torch._check(k <= h.shape[1])  # lets torch.export (ONNX) take the data-dependent k
        ranked = scores.squeeze(-1).masked_fill(~node_mask, NEG_INF)
        idx = ranked.topk(k, dim=1).indices.unsqueeze(-1)
        new_mask = torch.arange(k, device=h.device)[None, :] < keep[:, None]
        pooled = torch.gather(h * scores, 1, idx.expand(-1, -1, h.shape[-1]))
        return pooled * new_mask.unsqueeze(-1), new_mask


class AASISTHead(nn.Module):
    """AASIST on a (B, T, H) feature sequence → readout embedding (B, 5 * gat_dims[1]) and 2 logits.

    A pretrained backbone's aggregated features are first projected to ``aasist_linear_dim``; the sinc and
    filterbank maps are read as they are (``project`` overrides this, e.g. for the bands of a spectral head
    beside an encoder).
    """

    def __init__(self, config: RACLConfig, in_dim: int, project: bool | None = None):
        super().__init__()
        project = config.frontend == "backbone" if project is None else project
        height = config.aasist_linear_dim if project else in_dim  # the map's feature axis
        g0, g1 = config.aasist_gat_dims
        chans = config.aasist_encoder_channels
        t_spec, t_temp, t_het = config.aasist_temperatures
        r_spec, r_temp, r_het = config.aasist_pool_ratios
        gd, pd = config.aasist_graph_dropout, config.aasist_pool_dropout
        enc_out = chans[-1][1]

        self.first_pool = tuple(config.aasist_first_pool)
        self.projection = nn.Linear(in_dim, config.aasist_linear_dim) if project else nn.Identity()
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = nn.ModuleList(
            ResidualBlock(c_in, c_out, first=i == 0, time_pool=config.aasist_block_pool) for i, (c_in, c_out) in enumerate(chans)
        )
        self.map_attention = nn.Sequential(
            nn.Conv2d(enc_out, config.aasist_attention_hidden, kernel_size=1),
            nn.SELU(),
            nn.BatchNorm2d(config.aasist_attention_hidden),
            nn.Conv2d(config.aasist_attention_hidden, enc_out, kernel_size=1),
        )
        self.pos_spectral = nn.Parameter(torch.empty(1, height // self.first_pool[0], enc_out))  # the feature axis after the first pool
        self.gat_spectral = GraphAttention(enc_out, g0, t_spec, gd)
        self.gat_temporal = GraphAttention(enc_out, g0, t_temp, gd)
        self.pool_spectral = GraphPool(r_spec, g0, pd)
        self.pool_temporal = GraphPool(r_temp, g0, pd)
        self.masters = nn.Parameter(torch.empty(2, 1, 1, g0))
        self.branches = nn.ModuleList(_HeteroBranch(g0, g1, t_het, r_het, gd, pd) for _ in range(2))
        self.path_drop = nn.Dropout(config.aasist_path_dropout)
        self.readout_drop = nn.Dropout(config.readout_dropout)
        self.classifier = nn.Linear(5 * g1, config.num_labels + int(config.reconstruction_class))

    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor | None):
        if frame_mask is None:
            frame_mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        x = self.projection(features).transpose(1, 2).unsqueeze(1)  # (B, 1, linear_dim, T)
        x, time_mask = masked_max_pool(x, frame_mask, self.first_pool)
        x = F.selu(self.first_bn(x)) * time_mask[:, None, None, :].to(x.dtype)
        for block in self.encoder:
            x, time_mask = block(x, time_mask)

        weights = self.map_attention(x)  # (B, C, F, T)
        spectral = (x * masked_softmax(weights, time_mask[:, None, None, :], dim=-1)).sum(dim=-1)  # (B, C, F)
        temporal = (x * F.softmax(weights, dim=-2)).sum(dim=-2)  # (B, C, T)
        nodes_s = self.pool_spectral(self.gat_spectral(spectral.transpose(1, 2) + self.pos_spectral))[0]
        nodes_t, mask_t = self.pool_temporal(self.gat_temporal(temporal.transpose(1, 2), time_mask), time_mask)

        outs = [branch(nodes_t, nodes_s, master, mask_t) for branch, master in zip(self.branches, self.masters)]
        (t1, s1, m1, mask_t1), (t2, s2, m2, _) = outs
        drop = self.path_drop
        out_t, out_s, master = torch.maximum(drop(t1), drop(t2)), torch.maximum(drop(s1), drop(s2)), torch.maximum(drop(m1), drop(m2))

        embedding = torch.cat(
            [
                out_t.abs().masked_fill(~mask_t1.unsqueeze(-1), 0).amax(dim=1),
                masked_mean(out_t, mask_t1.unsqueeze(-1), dim=1),
                out_s.abs().amax(dim=1),
                out_s.mean(dim=1),
                master.squeeze(1),
            ],
            dim=1,
        )
        return embedding, self.classifier(self.readout_drop(embedding))


class _HeteroBranch(nn.Module):
    """One of AASIST's two inference branches: hetero GAT → graph pool → hetero GAT (residual)."""

    def __init__(self, g0, g1, temperature, ratio, graph_dropout, pool_dropout):
        super().__init__()
        self.first = HeteroGraphAttention(g0, g1, temperature, graph_dropout)
        self.second = HeteroGraphAttention(g1, g1, temperature, graph_dropout)
        self.pool_t = GraphPool(ratio, g1, pool_dropout)
        self.pool_s = GraphPool(ratio, g1, pool_dropout)

    def forward(self, nodes_t, nodes_s, master, mask_t):
        t, s, master = self.first(nodes_t, nodes_s, master, mask_t, None)
        s, _ = self.pool_s(s)
        t, mask_t = self.pool_t(t, mask_t)
        t_aug, s_aug, m_aug = self.second(t, s, master, mask_t, None)
        return t + t_aug, s + s_aug, master + m_aug, mask_t


__all__ = ["AASISTHead", "GraphAttention", "HeteroGraphAttention", "GraphPool", "ResidualBlock", "masked_mean", "masked_softmax"]
