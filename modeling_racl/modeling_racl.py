"""RACL detector: front-end → (multi-layer aggregation) → AASIST graph head → 2 logits.

The front-end (``frontends_racl.py``) is a pretrained transformers speech encoder (XLS-R by default; WavLM, HuBERT,
Data2VecAudio, Whisper's encoder), whose L+1 hidden states of one pass the aggregation here combines, or a fixed
filterbank or sinc front-end trained from scratch where no pretrained encoder is at hand. The AASIST head is in
``aasist_racl.py``.

Score polarity (docs/design.md#conventions): ``score = logit[bonafide] - logit[spoof]``, higher = more bona fide.

Shapes are derived from the input, never from a fixed crop: any length works, and a padded batch with
``attention_mask`` gives the same logits (in eval mode) as each clip scored alone, because the front-ends mark
the real frames and every time-mixing operation after them ignores the padded ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .aasist_racl import AASISTHead, GraphAttention, HeteroGraphAttention, masked_mean
from .configuration_racl import WHISPER_N_FFT, RACLConfig
from .familiarity_racl import FamiliarityCheck
from .frontends_racl import FrontendOutput, frontend_for
from .loss_racl import RACLLoss
from .signal_racl import FilterbankFrontend, SincFrontend, SpectralBranch, filterbank_matrix, sinc_band_pass_filters, whisper_mel_filters
from .whisper_racl import WhisperEncoderFrontend


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
            without an SSL backbone); one column per layer of ``config.aggregation_layers`` when it is set.
        familiarity: (batch,) each input's distance to the training audio (``familiarity_racl.py``; above
            ``config.familiarity_threshold`` it is unlike what the detector learnt on); None without a fitted check.
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
    familiarity: torch.FloatTensor | None = None


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

    def __init__(self, mode: str, num_layers: int, hidden_size: int, attention_dim: int, layer_norm: bool = False):
        super().__init__()
        self.mode, self.layer_norm = mode, layer_norm
        if mode == "weighted":
            self.layer_logits = nn.Parameter(torch.zeros(num_layers))
        elif mode == "gated":
            self.gate = nn.Linear(hidden_size, 1)
        elif mode == "attention":
            self.scorer = nn.Sequential(nn.Linear(hidden_size, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1))

    def forward(self, layers: torch.Tensor, frame_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``layers`` (B, L+1, T, H), ``frame_mask`` (B, T) bool → (B, T, H) and per-clip layer weights (B, L+1)."""
        batch, num_layers = layers.shape[:2]
        if self.layer_norm:
            layers = F.layer_norm(layers, layers.shape[-1:])
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
        # A pretrained-encoder backbone is a PreTrainedModel: transformers dispatches its own _init_weights to it.
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
        elif isinstance(module, WhisperEncoderFrontend):
            init.copy_(module.window, torch.hann_window(WHISPER_N_FFT, device="cpu"))
            init.copy_(module.mel_filters, whisper_mel_filters(module.mel_filters.shape[1]))


