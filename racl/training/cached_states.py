"""Training on a frozen backbone's hidden states, computed once: the backbone pass leaves the training loop.

With the whole backbone frozen, its L+1 hidden states of a clip never change during training, so they are
computed once per clip (``datasets``' ``map``, float16) and the loop trains the aggregation and the head on random
crops of them. The map's fingerprint is the split's and the backbone's (weights, window), so a rerun, or another
head or aggregation on the same backbone, reuses them from the datasets cache.

Waveform augmentation cannot apply to fixed hidden states: a config asking for both is refused. Validation, test
and the saved model go through the waveform as usual, so what is scored is the model users load.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from datasets import Array3D, Features

from ..audio import decode_audio_cell
from ..labels import SAMPLING_RATE
from .data import crop_batch

STATES_COLUMN = "layer_states"  # (frames, L+1, hidden) float16 per clip: frames first, the one ragged dimension


def backbone_fingerprint(model) -> str:
    """Changes with the backbone's weights and configuration, nothing else (not the head, not the aggregation)."""
    digest = hashlib.sha256(model.config.backbone_config.to_json_string().encode())
    digest.update(str(getattr(model.config, "whisper_window_seconds", "")).encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_states(split, model, extractor, batch_size: int = 8):
    """``split`` with each clip's backbone hidden states added as :data:`STATES_COLUMN` (the audio column dropped)."""
    model = model.eval()
    num_layers, hidden = model.frontend.num_layers, model.frontend.feature_dim

    @torch.no_grad()
    def encode(rows):
        waves = [decode_audio_cell(audio, utt) for audio, utt in zip(rows["audio"], rows["utt_id"])]
        inputs = extractor(waves, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt")
        device = next(model.parameters()).device
        out = model.frontend.features(model.backbone, inputs["input_values"].to(device), inputs["attention_mask"].to(device))
        layers = torch.stack(out.hidden_states, dim=2).to(torch.float16).cpu()  # (B, T, L+1, H)
        lengths = out.frame_mask.sum(dim=1).tolist()
        return {STATES_COLUMN: [layers[i, :n].numpy() for i, n in enumerate(lengths)]}

    features = Features({**{k: v for k, v in split.features.items() if k != "audio"},
                         STATES_COLUMN: Array3D(shape=(None, num_layers, hidden), dtype="float16")})
    return split.map(
        encode, batched=True, batch_size=batch_size, remove_columns=["audio"], features=features,
        new_fingerprint=hashlib.sha256(f"{split._fingerprint}-{backbone_fingerprint(model)}".encode()).hexdigest()[:16],
        desc="backbone hidden states",
    )


class CachedStatesDataset(torch.utils.data.Dataset):
    """Rows of a cached split, the hidden states in place of the waveform."""

    def __init__(self, split):
        self.split = split.with_format("numpy", columns=[STATES_COLUMN], output_all_columns=True)

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        row = self.split[int(i)]
        return {"wave": row[STATES_COLUMN], **{k: row[k] for k in ("label", "is_reconstructed", "source_id", "utt_id")}}


def crop_and_pad(states: list[np.ndarray], source_ids: list[int], crop: int, rng: np.random.Generator):
    """Random crops of ``crop`` frames, as :func:`.data.crop_batch` crops waveforms (an original and its
    reconstructions share the offset), padded into ``layer_states`` (B, L+1, T, H) float32 and ``layer_mask`` (B, T)."""
    cropped = [torch.from_numpy(np.asarray(c, dtype=np.float32)) for c in crop_batch(states, source_ids, crop, rng)]
    layer_states = torch.zeros(len(cropped), max(len(c) for c in cropped), *cropped[0].shape[1:])
    layer_mask = torch.zeros(layer_states.shape[:2], dtype=torch.bool)
    for i, clip in enumerate(cropped):
        layer_states[i, : len(clip)], layer_mask[i, : len(clip)] = clip, True
    return layer_states.transpose(1, 2), layer_mask


def crop_frames(model, crop_samples: int) -> int:
    """How many backbone frames a waveform crop of ``crop_samples`` gives."""
    return int(model.frame_mask(crop_samples, torch.ones(1, crop_samples, dtype=torch.long)).sum())


__all__ = ["STATES_COLUMN", "backbone_fingerprint", "cache_states", "CachedStatesDataset", "crop_and_pad", "crop_frames"]
