"""Scoring cost of trained model folders, side by side: RTF of one clip on a fixed number of CPU threads.

Each model folder is loaded as users load it (``AutoModelForAudioClassification``, remote code) and scores the same
clip in turn, round after round, so machine noise hits every model alike; the median per model and the ratio to the
first are printed.

    python -m benchmarks.bench_model_rtf outputs/demo/model other/model [--seconds 4] [--threads 2] [--rounds 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import AutoModelForAudioClassification

from racl.export import default_feature_extractor
from racl.labels import SAMPLING_RATE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model folders (the first is the reference of the ratios)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clip = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * SAMPLING_RATE))).astype(np.float32)
    models, inputs = [], []
    for folder in args.models:
        model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
        extracted = default_feature_extractor(model.config)([clip], sampling_rate=SAMPLING_RATE, return_tensors="pt")
        models.append(model)
        inputs.append(extracted["input_values"])
    times = [[] for _ in models]
    with torch.inference_mode():
        for model, x in zip(models, inputs):
            model(x)  # warm-up
        for _ in range(args.rounds):
            for model, x, spent in zip(models, inputs, times):
                start = time.perf_counter()
                model(x)
                spent.append(time.perf_counter() - start)
    rtfs = [float(np.median(t)) / args.seconds for t in times]
    print(f"one {args.seconds:g} s clip, {args.threads} threads, median of {args.rounds} rounds")
    for folder, model, rtf in zip(args.models, models, rtfs):
        print(f"  RTF {rtf:.4f}  ({rtf / rtfs[0]:.2f}x the first)  {folder}: {model.frontend.description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
