"""Scoring a dataset split of the racl schema (``datasets.Dataset``), alone or split between processes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..audio import AudioDecodeError, decode_audio_cell
from ..labels import BONAFIDE, NO_ATTACK, NO_RECONSTRUCTION, SAMPLING_RATE, SPOOF, label_id
from .batch_scoring import as_scorer, score_rows
from .table import ScoreTable

UNKNOWN = "unknown"
REQUIRED_COLUMNS = ("audio", "label", "utt_id")  # the rest of the schema has sensible defaults


def _column(dataset, name: str, default: Callable[[int], object]) -> list:
    return list(dataset[name]) if name in dataset.column_names else [default(i) for i in range(len(dataset))]


def _label_ids(dataset) -> list[int]:
    """Labels as 0/1 whatever the column holds (ClassLabel in any order, names, ints)."""
    from datasets import ClassLabel

    feature = dataset.features["label"]
    values = list(dataset["label"])
    if isinstance(feature, ClassLabel):
        return [label_id(feature.int2str(int(v))) for v in values]
    return [label_id(v) for v in values]


def dataset_metadata(dataset) -> dict[str, list]:
    """Per-row metadata of a schema split (no audio decoded); missing optional columns defaulted."""
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"the dataset has no {', '.join(map(repr, missing))} column; columns are {dataset.column_names}")
    meta = {"utt_id": [str(u) for u in dataset["utt_id"]], "label": _label_ids(dataset)}
    meta["attack"] = _column(dataset, "attack", lambda i: NO_ATTACK if meta["label"][i] == BONAFIDE else UNKNOWN)
    meta["reconstruction"] = _column(dataset, "reconstruction", lambda i: NO_RECONSTRUCTION)
    meta["is_reconstructed"] = _column(dataset, "is_reconstructed", lambda i: meta["reconstruction"][i] != NO_RECONSTRUCTION)
    meta["source_id"] = _column(dataset, "source_id", lambda i: meta["utt_id"][i])
    meta["speaker"] = _column(dataset, "speaker", lambda i: UNKNOWN)
    return meta


def score_dataset(
    scorer_or_model,
    feature_extractor=None,
    dataset=None,
    batch_size: int = 8,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    return_embeddings: bool = True,
    accelerator=None,
    progress: bool = False,
) -> ScoreTable:
    """Score every row of a schema split (``datasets.Dataset``) full length.

    ``scorer_or_model``: a :class:`racl.scoring.Scorer`, or a model (then ``feature_extractor`` is
    needed and ``batch_size`` / ``window_seconds`` / ``hop_seconds`` build the scorer). Audio is
    decoded at 16 kHz by ``datasets``; ``batch_size`` clips are decoded per step. The model is put
    in eval mode and given back in the mode it came in.

    With an ``accelerate.Accelerator``, rows are split between processes
    (``split_between_processes``, contiguous and unpadded, so no row is scored twice) and the
    results gathered with ``gather_object``; every process gets the whole table back.
    """
    from datasets import Audio

    if dataset is None:
        raise ValueError("score_dataset needs a dataset")
    scorer = as_scorer(scorer_or_model, feature_extractor, batch_size, window_seconds, hop_seconds, accelerator)
    meta = dataset_metadata(dataset)
    audio = dataset.select_columns(["audio"]).cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))

    def decode(i: int) -> np.ndarray:
        try:
            return decode_audio_cell(audio[i]["audio"], meta["utt_id"][i])
        except AudioDecodeError:
            raise
        except Exception as error:  # torchcodec / arrow errors on a damaged cell
            raise AudioDecodeError(f"{meta['utt_id'][i]}: cannot decode audio ({error})") from None

    rows = list(range(len(dataset)))
    if accelerator is None:
        scored, failed = score_rows(scorer, rows, decode, batch_size, return_embeddings, progress)
    else:
        from accelerate.utils import gather_object

        with accelerator.split_between_processes(rows) as mine:
            scored, failed = score_rows(scorer, list(mine), decode, batch_size, return_embeddings, progress)
        scored = {i: result for i, result in gather_object(list(scored.items()))}
        failed = gather_object(failed)
    return ScoreTable.from_rows(meta, scored, failed)


def seen_systems(train_split) -> tuple[set[str], set[str]]:
    """(attacks, reconstruction paradigms) present in a training split, read without decoding audio."""
    meta = dataset_metadata(train_split)
    attacks = {a for a, y in zip(meta["attack"], meta["label"]) if y == SPOOF and a != NO_ATTACK}
    paradigms = set(meta["reconstruction"]) - {NO_RECONSTRUCTION}
    return attacks, paradigms


__all__ = ["UNKNOWN", "REQUIRED_COLUMNS", "dataset_metadata", "score_dataset", "seen_systems"]
