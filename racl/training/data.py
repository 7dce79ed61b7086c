"""The training data: the dataset's splits as this config uses them, clips, batches and crops.

Splits are loaded through :mod:`datasets_scripts.loading` with undecoded audio; clips are decoded in
the loader by :func:`racl.audio.decode_audio_cell`. Batches keep originals with their reconstructions
(:mod:`racl.training.sampler`), and :func:`crop_batch` crops a source and its reconstructions alike.
"""

from __future__ import annotations

import numpy as np
import torch

from datasets_scripts.loading import DatasetLoadError, get_split, load_dataset_dict

from ..audio import decode_audio_cell
from .config import ConfigError, TrainConfig

REQUIRED_COLUMNS = ("audio", "label", "utt_id", "source_id", "is_reconstructed", "reconstruction", "attack")


def load_splits(cfg: TrainConfig):
    """Load the dataset, check it can serve this config, and return (train, validation, test|None).

    ``train`` is the whole split: :func:`training_rows` selects what this config trains on, so a cache of
    the whole split (:mod:`racl.training.cached_states`) serves every selection of it."""
    path = cfg.data.path
    try:
        dsd = load_dataset_dict(path, undecoded_audio=True)
    except DatasetLoadError as error:
        raise ConfigError(f"{error} (config key 'data.path')") from None
    out = []
    for key in ("train_split", "validation_split", "test_split"):
        name = getattr(cfg.data, key)
        if name is None or (key == "test_split" and name not in dsd):
            out.append(None)
            continue
        try:
            out.append(get_split(dsd, name, path, REQUIRED_COLUMNS))
        except DatasetLoadError as error:
            raise ConfigError(f"{error} (config key 'data.{key}')") from None
    train, validation, test = out
    if cfg.data.max_eval_samples:
        validation = validation.select(range(min(cfg.data.max_eval_samples, len(validation))))
    return train, validation, test


def training_rows(train, cfg: TrainConfig):
    """The rows of the train split this config trains on, in the split's order: the reconstructions it keeps
    (``data.use_reconstructions``, ``data.reconstructions``), without the spoof systems it leaves out
    (``data.exclude_attacks``: their clips and every reconstruction of them), then ``data.max_train_samples``."""
    data = cfg.data
    if not data.use_reconstructions:
        train = train.filter(lambda r: not r, input_columns="is_reconstructed")
    elif data.reconstructions is not None:
        present = set(train.unique("reconstruction")) - {"none"}
        unknown = sorted(set(data.reconstructions) - present - {"none"})
        if unknown:
            raise ConfigError(f"data.reconstructions: no {', '.join(unknown)} reconstructions in the train split of {data.path!r} "
                              f"(it has: {', '.join(sorted(present))})")
        keep = {"none", *data.reconstructions}
        train = train.filter(lambda r: r in keep, input_columns="reconstruction")
    if data.exclude_attacks:
        originals = train.filter(lambda r, y: not r and y == 1, input_columns=["is_reconstructed", "label"])
        systems = set(originals.unique("attack"))
        unknown = sorted(set(data.exclude_attacks) - systems)
        if unknown:
            raise ConfigError(f"data.exclude_attacks: no spoof system {', '.join(unknown)} in the train split of {data.path!r} "
                              f"(it has: {', '.join(sorted(systems))})")
        excluded = set(data.exclude_attacks)
        # source_id links a reconstruction to its original, whatever its attack column says.
        dropped = {u for u, a in zip(originals["utt_id"], originals["attack"]) if a in excluded}
        train = train.filter(lambda s: s not in dropped, input_columns="source_id")
    if data.max_train_samples:
        train = train.select(range(min(data.max_train_samples, len(train))))
    if len(set(train["label"])) < 2:
        raise ConfigError(f"train split of {data.path!r} holds one class only; RACL needs bona fide and spoof clips")
    return train


class ClipDataset(torch.utils.data.Dataset):
    """Rows of a split with undecoded audio, decoded to 16 kHz mono float32 when fetched."""

    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        row = self.split[int(i)]
        return {
            "wave": decode_audio_cell(row["audio"], row["utt_id"]), "label": row["label"], "is_reconstructed": row["is_reconstructed"],
            "source_id": row["source_id"], "utt_id": row["utt_id"],
        }


def collate(items: list[dict]) -> dict:
    sources = {s: k for k, s in enumerate(dict.fromkeys(it["source_id"] for it in items))}
    return {
        "waves": [it["wave"] for it in items],
        "labels": torch.tensor([it["label"] for it in items]),
        "is_reconstructed": torch.tensor([bool(it["is_reconstructed"]) for it in items]),
        "source_ids": torch.tensor([sources[it["source_id"]] for it in items]),
        "utt_ids": [it["utt_id"] for it in items],
        **({"spectral": [it["spectral"] for it in items]} if "spectral" in items[0] else {}),  # cached spectral-branch frames
    }


def crop_batch(waves: list[np.ndarray], source_ids: list[int], crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random crops; clips of one source group share the offset so an original and its reconstruction stay aligned."""
    offsets: dict[int, float] = {}
    out = []
    for wave, sid in zip(waves, source_ids):
        if len(wave) <= crop:
            out.append(wave)
            continue
        fraction = offsets.setdefault(sid, rng.random())
        start = int(fraction * (len(wave) - crop))
        out.append(wave[start : start + crop])
    return out


__all__ = ["REQUIRED_COLUMNS", "load_splits", "training_rows", "ClipDataset", "collate", "crop_batch"]
