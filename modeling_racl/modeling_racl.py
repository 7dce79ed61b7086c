"""RACL detector: Wav2Vec2/XLS-R backbone → multi-layer aggregation → AASIST graph head → 2 logits.

``frontend="sinc"`` swaps the backbone + aggregation for AASIST's original raw-waveform front-end (a
fixed mel-spaced sinc filter bank), ``frontend="filterbank"`` for log filterbank energies of a short-time
Fourier transform: both train from scratch where no pretrained XLS-R is at hand.

Score polarity (DESIGN.md section 4): ``score = logit[bonafide] - logit[spoof]``, higher = more bona fide.

Shapes are derived from the input, never from a fixed crop: any length works, and a padded batch
with ``attention_mask`` gives the same logits (in eval mode) as each clip scored alone, because every
time-mixing operation below ignores padded frames (masked softmax, masked max-pool, masked graph
attention and pooling, masked readout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, Wav2Vec2Model
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_racl import SAMPLING_RATE, RACLConfig
from .loss_racl import RACLLoss

NEG_INF = float("-inf")


@dataclass
class RACLOutput(ModelOutput):
    """``SequenceClassifierOutput`` fields (loss, logits, hidden_states, attentions) plus RACL's extras.

    Args:
        loss: the RACL objective when ``labels`` are given.
        logits: (batch, 2) for (bonafide, spoof).
        embeddings: (batch, 5 * aasist_gat_dims[1]) readout vector the contrastive terms work on.
        hidden_states / attentions: the backbone's, when asked for.
        loss_cls / loss_std / loss_enh / loss_reg: the unweighted RACL terms, for logging.
        layer_weights: (batch, L+1) how much each backbone layer contributed (aggregation diagnostics; None
            without an SSL backbone).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    loss_cls: torch.FloatTensor | None = None
    loss_std: torch.FloatTensor | None = None
    loss_enh: torch.FloatTensor | None = None
    loss_reg: torch.FloatTensor | None = None
    layer_weights: torch.FloatTensor | None = None


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


# --------------------------------------------------------------------------------------------------
# Multi-layer aggregation
# --------------------------------------------------------------------------------------------------