class RACLForAudioClassification(RACLPreTrainedModel):
    """Front-end (one pass, all hidden states) → aggregation → AASIST → logits, trained with RACL.

    Works with ``AutoModel``/``AutoModelForAudioClassification`` (``trust_remote_code=True``) and
    ``pipeline("audio-classification")``. ``backbone`` is the front-end's module (the transformers encoder, or
    the fixed filters), ``frontend`` the spec that runs it.
    """

    def __init__(self, config: RACLConfig):
        super().__init__(config)
        self.frontend = frontend_for(self.config)
        self.backbone = self.frontend.build()
        num_layers = self.frontend.num_layers if config.aggregation_layers is None else len(config.aggregation_layers)
        self.aggregation = (
            None
            if num_layers is None
            else LayerAggregation(config.aggregation, num_layers, self.frontend.feature_dim, config.aggregation_attention_dim,
                             config.aggregation_layer_norm)
        )
        self.spectral = SpectralBranch(config, self.frontend.frame_hop) if config.spectral_branch else None
        joined_bins = config.filterbank_bins if config.spectral_branch and not config.spectral_branch_head else 0
        self.head = AASISTHead(config, self.frontend.feature_dim + joined_bins)
        # The bands as a map of their own, convolved over frequency as the filterbank front-end's: a projection
        # shared with the encoder's channels mixes them away (docs/design.md#model).
        self.spectral_head = AASISTHead(config, config.filterbank_bins, project=False) if config.spectral_branch_head else None
        self.loss_fn = RACLLoss(config)
        self.familiarity = FamiliarityCheck(config, self.frontend.feature_dim) if config.familiarity_reference_size else None
        self.post_init()

    @classmethod
    def from_pretrained_backbone(cls, config: RACLConfig, backbone_name_or_path: str | None = None, **kwargs):
        """A fresh detector whose backbone starts from pretrained weights (e.g. XLS-R 300M from the Hub, or a
        local folder saved by transformers; for Whisper a ``WhisperModel``/``WhisperForConditionalGeneration``
        folder, of which the encoder is loaded).

        The backbone architecture must match ``config.backbone_config``; its dropout/masking settings are ours.
        """
        name = backbone_name_or_path or config.backbone_name_or_path
        if frontend_for(config).num_layers is None:
            raise ValueError(f"frontend={config.frontend!r} has no pretrained backbone to load; use frontend='backbone'")
        if not name:
            raise ValueError("no backbone checkpoint: set config.backbone_name_or_path or pass backbone_name_or_path")
        model = cls(config)
        model.backbone = model.frontend.load_pretrained(model.backbone, name, **kwargs)
        return model

    def freeze_feature_encoder(self):
        """Stop gradients through the convolutional feature encoder (common for SSL fine-tuning).

        Whisper's encoder has no separate feature encoder (its two convolutions are trained with the layers), and
        the sinc and filterbank front-ends are fixed already: nothing to do there."""
        if hasattr(self.backbone, "freeze_feature_encoder"):
            self.backbone.freeze_feature_encoder()

    def freeze_backbone(self):
        """Train only the aggregation and the AASIST head."""
        for p in self.backbone.parameters():
            p.requires_grad = False

    def freeze_backbone_layers(self, trainable_layers: int):
        """Freeze the backbone except its top ``trainable_layers`` transformer layers (and the layer norm after them):
        the lower layers' general speech features stay as pretrained, and training costs a forward pass through them
        plus a backward pass through the top only."""
        if self.aggregation is None:
            raise ValueError(f"frontend={self.config.frontend!r} has no pretrained layers to freeze")
        num_layers = self.frontend.num_layers - 1
        if not 0 <= trainable_layers <= num_layers:
            raise ValueError(f"trainable_layers must be between 0 and the backbone's {num_layers} layers, got {trainable_layers}")
        self.freeze_backbone()
        for module in self.frontend.top_layers(self.backbone, trainable_layers):
            for p in module.parameters():
                p.requires_grad = True

    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        return self.frontend.frame_mask(self.backbone, num_frames, attention_mask)

    def features(self, input_values, attention_mask, output_attentions=False, layer_states=None, layer_mask=None, spectral_states=None):
        """Front-end pass → (features (B, T, H), frame mask, the front-end's output, layer weights or None,
        the spectral head's normalised bands (B, T, bins) or None).

        ``layer_states`` (B, L+1, T, H) with ``layer_mask`` (B, T) are the front-end's hidden states computed
        before (a frozen backbone's, cached once for a whole training run): the front-end is skipped; with the
        spectral branch, ``spectral_states`` (B, T, bins) are its frames, computed with them."""
        if layer_states is not None:
            if self.aggregation is None:
                raise ValueError(f"frontend={self.config.frontend!r} has no backbone layers to take as layer_states")
            out = FrontendOutput(frame_mask=layer_mask, hidden_states=tuple(layer_states.unbind(dim=1)))
        else:
            out = self.frontend.features(self.backbone, input_values, attention_mask, output_attentions)
        if self.aggregation is None:
            return out.features, out.frame_mask, out, None, None
        layers = layer_states if layer_states is not None else torch.stack(out.hidden_states, dim=1)  # one pass, all layers
        if self.config.aggregation_layers is not None:
            layers = layers[:, self.config.aggregation_layers]
        features, layer_weights = self.aggregation(layers, out.frame_mask)
        if self.spectral is not None:
            if spectral_states is None:
                if input_values is None:
                    raise ValueError("spectral_branch: give spectral_states with layer_states (or the waveforms)")
                spectral_states = self.spectral.frames(input_values, attention_mask, features.shape[1])
            bands = self.spectral(spectral_states.to(features.dtype))
            if self.spectral_head is not None:
                return features, out.frame_mask, out, layer_weights, bands
            if self.training and self.config.spectral_branch_dropout > 0:
                features = features * self.keep_encoder(features.shape[0], features)[:, :, None]  # judged from the spectrum alone
            features = torch.cat([features, bands], dim=-1)
        return features, out.frame_mask, out, layer_weights, None

    def keep_encoder(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(B, 1): 0 for the clips that ``spectral_branch_dropout`` leaves to the spectral branch alone."""
        return (torch.rand(batch, 1, device=like.device) >= self.config.spectral_branch_dropout).to(like.dtype)

    def heads(self, features, frame_mask, bands) -> tuple[torch.Tensor, torch.Tensor]:
        """The AASIST head(s) → (embedding, logits); with a spectral head, both heads' readouts concatenated and
        their logits summed."""
        embeddings, logits = self.head(features, frame_mask)
        if bands is None:
            return embeddings, logits
        band_embeddings, band_logits = self.spectral_head(bands, frame_mask)
        if self.training and self.config.spectral_branch_dropout > 0:
            keep = self.keep_encoder(logits.shape[0], logits)
            embeddings, logits = embeddings * keep, logits * keep
        return torch.cat([embeddings, band_embeddings], dim=-1), logits + band_logits

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        is_reconstructed: torch.Tensor | None = None,
        source_ids: torch.Tensor | None = None,
        layer_states: torch.Tensor | None = None,
        layer_mask: torch.Tensor | None = None,
        spectral_states: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RACLOutput | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch, samples)`): 16 kHz waveforms, as the saved
            `Wav2Vec2FeatureExtractor` prepares them (normalised per clip, except for a Whisper backbone).
        attention_mask (`torch.LongTensor` of shape `(batch, samples)`): 1 for real samples, 0 for padding.
        labels (`torch.LongTensor` of shape `(batch,)`): 0 = bonafide, 1 = spoof; computes the RACL loss.
        is_reconstructed (`torch.BoolTensor` of shape `(batch,)`): marks reconstructions (hard samples) for Lenh.
        source_ids (`torch.LongTensor` of shape `(batch,)`): ids of the original clip each row derives from;
            restricts Lenh's negatives to an anchor's own reconstructions when given.
        layer_states (`torch.FloatTensor` of shape `(batch, L+1, frames, hidden)`): instead of `input_values`, the
            backbone's hidden states of the waveforms, computed before (a frozen backbone's, cached for training).
        layer_mask (`torch.BoolTensor` of shape `(batch, frames)`): the real frames of `layer_states`.
        spectral_states (`torch.FloatTensor` of shape `(batch, frames, filterbank_bins)`): with `layer_states` and
            `config.spectral_branch`, the branch's frames of the waveforms (`model.spectral.frames`).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if (input_values is None) == (layer_states is None):
            raise ValueError("give either input_values (waveforms) or layer_states (precomputed backbone hidden states)")
        if labels is not None and is_reconstructed is None and self.config.reconstruction_class:
            raise ValueError("reconstruction_class trains an output for reconstructions: give is_reconstructed with labels")
        features, frame_mask, frontend_out, layer_weights, bands = self.features(
            input_values, attention_mask, output_attentions, layer_states, layer_mask, spectral_states)
        embeddings, outputs = self.heads(features, frame_mask, bands)
        # with a reconstruction output: (bona fide, spoof) = (bona fide, log-sum-exp of the two spoof outputs)
        logits = torch.cat([outputs[:, :1], outputs[:, 1:].logsumexp(dim=1, keepdim=True)], dim=1) if outputs.shape[1] > 2 else outputs

        losses = None
        if labels is not None:
            losses = self.loss_fn(outputs, embeddings, labels.to(outputs.device), is_reconstructed, source_ids)

        want_hidden = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        out = RACLOutput(
            loss=None if losses is None else losses.loss,
            logits=logits,
            embeddings=embeddings,
            hidden_states=frontend_out.hidden_states if want_hidden else None,
            attentions=frontend_out.attentions if output_attentions else None,
            loss_cls=None if losses is None else losses.cls,
            loss_std=None if losses is None else losses.std,
            loss_enh=None if losses is None else losses.enh,
            loss_reg=None if losses is None else losses.reg,
            layer_weights=layer_weights,
            familiarity=None if self.familiarity is None else self.familiarity(frontend_out.hidden_states, frame_mask),
        )
        return out if return_dict else out.to_tuple()

    def set_familiarity(self, reference: torch.Tensor, threshold: float) -> None:
        """Store a fitted familiarity check (``racl.evaluation.familiarity`` fits it): the (N, H) unit-length pooled states of
        training windows of layer ``config.familiarity_layer``, and the distance above which audio is unfamiliar."""
        if self.config.familiarity_layer is None:
            raise ValueError("config.familiarity_layer is not set: which backbone layer the check reads")
        self.config.familiarity_reference_size, self.config.familiarity_threshold = int(reference.shape[0]), float(threshold)
        check = FamiliarityCheck(self.config, self.frontend.feature_dim)
        check.reference.copy_(reference)
        self.familiarity = check.to(next(self.parameters()).device)

    @staticmethod
    def pad_layer_states(states: list[torch.Tensor], spectral: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Ragged clips as ``forward``'s precomputed inputs: (frames, L+1, H) hidden states → ``layer_states``
        (B, L+1, T, H) zero-padded and ``layer_mask`` (B, T); their (frames, bins) spectral branch frames →
        ``spectral_states`` (B, T, bins). Device and dtype are the clips'."""
        length = max(len(clip) for clip in states)
        layer_states = states[0].new_zeros(len(states), length, *states[0].shape[1:])
        layer_mask = torch.zeros(len(states), length, dtype=torch.bool, device=states[0].device)
        for i, clip in enumerate(states):
            layer_states[i, : len(clip)], layer_mask[i, : len(clip)] = clip, True
        inputs = {"layer_states": layer_states.transpose(1, 2), "layer_mask": layer_mask}
        if spectral is not None:
            inputs["spectral_states"] = spectral[0].new_zeros(len(states), length, spectral[0].shape[-1])
            for i, clip in enumerate(spectral):
                inputs["spectral_states"][i, : len(clip)] = clip
        return inputs

    # ---- scores and probabilities (docs/design.md#conventions) ----
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

__all__ = ["RACLOutput", "RACLPreTrainedModel", "RACLForAudioClassification", "LayerAggregation", "SpectralBranch", "AASISTHead", "SincFrontend", "FilterbankFrontend", "WhisperEncoderFrontend"]
