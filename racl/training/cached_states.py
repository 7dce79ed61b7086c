"""Training on a frozen backbone's hidden states, computed once: the backbone pass leaves the training loop.

With the whole backbone frozen, its L+1 hidden states of a clip never change during training, so they are
computed once per clip (``datasets``' ``map``, float16) and the loop trains the aggregation and the head on random
crops of them. The map's fingerprint is the split's and the backbone's (weights, window), so a rerun, or another
head or aggregation on the same backbone, reuses them from the datasets cache. A model with a spectral branch has
its frames cached beside the states (a fingerprint of their own) and cropped with them.

Validation during training scores the same way: each validation clip's scoring windows (cut as
:class:`racl.scoring.Scorer` cuts them) are encoded once (:class:`CachedWindows`), and every evaluation runs the
head alone. Waveform augmentation cannot apply to fixed hidden states: a config asking for both is refused. The
calibration, the test split and the saved model go through the waveform as usual, so what is scored there is the
model users load.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import torch
from datasets import Array2D, Array3D, Features, Value

from modeling_racl import RACLForAudioClassification

from ..audio import decode_audio_cell
from ..labels import SAMPLING_RATE
from ..scoring import window_spans
from .data import crop_batch

STATES_COLUMN = "layer_states"  # (frames, L+1, hidden) float16 per clip: frames first, the one ragged dimension
SPECTRAL_COLUMN = "spectral_states"  # (frames, bins) float16: the spectral branch's frames, when the model has one


def backbone_fingerprint(model) -> str:
    """Changes with the backbone's weights and configuration, nothing else (not the head, not the aggregation)."""
    digest = hashlib.sha256(model.config.backbone_config.to_json_string().encode())
    digest.update(str(getattr(model.config, "whisper_window_seconds", "")).encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def spectral_branch(model):
    return getattr(model, "spectral", None)  # a model folder saved before the branch existed has none


@torch.no_grad()
def encode_waves(model, extractor, waves: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Each waveform's backbone hidden states, (frames, L+1, hidden) float16, its real frames only; with the
    spectral branch, its frames (frames, bins) too."""
    inputs = extractor(waves, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt")
    device = next(model.parameters()).device
    values, mask = inputs["input_values"].to(device), inputs["attention_mask"].to(device)
    out = model.frontend.features(model.backbone, values, mask)
    lengths = out.frame_mask.sum(dim=1).tolist()
    columns = {STATES_COLUMN: torch.stack(out.hidden_states, dim=2)}  # (B, T, L+1, H)
    if spectral_branch(model) is not None:
        columns[SPECTRAL_COLUMN] = model.spectral.frames(values, mask, out.hidden_states[0].shape[1])
    stored = {}
    for name, tensor in columns.items():
        tensor = tensor.to(torch.float16).cpu()
        stored[name] = [tensor[i, :n].numpy() for i, n in enumerate(lengths)]
    return stored


def states_features(model) -> dict:
    """The cache's columns for ``model``: its hidden states, and its spectral branch's frames when it has one."""
    features = {STATES_COLUMN: Array3D(shape=(None, model.frontend.num_layers, model.frontend.feature_dim), dtype="float16")}
    if spectral_branch(model) is not None:
        features[SPECTRAL_COLUMN] = Array2D(shape=(None, model.config.filterbank_bins), dtype="float16")
    return features


def cache_fingerprint(split, model, *extra) -> str:
    if spectral_branch(model) is not None:  # the branch's frames are stored too
        c = model.config
        extra = (*extra, "spectral", c.filterbank_scale, c.filterbank_n_fft, c.filterbank_hop, c.filterbank_bins)
    return hashlib.sha256("-".join(map(str, [split._fingerprint, backbone_fingerprint(model), *extra])).encode()).hexdigest()[:16]


def cache_states(split, model, extractor, batch_size: int = 8):
    """``split`` with each clip's backbone hidden states added as :data:`STATES_COLUMN` (the audio column dropped)."""
    model = model.eval()

    def encode(rows):
        waves = [decode_audio_cell(audio, utt) for audio, utt in zip(rows["audio"], rows["utt_id"])]
        return encode_waves(model, extractor, waves)

    features = Features({**{k: v for k, v in split.features.items() if k != "audio"}, **states_features(model)})
    return split.map(
        encode, batched=True, batch_size=batch_size, remove_columns=["audio"], features=features,
        new_fingerprint=cache_fingerprint(split, model), desc="backbone hidden states",
    )


class CachedWindows:
    """A split's scoring windows as backbone hidden states, so that a frozen backbone's validation runs the head only.

    Each clip is cut into the windows :class:`racl.scoring.Scorer` scores (the model's ``score_window_seconds`` and
    ``score_hop_seconds``), each window is encoded alone as the scorer encodes it, and a clip's score is the mean of
    its windows' scores, as the scorer's is: the same scores as from the waveforms, up to the float16 of the cache.
    """

    def __init__(self, split, model, extractor, batch_size: int = 8):
        model = model.eval()
        window = int(SAMPLING_RATE * model.config.score_window_seconds)
        hop = int(SAMPLING_RATE * model.config.score_hop_seconds)

        def encode(rows, indices):
            clips, windows = [], []
            for index, audio, utt in zip(indices, rows["audio"], rows["utt_id"]):
                wave = decode_audio_cell(audio, utt)
                for start, end in window_spans(len(wave), window, hop):
                    clips.append(index)
                    windows.append(wave[start:end])
            return {"clip": clips, **encode_waves(model, extractor, windows)}

        features = Features({"clip": Value("int64"), **states_features(model)})
        self.windows = split.map(
            encode, batched=True, batch_size=batch_size, with_indices=True, remove_columns=split.column_names, features=features,
            new_fingerprint=cache_fingerprint(split, model, "windows", window, hop), desc="validation windows' hidden states",
        ).with_format("numpy")
        clip_of = np.asarray(self.windows["clip"])
        self.rows_of = {int(c): np.flatnonzero(clip_of == c).tolist() for c in np.unique(clip_of)}

    @torch.no_grad()
    def scores(self, model, clips: list[int], batch_size: int) -> list[float]:
        """The scores of the split's clips ``clips`` (indices): the mean of each clip's window scores."""
        rows = [r for c in clips for r in self.rows_of[c]]
        device = next(model.parameters()).device
        window_scores = []
        for i in range(0, len(rows), batch_size):
            windows = [self.windows[r] for r in rows[i : i + batch_size]]
            inputs = padded_inputs([w[STATES_COLUMN] for w in windows], [w[SPECTRAL_COLUMN] for w in windows] if SPECTRAL_COLUMN in windows[0] else None)
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
            window_scores.extend(model.scores_from_logits(logits).float().cpu().tolist())
        out, at = [], 0
        for c in clips:
            n = len(self.rows_of[c])
            out.append(float(np.mean(window_scores[at : at + n])))
            at += n
        return out


class CachedStatesDataset(torch.utils.data.Dataset):
    """Rows of a cached split, the hidden states in place of the waveform."""

    def __init__(self, split):
        self.split = split.with_format("numpy", columns=[c for c in (STATES_COLUMN, SPECTRAL_COLUMN) if c in split.column_names], output_all_columns=True)

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        row = self.split[int(i)]
        spectral = {"spectral": row[SPECTRAL_COLUMN]} if SPECTRAL_COLUMN in row else {}
        return {"wave": row[STATES_COLUMN], **spectral, **{k: row[k] for k in ("label", "is_reconstructed", "source_id", "utt_id")}}


def crop_and_pad(states: list[np.ndarray], source_ids: list[int], crop: int, rng: np.random.Generator, spectral: list[np.ndarray] | None = None) -> dict:
    """Random crops of ``crop`` frames, as :func:`.data.crop_batch` crops waveforms (an original and its
    reconstructions share the offset), as the model's inputs (:func:`padded_inputs`). The spectral branch's
    frames, as many as the states', are cropped by the same draws: a copy of ``rng`` replays them."""
    replay = copy.deepcopy(rng)
    cropped = crop_batch(states, source_ids, crop, rng)
    return padded_inputs(cropped, None if spectral is None else crop_batch(spectral, source_ids, crop, replay))


def padded_inputs(states: list[np.ndarray], spectral: list[np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """Cached float16 clips → the model's float32 ``layer_states`` / ``layer_mask`` / ``spectral_states``."""
    tensors = [None if clips is None else [torch.from_numpy(np.asarray(c, dtype=np.float32)) for c in clips] for clips in (states, spectral)]
    return RACLForAudioClassification.pad_layer_states(*tensors)


def crop_frames(model, crop_samples: int) -> int:
    """How many backbone frames a waveform crop of ``crop_samples`` gives."""
    return int(model.frame_mask(crop_samples, torch.ones(1, crop_samples, dtype=torch.long)).sum())


__all__ = ["STATES_COLUMN", "SPECTRAL_COLUMN", "backbone_fingerprint", "cache_states", "CachedStatesDataset", "CachedWindows", "crop_and_pad", "crop_frames", "padded_inputs"]
