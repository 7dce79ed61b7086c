"""The frozen-encoder baseline: a logistic regression on a pretrained backbone's time-averaged hidden states.

Every layer's hidden states (cached by :func:`racl.training.cached_states.cache_states`, the same cache a frozen
training run uses) are averaged over the clip's frames and concatenated; a standardised logistic regression is
fitted on the train split and scores the test split, summarised as ``racl-eval`` summarises a model (pooled, unseen
systems, per attack, per reconstruction and source). It is what a detector trained on the same data must beat.

The backbone and its window come from a training config, as the frozen training recipe reads them:

    python -m benchmarks.frozen_probe --config configs/demo_whisper_frozen.yaml data.path=outputs/demo/data [--c 0.1]

``--layers 0 1 2`` probes those hidden states only (0 = the embeddings), to ask which layers carry what transfers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from datasets_scripts.loading import load_dataset_dict
from racl.evaluation.summary import summarize
from racl.evaluation.table import ScoreTable
from racl.export import default_feature_extractor
from racl.labels import NO_ATTACK, NO_RECONSTRUCTION
from racl.training.cached_states import STATES_COLUMN, cache_states
from racl.training.config import load_train_config
from racl.training.model import build_model


def pooled_states(split, model, extractor, layers: list[int] | None = None) -> np.ndarray:
    """(clips, len(layers) * hidden): each layer's mean over the clip's frames (all L+1 layers by default)."""
    cached = cache_states(split, model, extractor).with_format("numpy", columns=[STATES_COLUMN])
    pick = slice(None) if layers is None else layers
    return np.stack([cached[i][STATES_COLUMN][:, pick].astype(np.float32).mean(axis=0).ravel() for i in range(len(cached))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo_whisper_frozen.yaml", help="training YAML naming the backbone")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. data.path=outputs/demo/data")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the logistic regression")
    parser.add_argument("--layers", type=int, nargs="+", help="hidden states to probe (0 = embeddings; default: all)")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args(argv)

    cfg = load_train_config(args.config, args.overrides)
    model = build_model(cfg).eval()
    extractor = default_feature_extractor(model.config)
    if args.layers and not all(0 <= i < model.frontend.num_layers for i in args.layers):
        parser.error(f"--layers: this backbone has hidden states 0 to {model.frontend.num_layers - 1}, got {args.layers}")
    dsd = load_dataset_dict(cfg.data.path, undecoded_audio=True)
    train, test = dsd["train"], dsd["test"]
    scaler = StandardScaler().fit(x_train := pooled_states(train, model, extractor, args.layers))
    probe = LogisticRegression(C=args.c, max_iter=5000).fit(scaler.transform(x_train), np.array(train["label"]))
    scores = -probe.decision_function(scaler.transform(pooled_states(test, model, extractor, args.layers)))  # higher = bona fide

    table = ScoreTable(
        utt_id=list(test["utt_id"]), score=scores, label=np.array(test["label"]), attack=list(test["attack"]),
        reconstruction=list(test["reconstruction"]), is_reconstructed=np.array(test["is_reconstructed"]),
        source_id=list(test["source_id"]), speaker=list(test["speaker"]),
    )
    seen_attacks = set(train["attack"]) - {NO_ATTACK}
    seen_paradigms = set(train["reconstruction"]) - {NO_RECONSTRUCTION}
    summary = summarize(table, seen_attacks=seen_attacks, seen_paradigms=seen_paradigms)
    which = "all layers" if not args.layers else f"layers {' '.join(map(str, args.layers))}"
    print(f"frozen {model.frontend.description} ({which}); logistic regression C={args.c} on {len(train)} train clips")
    print(f"test: pooled {summary['eer_percent']:.2f} %  unseen {100 * (summary['unseen'] or {}).get('eer', float('nan')):.2f} %  "
          f"originals {100 * (summary['originals'] or {}).get('eer', float('nan')):.2f} %")
    for key in ("per_attack", "per_reconstruction_source"):
        print("  " + ", ".join(f"{name} {100 * entry['eer']:.1f}" for name, entry in summary[key].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
