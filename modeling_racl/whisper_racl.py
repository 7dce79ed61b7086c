"""Whisper's encoder as a RACL front-end: the 16 kHz waveform in, all L+1 hidden states out.

The model takes the waveform (``input_values``) like every other front-end, so ``pipeline("audio-classification")``,
the scoring CLI and the Space work unchanged: the log-mel is computed here (:func:`.signal_racl.whisper_log_mel`),
with its window and mel filters saved as buffers with the weights.

transformers' Whisper encoder takes exactly ``2 * max_source_positions`` mel frames (3000, 30 s, pretrained). The
config sets ``max_source_positions`` to one window of ``whisper_window_seconds`` instead, and the pretrained position
table is truncated to it on load; the same window serves training and scoring. A longer input is encoded window
by window and the frames concatenated, a shorter one (and the last window) zero-padded. Whisper's attention takes
no mask, but a clip's windows hold the same samples and zeros whether it is alone or in a padded batch, so its
frames are the same; the padded frames are masked for the head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import WhisperConfig, WhisperForAudioClassification
from transformers.models.whisper.modeling_whisper import WhisperEncoder
from transformers.utils import logging

from .configuration_racl import WHISPER_HOP_LENGTH, WHISPER_N_FFT
from .signal_racl import whisper_log_mel, whisper_mel_filters


class WhisperEncoderFrontend(nn.Module):
    """Waveform (B, S) → the L+1 hidden states (B, frames, d_model) of Whisper's encoder, 50 frames/s."""

    def __init__(self, config: WhisperConfig, window_samples: int):
        super().__init__()
        self.window_samples = window_samples
        self.encoder = WhisperEncoder(config)
        # A periodic Hann window is a view into a longer one: cloned, or safetensors refuses the shared storage.
        self.register_buffer("window", torch.hann_window(WHISPER_N_FFT, device="cpu").clone())
        self.register_buffer("mel_filters", whisper_mel_filters(config.num_mel_bins))

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) zero-padded waveforms → (B * windows, num_mel_bins, window frames) in the encoder's dtype."""
        batch, samples = waveform.shape
        num_windows = max(1, -(-samples // self.window_samples))
        windows = F.pad(waveform, (0, num_windows * self.window_samples - samples)).reshape(batch * num_windows, self.window_samples)
        # float32 whatever the encoder's dtype: the STFT and the log need it
        mel = whisper_log_mel(windows.float(), self.window.float(), self.mel_filters.float())
        return mel.to(self.encoder.conv1.weight.dtype)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor, output_attentions: bool = False):
        """→ (hidden states, each (B, windows * window frames, d_model); attentions, one row per window, or None)."""
        batch = input_values.shape[0]
        out = self.encoder(
            self.log_mel(input_values * attention_mask.to(input_values.dtype)),  # padding must be zeros, as when alone
            output_hidden_states=True,
            output_attentions=output_attentions,
        )
        hidden_states = tuple(h.reshape(batch, -1, h.shape[-1]) for h in out.hidden_states)
        return hidden_states, out.attentions if output_attentions else None

    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        if attention_mask is None:
            return None
        # Mel frames are centred: a clip of n samples has ceil(n / hop) frames centred on its own samples, and the
        # stride-2 convolution keeps ceil(frames / 2). Windows are a whole number of encoder frames long, so the
        # per-window counts add up to the count of the whole clip.
        mel_lengths = (attention_mask.sum(dim=1) + WHISPER_HOP_LENGTH - 1) // WHISPER_HOP_LENGTH
        lengths = self.encoder._get_feat_extract_output_lengths(mel_lengths)
        return torch.arange(num_frames, device=attention_mask.device)[None, :] < lengths[:, None]

    def load_encoder(self, name_or_path: str, **kwargs) -> None:
        """Encoder weights of a Whisper checkpoint: a Hub id or a folder saved from ``WhisperModel`` or
        ``WhisperForConditionalGeneration`` (the decoder is not read), positions truncated to one window."""
        # WhisperForAudioClassification holds the encoder alone, and transformers maps both checkpoint layouts
        # (``encoder.*``, ``model.encoder.*``) onto it; its own head stays unused. Its load report (every decoder
        # key unexpected) is silenced: the encoder keys are checked here instead.
        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()
        try:
            source, info = WhisperForAudioClassification.from_pretrained(name_or_path, output_loading_info=True, **kwargs)
        finally:
            logging.set_verbosity(verbosity)
        missing = [key for key in info["missing_keys"] if key.startswith("encoder.")]
        if missing:
            raise ValueError(f"{name_or_path} holds no Whisper encoder weights (missing {missing[0]} and {len(missing) - 1} more)")
        state = source.encoder.state_dict()
        positions = self.encoder.embed_positions.num_embeddings
        table = state["embed_positions.weight"]
        if table.shape[0] < positions:
            raise ValueError(f"{name_or_path} has {table.shape[0]} positions, fewer than one {positions}-frame window")
        state["embed_positions.weight"] = table[:positions]  # the first positions: a shorter input, the same positions
        self.encoder.load_state_dict(state)  # strict: the architecture must match the config's


__all__ = ["WhisperEncoderFrontend"]