class LayerAggregation(nn.Module):
    """Combine the L+1 hidden states of one backbone pass into one (batch, time, hidden) sequence.

    - ``weighted``: one softmax weight per layer, shared by all clips (SUPERB-style weighted sum).
    - ``gated``: SLS-style; each layer's time-pooled summary gives a sigmoid gate per clip and layer.
    - ``attention``: per-frame attention over layers (a small MLP scores each layer at each frame).
    - ``last``: the last layer only (single-layer baseline).
    """

    def __init__(self, mode: str, num_layers: int, hidden_size: int, attention_dim: int):
        super().__init__()
        self.mode = mode
        if mode == "weighted":
            self.layer_logits = nn.Parameter(torch.zeros(num_layers))
        elif mode == "gated":
            self.gate = nn.Linear(hidden_size, 1)
        elif mode == "attention":
            self.scorer = nn.Sequential(nn.Linear(hidden_size, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1))

    def forward(self, layers: torch.Tensor, frame_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``layers`` (B, L+1, T, H), ``frame_mask`` (B, T) bool → (B, T, H) and per-clip layer weights (B, L+1)."""
        batch, num_layers = layers.shape[:2]
        if self.mode == "last":
            weights = torch.zeros(batch, num_layers, device=layers.device, dtype=layers.dtype)
            weights[:, -1] = 1
            return layers[:, -1], weights
        if self.mode == "weighted":
            weights = F.softmax(self.layer_logits, dim=0).to(layers.dtype).expand(batch, -1)
            return torch.einsum("bl,blth->bth", weights, layers), weights
        if self.mode == "gated":
            mask = None if frame_mask is None else frame_mask[:, None, :, None]
            summary = masked_mean(layers, mask, dim=2)  # (B, L+1, H)
            gates = torch.sigmoid(self.gate(summary)).squeeze(-1)  # (B, L+1)
            weights = gates / gates.sum(dim=1, keepdim=True)
            return torch.einsum("bl,blth->bth", weights, layers), weights
        # attention: a distribution over layers at every frame
        frame_weights = F.softmax(self.scorer(layers).squeeze(-1), dim=1)  # (B, L+1, T)
        combined = (frame_weights.unsqueeze(-1) * layers).sum(dim=1)
        mask = None if frame_mask is None else frame_mask[:, None, :]
        return combined, masked_mean(frame_weights, mask, dim=2)


# --------------------------------------------------------------------------------------------------
# Sinc front-end (AASIST's raw-waveform form, after RawNet2): fixed band-pass filters, no backbone
# --------------------------------------------------------------------------------------------------


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def sinc_band_pass_filters(num_filters: int, kernel_size: int, sample_rate: int = SAMPLING_RATE) -> torch.Tensor:
    """(num_filters, kernel_size) Hamming-windowed ideal band-pass filters, band edges equally spaced in mel
    from 0 Hz to Nyquist: each filter is the difference of two windowed-sinc low-passes."""
    nyquist_mel = 2595.0 * math.log10(1.0 + sample_rate / 2.0 / 700.0)
    # Built on the CPU explicitly: transformers may construct the model under a meta-device context.
    edges = mel_to_hz(torch.linspace(0.0, nyquist_mel, num_filters + 1, dtype=torch.float64, device="cpu"))
    t = torch.arange(kernel_size, dtype=torch.float64, device="cpu") - (kernel_size - 1) / 2  # symmetric support, in samples

    def low_pass(cutoff_hz: torch.Tensor) -> torch.Tensor:
        normalised = 2.0 * cutoff_hz[:, None] / sample_rate
        return normalised * torch.sinc(normalised * t[None, :])

    window = torch.hamming_window(kernel_size, periodic=False, dtype=torch.float64, device="cpu")
    return ((low_pass(edges[1:]) - low_pass(edges[:-1])) * window).float()


class SincFrontend(nn.Module):
    """Waveform (B, S) → |band-pass outputs| (B, S, num_filters): the (time x frequency) map AASIST reads.

    The filters are fixed (as in AASIST) and stored as a buffer so a saved model carries them. "Same"
    padding keeps one frame per sample, so the frame mask is the attention mask itself.
    """

    def __init__(self, num_filters: int, kernel_size: int):
        super().__init__()
        self.register_buffer("filters", sinc_band_pass_filters(num_filters, kernel_size).unsqueeze(1))

    def forward(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None:
            waveform = waveform * attention_mask.to(waveform.dtype)  # padding must be zeros, as when alone
        bands = F.conv1d(waveform.unsqueeze(1), self.filters.to(waveform.dtype), padding=self.filters.shape[-1] // 2)
        return bands.abs().transpose(1, 2)

    @staticmethod
    def frame_mask(num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if attention_mask is None else attention_mask.bool()  # one frame per sample


# --------------------------------------------------------------------------------------------------
# Filterbank front-end: log energies of fixed linear- or mel-spaced filters on a short-time spectrum
# --------------------------------------------------------------------------------------------------


def filterbank_matrix(scale: str, n_fft: int, num_bins: int, sample_rate: int = SAMPLING_RATE) -> torch.Tensor:
    """(n_fft // 2 + 1, num_bins) triangular filters from 0 Hz to Nyquist, linear or mel (HTK) spaced.

    The same triangles as torchaudio's ``linear_fbanks`` / ``melscale_fbanks(norm=None)`` (tested equal), written
    here because the Hub remote code may import only torch and transformers.
    """
    # Built on the CPU explicitly: transformers may construct the model under a meta-device context.
    bin_hz = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, device="cpu")
    if scale == "linear":
        edges = torch.linspace(0.0, sample_rate / 2, num_bins + 2, device="cpu")
    else:
        edges = mel_to_hz(torch.linspace(0.0, 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0), num_bins + 2, device="cpu"))
    width = edges.diff()
    offset = edges[None, :] - bin_hz[:, None]  # (freqs, num_bins + 2)
    rising = -offset[:, :-2] / width[:-1]
    falling = offset[:, 2:] / width[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class FilterbankFrontend(nn.Module):
    """Waveform (B, S) → log filterbank energies (B, frames, num_bins): the (time x frequency) map AASIST reads.

    Frames are not centred (no edge padding): a frame exists only where a whole window fits, so the frames
    of a clip inside a zero-padded batch are exactly those of the clip alone, and ``frame_mask`` marks them.
    """

    def __init__(self, scale: str, n_fft: int, hop: int, num_bins: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        # A periodic Hann window is a view into a longer one: cloned, or safetensors refuses the shared storage.
        self.register_buffer("window", torch.hann_window(n_fft, device="cpu").clone())
        self.register_buffer("filters", filterbank_matrix(scale, n_fft, num_bins))

    def forward(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        spec = torch.stft(waveform, self.n_fft, self.hop, window=self.window.to(waveform.dtype), center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, freqs, frames)
        return torch.log(power.transpose(1, 2) @ self.filters.to(power.dtype) + 1e-6)

    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        if attention_mask is None:
            return None
        lengths = attention_mask.sum(dim=1)
        starts = torch.arange(num_frames, device=attention_mask.device) * self.hop
        return starts[None, :] + self.n_fft <= lengths[:, None]


# --------------------------------------------------------------------------------------------------
# AASIST head (Jung et al., 2022), in the SSL front-end form: residual encoder on the (feature x time)
# map, spectral and temporal graph attention + graph pooling, heterogeneous stacking graph attention
# with a master node, readout.
# --------------------------------------------------------------------------------------------------


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
    if node_mask is None:
        return bn(x.reshape(-1, x.shape[-1])).view_as(x)
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
        k = int(keep.max())
        ranked = scores.squeeze(-1).masked_fill(~node_mask, NEG_INF)
        idx = ranked.topk(k, dim=1).indices.unsqueeze(-1)
        new_mask = torch.arange(k, device=h.device)[None, :] < keep[:, None]
        pooled = torch.gather(h * scores, 1, idx.expand(-1, -1, h.shape[-1]))
        return pooled * new_mask.unsqueeze(-1), new_mask


class AASISTHead(nn.Module):
    """AASIST on a (B, T, H) feature sequence → readout embedding (B, 5 * gat_dims[1]) and 2 logits.

    SSL features are first projected to ``aasist_linear_dim``; the sinc and filterbank maps are read as they are.
    """

    def __init__(self, config: RACLConfig, in_dim: int):
        super().__init__()
        g0, g1 = config.aasist_gat_dims
        chans = config.aasist_encoder_channels
        t_spec, t_temp, t_het = config.aasist_temperatures
        r_spec, r_temp, r_het = config.aasist_pool_ratios
        gd, pd = config.aasist_graph_dropout, config.aasist_pool_dropout
        enc_out = chans[-1][1]

        self.first_pool = tuple(config.aasist_first_pool)
        self.projection = nn.Linear(in_dim, config.aasist_linear_dim) if config.frontend == "wav2vec2" else nn.Identity()
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
        self.pos_spectral = nn.Parameter(torch.empty(1, config.num_spectral_nodes, enc_out))
        self.gat_spectral = GraphAttention(enc_out, g0, t_spec, gd)
        self.gat_temporal = GraphAttention(enc_out, g0, t_temp, gd)
        self.pool_spectral = GraphPool(r_spec, g0, pd)
        self.pool_temporal = GraphPool(r_temp, g0, pd)
        self.masters = nn.Parameter(torch.empty(2, 1, 1, g0))
        self.branches = nn.ModuleList(_HeteroBranch(g0, g1, t_het, r_het, gd, pd) for _ in range(2))
        self.path_drop = nn.Dropout(config.aasist_path_dropout)
        self.readout_drop = nn.Dropout(config.readout_dropout)
        self.classifier = nn.Linear(5 * g1, config.num_labels)

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


# --------------------------------------------------------------------------------------------------
# Pretrained-model classes
# --------------------------------------------------------------------------------------------------


class RACLPreTrainedModel(PreTrainedModel):
    config_class = RACLConfig
    config: RACLConfig
    base_model_prefix = "racl"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True

    def _init_weights(self, module):
        # The backbone is a PreTrainedModel: transformers dispatches its own _init_weights to it.
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))  # PyTorch's default, as AASIST trains with
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if module.running_mean is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
        elif isinstance(module, LayerAggregation) and module.mode == "weighted":
            init.zeros_(module.layer_logits)  # start as a plain average of the layers
        elif isinstance(module, GraphAttention):
            init.xavier_normal_(module.att_weight)
        elif isinstance(module, HeteroGraphAttention):
            init.xavier_normal_(module.att_weights)
            init.xavier_normal_(module.att_weight_master)
        elif isinstance(module, AASISTHead):
            init.normal_(module.pos_spectral)
            init.normal_(module.masters)
        elif isinstance(module, SincFrontend):
            init.copy_(module.filters, sinc_band_pass_filters(*module.filters.shape[::2]).unsqueeze(1))
        elif isinstance(module, FilterbankFrontend):
            config = self.config
            init.copy_(module.window, torch.hann_window(config.filterbank_n_fft, device="cpu"))
            init.copy_(module.filters, filterbank_matrix(config.filterbank_scale, config.filterbank_n_fft, config.filterbank_bins))


class RACLForAudioClassification(RACLPreTrainedModel):
    """XLS-R (one pass, all hidden states) → aggregation → AASIST → logits, trained with RACL.

    Works with ``AutoModel``/``AutoModelForAudioClassification`` (``trust_remote_code=True``) and
    ``pipeline("audio-classification")``.
    """

    def __init__(self, config: RACLConfig):
        super().__init__(config)
        if config.frontend == "sinc":
            self.backbone = SincFrontend(config.sinc_filters, config.sinc_kernel_size)
            self.aggregation = None
            self.head = AASISTHead(config, config.sinc_filters)
        elif config.frontend == "filterbank":
            self.backbone = FilterbankFrontend(config.filterbank_scale, config.filterbank_n_fft, config.filterbank_hop, config.filterbank_bins)
            self.aggregation = None
            self.head = AASISTHead(config, config.filterbank_bins)
        else:
            bb = config.backbone_config
            self.backbone = Wav2Vec2Model(bb)
            self.aggregation = LayerAggregation(config.aggregation, bb.num_hidden_layers + 1, bb.hidden_size, config.aggregation_attention_dim)
            self.head = AASISTHead(config, bb.hidden_size)
        self.loss_fn = RACLLoss(config)
        self.post_init()

    @classmethod
    def from_pretrained_backbone(cls, config: RACLConfig, backbone_name_or_path: str | None = None, **kwargs):
        """A fresh detector whose backbone starts from pretrained weights (e.g. XLS-R 300M from the Hub).

        The backbone architecture must match ``config.backbone_config``; its dropout/masking settings are ours.
        """
        name = backbone_name_or_path or config.backbone_name_or_path
        if config.frontend != "wav2vec2":
            raise ValueError(f"frontend={config.frontend!r} has no pretrained backbone to load; use frontend='wav2vec2'")
        if not name:
            raise ValueError("no backbone checkpoint: set config.backbone_name_or_path or pass backbone_name_or_path")
        model = cls(config)
        model.backbone = Wav2Vec2Model.from_pretrained(name, config=config.backbone_config, **kwargs)
        return model

    def freeze_feature_encoder(self):
        """Stop gradients through the convolutional feature encoder (common for SSL fine-tuning).

        The sinc and filterbank front-ends are fixed already: nothing to do there."""
        if isinstance(self.backbone, Wav2Vec2Model):
            self.backbone.freeze_feature_encoder()

    def freeze_backbone(self):
        """Train only the aggregation and the AASIST head."""
        for p in self.backbone.parameters():
            p.requires_grad = False

    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        if not isinstance(self.backbone, Wav2Vec2Model):  # the scratch front-ends know their own frames
            return self.backbone.frame_mask(num_frames, attention_mask)
        if attention_mask is None:
            return None
        return self.backbone._get_feature_vector_attention_mask(num_frames, attention_mask)

    def features(self, input_values, attention_mask, output_attentions):
        """Front-end pass → (features (B, T, H), frame mask, backbone output or None, layer weights or None)."""
        if not isinstance(self.backbone, Wav2Vec2Model):
            features = self.backbone(input_values, attention_mask)
            return features, self.frame_mask(features.shape[1], attention_mask), None, None
        backbone_out = self.backbone(
            input_values, attention_mask=attention_mask, output_hidden_states=True, output_attentions=output_attentions
        )
        layers = torch.stack(backbone_out.hidden_states, dim=1)  # (B, L+1, T, H): one pass, all layers
        frame_mask = self.frame_mask(layers.shape[2], attention_mask)
        features, layer_weights = self.aggregation(layers, frame_mask)
        return features, frame_mask, backbone_out, layer_weights

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        is_reconstructed: torch.Tensor | None = None,
        source_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RACLOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch, samples)`): 16 kHz waveforms, normalised by
            `Wav2Vec2FeatureExtractor`.
        attention_mask (`torch.LongTensor` of shape `(batch, samples)`): 1 for real samples, 0 for padding.
        labels (`torch.LongTensor` of shape `(batch,)`): 0 = bonafide, 1 = spoof; computes the RACL loss.
        is_reconstructed (`torch.BoolTensor` of shape `(batch,)`): marks reconstructions (hard samples) for Lenh.
        source_ids (`torch.LongTensor` of shape `(batch,)`): ids of the original clip each row derives from;
            restricts Lenh's negatives to an anchor's own reconstructions when given.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        features, frame_mask, backbone_out, layer_weights = self.features(input_values, attention_mask, output_attentions)
        embeddings, logits = self.head(features, frame_mask)

        losses = None
        if labels is not None:
            losses = self.loss_fn(logits, embeddings, labels.to(logits.device), is_reconstructed, source_ids)

        want_hidden = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        out = RACLOutput(
            loss=None if losses is None else losses.loss,
            logits=logits,
            embeddings=embeddings,
            hidden_states=backbone_out.hidden_states if want_hidden and backbone_out is not None else None,
            attentions=backbone_out.attentions if output_attentions and backbone_out is not None else None,
            loss_cls=None if losses is None else losses.cls,
            loss_std=None if losses is None else losses.std,
            loss_enh=None if losses is None else losses.enh,
            loss_reg=None if losses is None else losses.reg,
            layer_weights=layer_weights,
        )
        return out if return_dict else out.to_tuple()

    # ---- scores and probabilities (DESIGN.md section 4) ----
    @staticmethod
    def scores_from_logits(logits: torch.Tensor) -> torch.Tensor:
        """``logit[bonafide] - logit[spoof]``: higher = more bona fide."""
        return logits[..., 0] - logits[..., 1]

    def bonafide_probability(self, scores: torch.Tensor) -> torch.Tensor:
        """Calibrated p(bonafide) = sigmoid(scale * score + bias), fitted on the validation split."""
        return torch.sigmoid(self.config.calibration_scale * scores + self.config.calibration_bias)

    def save_pretrained(self, save_directory, *args, **kwargs):
        # One class serves both AutoModel and AutoModelForAudioClassification: users reach the detector either way.
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map["AutoModel"] = "modeling_racl.RACLForAudioClassification"
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)


RACLConfig.register_for_auto_class()
RACLForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = ["RACLOutput", "RACLPreTrainedModel", "RACLForAudioClassification", "LayerAggregation", "AASISTHead", "SincFrontend", "FilterbankFrontend"]
