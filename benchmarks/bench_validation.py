"""Validation during a cached (frozen-backbone) training run: from the waveforms, or from cached hidden states.

A trained model folder and its dataset's validation split, measured side by side in one run: the scores of the
split from the waveforms (what validation did before, backbone included, every evaluation), the one-off encoding of
the split's scoring windows (``racl.training.cached_states.CachedWindows``, the datasets cache disabled so that it
is computed, not loaded), and an evaluation from those windows (the head only). Prints the times, the ratio for a
run of ``--evaluations`` evaluations, and how far apart the two kinds of scores and their EERs are.

    python -m benchmarks.bench_validation --model outputs/demo/run/best --data outputs/demo/data [--evaluations 8]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datasets import disable_caching  # noqa: E402

from datasets_scripts.loading import get_split, load_dataset_dict  # noqa: E402
from racl.metrics import compute_eer  # noqa: E402
from racl.scoring import load_detector  # noqa: E402
from racl.training.cached_states import CachedWindows  # noqa: E402
from racl.training.validation import validation_scores  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained model folder whose backbone is a pretrained encoder")
    parser.add_argument("--data", required=True, help="its dataset (the build's folder)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--evaluations", type=int, default=8, help="evaluations in a training run (1600 steps / 200)")
    args = parser.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    model, extractor = load_detector(args.model, "cpu")
    if model.aggregation is None:
        parser.error(f"--model: {args.model} has no pretrained backbone; its validation has no hidden states to cache")
    split = get_split(load_dataset_dict(args.data, undecoded_audio=True), args.split, args.data, ("audio", "label", "utt_id"))
    disable_caching()  # the windows are encoded here, not read from an earlier run's cache

    live, t_live = timed(lambda: validation_scores(model, extractor, split, args.batch_size))
    windows, t_build = timed(lambda: CachedWindows(split, model, extractor, args.batch_size))
    cached, t_cached = timed(lambda: validation_scores(model, extractor, split, args.batch_size, windows=windows))

    n = args.evaluations
    print(f"{len(split)} {args.split} clips, {len(windows.windows)} scoring windows, {torch.get_num_threads()} thread(s)")
    print(f"from the waveforms:  {t_live:7.1f} s an evaluation")
    print(f"cached windows:      {t_build:7.1f} s to encode once, {t_cached:6.1f} s an evaluation")
    print(f"{n} evaluations:      {n * t_live:7.1f} s against {t_build + n * t_cached:.1f} s "
          f"({n * t_live / (t_build + n * t_cached):.2f}x faster; each evaluation {t_live / t_cached:.1f}x)")
    diff = np.abs(cached["score"] - live["score"])
    eer_live, eer_cached = (100 * compute_eer(s["score"], s["label"])[0] for s in (live, cached))
    print(f"scores: max |difference| {diff.max():.4f} (score spread {np.ptp(live['score']):.1f}); "
          f"EER {eer_live:.2f} % from the waveforms, {eer_cached:.2f} % from the cache")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
