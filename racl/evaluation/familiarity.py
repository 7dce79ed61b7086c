"""Fit a detector's familiarity check on its training data (``modeling_racl/familiarity_racl.py``).

The scoring windows of the training split's clips (cut as :class:`racl.scoring.Scorer` cuts them), at most
``max_reference`` of them evenly spread, are encoded by the model's backbone; their pooled hidden states of one
layer become the reference, and the distance that ``quantile`` of them stay within (each to the others) the
threshold. Training runs it at the end when the model config names ``familiarity_layer``; for a model folder:

    python -m racl.evaluation.familiarity --model FOLDER --data DATASET_DIR [--split train] [--layer 1] \\
        [--max-reference 2048] [--quantile 0.99] [--check-split validation] [--out FOLDER]

writes ``config.json`` and ``model.safetensors`` (the rest of the folder is kept) and, with ``--check-split``,
prints the share of that split's windows found unfamiliar (a held-out check of the threshold).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoFeatureExtractor
from transformers.utils import logging as transformers_logging

from datasets_scripts.corpora import spread
from datasets_scripts.loading import get_split, load_dataset_dict
from modeling_racl import RACLForAudioClassification, fitted_threshold, neighbour_distances, pooled_states

from ..audio import decode_audio_cell
from ..labels import SAMPLING_RATE
from ..scoring import window_spans

MAX_REFERENCE = 2048  # windows kept with the weights: 4 MB for a 512-wide layer, one matrix product per batch
QUANTILE = 0.99


def _windows(split, model, limit: int) -> list[np.ndarray]:
    """At most ``limit`` scoring windows of the split's clips, evenly spread over the split."""
    window = int(SAMPLING_RATE * model.config.score_window_seconds)
    hop = int(SAMPLING_RATE * model.config.score_hop_seconds)
    rows = spread(range(len(split)), limit)  # more clips than windows wanted: an even spread first, so few are decoded
    audio = split.select_columns(["audio", "utt_id"])
    out = []
    for i in rows:
        wave = decode_audio_cell(audio[i]["audio"], audio[i]["utt_id"])
        out += [wave[s:e] for s, e in window_spans(len(wave), window, hop) if e - s >= model.config.min_input_samples]
    return spread(out, limit)


@torch.no_grad()
def pooled_windows(model, extractor, windows: list[np.ndarray], layer: int, batch_size: int = 8) -> torch.Tensor:
    """(N, H) unit-length pooled hidden states of layer ``layer`` of each window."""
    model = model.eval()
    device = next(model.parameters()).device
    pooled = []
    for i in range(0, len(windows), batch_size):
        batch = extractor(windows[i : i + batch_size], sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt")
        out = model.frontend.features(model.backbone, batch["input_values"].to(device), batch["attention_mask"].to(device))
        pooled.append(pooled_states(out.hidden_states[layer], out.frame_mask).cpu())
    return torch.cat(pooled)


def fit_familiarity(model, extractor, split, layer: int | None = None, max_reference: int = MAX_REFERENCE,
                    quantile: float = QUANTILE, batch_size: int = 8) -> dict:
    """Fit and store the check on ``split`` (a dataset split with audio); returns what was fitted."""
    if model.aggregation is None:
        raise ValueError(f"the familiarity check reads backbone hidden states; frontend={model.config.frontend!r} has none")
    layer = model.config.familiarity_layer if layer is None else layer
    if layer is None:
        raise ValueError("which backbone layer the check reads: give --layer or set familiarity_layer in the model config")
    if not 0 <= layer < model.frontend.num_layers:
        raise ValueError(f"layer {layer}: the backbone has hidden states 0..{model.frontend.num_layers - 1}")
    model.config.familiarity_layer = layer
    reference = pooled_windows(model, extractor, _windows(split, model, max_reference), layer, batch_size)
    threshold = fitted_threshold(reference, model.config.familiarity_neighbours, quantile)
    model.set_familiarity(reference, threshold)
    return {"layer": layer, "reference_windows": int(reference.shape[0]), "threshold": threshold, "quantile": quantile}


def unfamiliar_share(model, extractor, split, max_windows: int = MAX_REFERENCE, batch_size: int = 8) -> float:
    """The share of a split's windows (at most ``max_windows``, evenly spread) beyond the fitted threshold."""
    pooled = pooled_windows(model, extractor, _windows(split, model, max_windows), model.config.familiarity_layer, batch_size)
    distances = neighbour_distances(pooled, model.familiarity.reference, model.config.familiarity_neighbours)
    return float((distances > model.config.familiarity_threshold).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m racl.evaluation.familiarity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model folder")
    parser.add_argument("--data", required=True, help="the dataset folder or Hub id the model was trained on")
    parser.add_argument("--split", default="train", help="the split to take the reference from (default: train)")
    parser.add_argument("--layer", type=int, help="backbone hidden state to read (default: the config's familiarity_layer)")
    parser.add_argument("--max-reference", type=int, default=MAX_REFERENCE, help=f"windows kept (default {MAX_REFERENCE})")
    parser.add_argument("--quantile", type=float, default=QUANTILE, help=f"share of reference windows counted familiar (default {QUANTILE})")
    parser.add_argument("--check-split", help="also report the share of this split's windows found unfamiliar")
    parser.add_argument("--out", help="write the fitted folder here (default: into --model)")
    args = parser.parse_args(argv)
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    if not sys.stderr.isatty():  # keep error output to the one line that matters
        transformers_logging.disable_progress_bar()
    try:
        return _run(args)
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()


def _run(args) -> int:
    try:
        if args.max_reference < 2:
            raise ValueError("--max-reference must be at least 2")
        if not 0 < args.quantile <= 1:  # checked before the encoder pass, not after it
            raise ValueError(f"--quantile must be in (0, 1], got {args.quantile}")
        data = load_dataset_dict(args.data)
        split = get_split(data, args.split, args.data)
        check = get_split(data, args.check_split, args.data) if args.check_split else None
        model = RACLForAudioClassification.from_pretrained(args.model)
        extractor = AutoFeatureExtractor.from_pretrained(args.model)
        fitted = fit_familiarity(model, extractor, split, args.layer, args.max_reference, args.quantile)
    except (OSError, ValueError, KeyError) as error:
        print(f"familiarity: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    out = Path(args.out or args.model)
    if out != Path(args.model):
        shutil.copytree(args.model, out, dirs_exist_ok=True)
    model.save_pretrained(out)
    print(f"familiarity: layer {fitted['layer']}, {fitted['reference_windows']} reference windows of split {args.split!r}, "
          f"threshold {fitted['threshold']:.4f} (quantile {fitted['quantile']}); wrote {out}")
    if check is not None:
        print(f"familiarity: split {args.check_split!r}: {100 * unfamiliar_share(model, extractor, check):.1f} % of its windows unfamiliar")
    return 0


if __name__ == "__main__":
    sys.exit(main())
