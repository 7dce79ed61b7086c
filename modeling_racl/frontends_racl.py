"""The front-ends: what turns a 16 kHz waveform into the frames the AASIST head reads.

Four kinds, behind one small interface (:class:`FrontendSpec`) and chosen in one place (:func:`frontend_for`):

- a pretrained wav2vec2-family encoder (Wav2Vec2/XLS-R, WavLM, HuBERT, Data2VecAudio): the L+1 hidden states of
  one pass, which the model's layer aggregation combines;
- Whisper's encoder, on a log-mel the model computes from the waveform, window by window (:mod:`.whisper_racl`);
- the filterbank and sinc front-ends: fixed filters, one map, trained from scratch (:mod:`.signal_racl`).

A spec is a stateless adapter around the module it builds, which is the model's ``backbone``: so the state-dict
keys are the module's own (``backbone.encoder.layers.0...`` for Wav2Vec2, ``backbone.filters`` for sinc), and the
spec says how to run it, which frames are real, the shortest input it takes and how to describe it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import Data2VecAudioModel, HubertModel, Wav2Vec2Model, WavLMModel

from .configuration_racl import WHISPER_HOP_LENGTH, WHISPER_N_FFT, RACLConfig
from .signal_racl import FilterbankFrontend, SincFrontend
from .whisper_racl import WhisperEncoderFrontend


@dataclass
class FrontendOutput:
    """What a front-end gives the model.

    Args:
        frame_mask: (batch, frames) bool, True on real frames; None when every frame is real.
        features: (batch, frames, dim) the map the head reads (front-ends without layers).
        hidden_states: the L+1 (batch, frames, hidden) hidden states of one encoder pass, for the aggregation.
        attentions: the encoder's attention maps, when asked for.
    """

    frame_mask: torch.Tensor | None
    features: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class FrontendSpec:
    """How one kind of front-end is built, run, bounded and described (see the module docstring)."""

    normalize_waveform = True  # whether its feature extractor normalises each clip (XLS-R's preprocessing)

    def __init__(self, config: RACLConfig):
        self.config = config

    @property
    def num_layers(self) -> int | None:
        """Hidden states one pass gives (L+1) for the aggregation; None when the front-end gives one map."""
        return None

    @property
    def feature_dim(self) -> int:
        """Size of a frame's feature vector (what the head reads, before its projection)."""
        raise NotImplementedError

    def build(self) -> nn.Module:
        raise NotImplementedError

    def features(self, module: nn.Module, input_values: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool = False) -> FrontendOutput:
        raise NotImplementedError

    def frame_mask(self, module: nn.Module, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Which of ``num_frames`` output frames come from real samples of each clip (None: all of them)."""
        return module.frame_mask(num_frames, attention_mask)

    @property
    def min_input_samples(self) -> int:
        raise NotImplementedError

    @property
    def description(self) -> str:
        """One sentence for the model card."""
        raise NotImplementedError

    def load_pretrained(self, module: nn.Module, name_or_path: str, **kwargs) -> nn.Module:
        """``module`` with pretrained encoder weights from ``name_or_path`` (Hub id or local folder); only the
        front-ends with layers (``num_layers``) have any."""
        raise NotImplementedError


class _FixedFilterSpec(FrontendSpec):
    """The scratch front-ends: the module maps a waveform to one (batch, frames, dim) map and knows its frames."""

    def features(self, module, input_values, attention_mask, output_attentions=False) -> FrontendOutput:
        features = module(input_values, attention_mask)
        return FrontendOutput(frame_mask=self.frame_mask(module, features.shape[1], attention_mask), features=features)


class SincSpec(_FixedFilterSpec):
    @property
    def feature_dim(self) -> int:
        return self.config.sinc_filters

    def build(self) -> nn.Module:
        return SincFrontend(self.config.sinc_filters, self.config.sinc_kernel_size)

    @property
    def min_input_samples(self) -> int:
        return self.config.sinc_kernel_size  # one filter length

    @property
    def description(self) -> str:
        c = self.config
        return (f"AASIST's raw-waveform front-end ({c.sinc_filters} fixed mel-spaced sinc band-pass filters of "
                f"{c.sinc_kernel_size} taps, no SSL backbone)")


class FilterbankSpec(_FixedFilterSpec):
    @property
    def feature_dim(self) -> int:
        return self.config.filterbank_bins

    def build(self) -> nn.Module:
        c = self.config
        return FilterbankFrontend(c.filterbank_scale, c.filterbank_n_fft, c.filterbank_hop, c.filterbank_bins)

    @property
    def min_input_samples(self) -> int:
        return self.config.filterbank_n_fft  # one STFT window

    @property
    def description(self) -> str:
        c = self.config
        return (f"A filterbank front-end ({c.filterbank_bins} {c.filterbank_scale}-spaced log filterbank energies of a "
                f"{c.filterbank_n_fft}-sample STFT every {c.filterbank_hop} samples, no SSL backbone)")


class _EncoderSpec(FrontendSpec):
    """A pretrained transformers encoder: L+1 hidden states per pass, aggregated by the model."""

    family = "encoder"
    details = ""  # what else the model card should say about the encoder

    @property
    def norm_after_layers(self) -> bool:  # pre-norm transformers end with a layer norm; post-norm ones start with it
        return getattr(self.config.backbone_config, "do_stable_layer_norm", False)

    @property
    def num_layers(self) -> int:
        return self.config.backbone_config.num_hidden_layers + 1

    @property
    def feature_dim(self) -> int:
        return self.config.backbone_config.hidden_size

    @property
    def frame_hop(self) -> int:
        """Samples between two of the encoder's frames (320 = 20 ms for the wav2vec2 family and Whisper)."""
        raise NotImplementedError

    def top_layers(self, module: nn.Module, count: int) -> list[nn.Module]:
        """The last ``count`` transformer layers and the modules that run after them (the final layer norm of
        Whisper and of pre-norm wav2vec2 models such as XLS-R): what stays trainable when the rest is frozen."""
        if count == 0:
            return []
        encoder = module.encoder
        return [*list(encoder.layers)[-count:], *([encoder.layer_norm] if self.norm_after_layers else [])]

    def check_layers(self, hidden_states: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        # transformers records the hidden states as layers run: a layer skipped by layerdrop leaves one out
        if len(hidden_states) != self.num_layers:
            raise RuntimeError(
                f"the backbone gave {len(hidden_states)} hidden states instead of {self.num_layers}: set its "
                "layerdrop (encoder_layerdrop for Whisper) to 0, the aggregation needs every layer"
            )
        return hidden_states

    @property
    def description(self) -> str:
        c = self.config
        source = f"`{c.backbone_name_or_path}`" if c.backbone_name_or_path else "random initialisation"
        return (f"A {self.family} encoder ({source}, {c.backbone_config.num_hidden_layers} layers{self.details}) with "
                f"**{c.aggregation}** multi-layer aggregation")


# The wav2vec2 family: a convolutional feature encoder (20 ms frames) + a transformer. Each model class has the
# helper that maps a sample mask to its frame mask.
SPEECH_ENCODERS = {"wav2vec2": Wav2Vec2Model, "wavlm": WavLMModel, "hubert": HubertModel, "data2vec-audio": Data2VecAudioModel}
FAMILY_NAMES = {"wav2vec2": "Wav2Vec2/XLS-R", "wavlm": "WavLM", "hubert": "HuBERT", "data2vec-audio": "Data2VecAudio"}
# Layers that mix frames after the encoder has zeroed the padding once, so they would carry activations of the
# padding into a clip's own frames (Data2VecAudio's stack of positional convolutions: from the second on, the
# padded frames are no longer zero). Their inputs are re-zeroed past each clip's end, as the clip alone sees them.
PADDING_LEAKS = {"data2vec-audio": ("Data2VecAudioPositionalConvLayer",)}


class SpeechEncoderSpec(_EncoderSpec):
    @property
    def family(self) -> str:
        return FAMILY_NAMES[self.config.backbone_config.model_type]

    def build(self) -> nn.Module:
        return SPEECH_ENCODERS[self.config.backbone_config.model_type](self.config.backbone_config)

    @property
    def frame_hop(self) -> int:
        return math.prod(self.config.backbone_config.conv_stride)

    def features(self, module, input_values, attention_mask, output_attentions=False) -> FrontendOutput:
        num_frames = input_values.shape[1]  # the feature encoder's frame count, in integer arithmetic: also traceable
        for kernel, stride in zip(module.config.conv_kernel, module.config.conv_stride):
            num_frames = (num_frames - kernel) // stride + 1
        frame_mask = self.frame_mask(module, num_frames, attention_mask)
        hooks = self._zero_padding_hooks(module, frame_mask)
        try:
            out = module(input_values, attention_mask=attention_mask, output_hidden_states=True, output_attentions=output_attentions)
        finally:
            for hook in hooks:
                hook.remove()
        return FrontendOutput(frame_mask=frame_mask, hidden_states=self.check_layers(out.hidden_states), attentions=out.attentions)

    def frame_mask(self, module, num_frames, attention_mask):
        if attention_mask is None:
            return None
        return module._get_feature_vector_attention_mask(num_frames, attention_mask)

    def _zero_padding_hooks(self, module: nn.Module, frame_mask: torch.Tensor | None) -> list:
        leaky = PADDING_LEAKS.get(self.config.backbone_config.model_type, ())
        if frame_mask is None or not leaky:
            return []
        keep = frame_mask[:, None, :]  # the leaky layers take (batch, channels, frames)

        def zero_padding(_, args):
            return (args[0] * keep.to(args[0].dtype), *args[1:])

        return [layer.register_forward_pre_hook(zero_padding) for layer in module.modules() if type(layer).__name__ in leaky]

    @property
    def min_input_samples(self) -> int:
        field, hop = 1, 1  # receptive field of the convolutional feature encoder: 400 samples for XLS-R
        for kernel, stride in zip(self.config.backbone_config.conv_kernel, self.config.backbone_config.conv_stride):
            field += (kernel - 1) * hop
            hop *= stride
        return field

    def load_pretrained(self, module, name_or_path, **kwargs):
        # Our config, not the checkpoint's: the architecture must match, the dropout and masking settings are ours.
        return type(module).from_pretrained(name_or_path, config=self.config.backbone_config, **kwargs)


class WhisperSpec(_EncoderSpec):
    family = "Whisper"
    norm_after_layers = True
    normalize_waveform = False  # Whisper's log-mel is computed on the waveform as it is

    @property
    def details(self) -> str:
        c = self.config
        return f" on {c.backbone_config.num_mel_bins}-bin log-mel, {c.whisper_window_seconds:g} s windows"

    @property
    def frame_hop(self) -> int:
        return 2 * WHISPER_HOP_LENGTH  # the mel hop, then the stride-2 convolution

    def build(self) -> nn.Module:
        return WhisperEncoderFrontend(self.config.backbone_config, self.config.whisper_window_samples)

    def features(self, module, input_values, attention_mask, output_attentions=False) -> FrontendOutput:
        if attention_mask is None:  # the last window is padded, so even an unpadded input has padded frames
            attention_mask = torch.ones(input_values.shape, dtype=torch.long, device=input_values.device)
        hidden_states, attentions = module(input_values, attention_mask, output_attentions)
        frame_mask = self.frame_mask(module, hidden_states[0].shape[1], attention_mask)
        return FrontendOutput(frame_mask=frame_mask, hidden_states=self.check_layers(hidden_states), attentions=attentions)

    @property
    def min_input_samples(self) -> int:
        return WHISPER_N_FFT  # one STFT window of real audio

    def load_pretrained(self, module, name_or_path, **kwargs):
        module.load_encoder(name_or_path, **kwargs)
        return module


def frontend_for(config: RACLConfig) -> FrontendSpec:
    """The one place a config's front-end kind is chosen."""
    if config.frontend == "sinc":
        return SincSpec(config)
    if config.frontend == "filterbank":
        return FilterbankSpec(config)
    if config.backbone_config.model_type == "whisper":
        return WhisperSpec(config)
    return SpeechEncoderSpec(config)


__all__ = ["FrontendOutput", "FrontendSpec", "frontend_for", "SPEECH_ENCODERS"]
