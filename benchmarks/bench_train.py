"""Training throughput on a tiny config: samples/s, the share of step time spent waiting for data, peak memory.

Uses the training's own data path (``ClipDataset`` → ``PairedBatchSampler`` → ``collate`` → crop →
augmentation → feature extractor) and model step, on a dataset made by the project's own build
(a generated folder corpus, Griffin-Lim reconstructions), so what it measures is what
``python -m racl.training`` does.

    python -m benchmarks.bench_train [--steps 30] [--batch 8] [--num-workers 0 2] [--model-config configs/model/tiny.json ...]
                                     [--augment-from configs/demo.yaml] [--clips 48] [--clip-seconds 2]

With several model configs, every one is measured in the same run and its speed is printed relative to the first.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from datasets_scripts.loading import get_split, load_dataset_dict
from modeling_racl import RACLConfig, RACLForAudioClassification
from racl.config import read_model_config
from racl.export import default_feature_extractor
from racl.labels import SAMPLING_RATE
from racl.training.augment import AugmentConfig, Augmenter
from racl.training.config import load_train_config
from racl.training.data import REQUIRED_COLUMNS, ClipDataset, collate, crop_batch
from racl.training.sampler import PairedBatchSampler

from .bench_build import ROOT, write_config, write_corpus
from .peak_memory import PeakRSS

DEFAULT_AUGMENT = {"rawboost_prob": 0.5, "noise_prob": 0.3, "rir_prob": 0.3}


def build_train_split(folder: Path, clips: int, clip_seconds: float):
    """The train split (audio undecoded, as training loads it) of a small build of a generated corpus."""
    (folder / "corpus").mkdir()
    config = write_config(folder, write_corpus(folder / "corpus", clips, clip_seconds), paradigms=("griffinlim",))
    subprocess.run([sys.executable, "-m", "datasets_scripts.build", "--config", str(config), "--output-dir", str(folder / "data")],
                   cwd=ROOT, check=True, capture_output=True)
    data = str(folder / "data")
    return get_split(load_dataset_dict(data, undecoded_audio=True), "train", data, REQUIRED_COLUMNS)


def run(split, model_config: str, steps: int, batch: int, workers: int, crop_seconds: float, augment: dict) -> dict:
    torch.manual_seed(0)
    model = RACLForAudioClassification(RACLConfig(**read_model_config(model_config))).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sampler = PairedBatchSampler(split["source_id"], split["label"], split["is_reconstructed"], batch)
    loader = torch.utils.data.DataLoader(ClipDataset(split), batch_sampler=sampler, collate_fn=collate,
                                         num_workers=workers, persistent_workers=workers > 0)
    augmenter = Augmenter(AugmentConfig.from_dict(augment))
    extractor = default_feature_extractor()
    crop = int(crop_seconds * SAMPLING_RATE)
    wait = compute = 0.0
    samples = done = 0
    with PeakRSS() as memory:
        while done < steps:
            it = iter(loader)
            while done < steps:
                t0 = time.perf_counter()
                try:
                    b = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                rng = np.random.default_rng(done)
                waves = [augmenter(w, rng) for w in crop_batch(b["waves"], b["source_ids"].tolist(), crop, rng)]
                x = extractor(waves, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt")
                out = model(x["input_values"], attention_mask=x["attention_mask"], labels=b["labels"], is_reconstructed=b["is_reconstructed"])
                out.loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                t2 = time.perf_counter()
                if done > 0:  # the first step pays one-off costs (worker start-up, kernel selection)
                    wait, compute, samples = wait + t1 - t0, compute + t2 - t1, samples + len(b["labels"])
                done += 1
    return {"samples_per_s": samples / (wait + compute), "wait_share": wait / (wait + compute), "peak_rss_growth_mib": memory.growth / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop-seconds", type=float, default=1.0)
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--model-config", nargs="+", default=[str(ROOT / "configs" / "model" / "tiny.json")])
    parser.add_argument("--augment-from", help="a training YAML whose augment section to use (default: heavier than the demo's, %s)" % DEFAULT_AUGMENT)
    parser.add_argument("--clips", type=int, default=48, help="clips of the generated corpus the dataset is built from")
    parser.add_argument("--clip-seconds", type=float, default=2.0)
    args = parser.parse_args()
    augment = load_train_config(args.augment_from).augment if args.augment_from else DEFAULT_AUGMENT
    with tempfile.TemporaryDirectory() as tmp:
        split = build_train_split(Path(tmp), args.clips, args.clip_seconds)
        print(f"train split: {len(split)} rows; batch {args.batch} x {args.crop_seconds:g} s crops; {args.steps} steps; "
              f"augment {augment}; torch threads {torch.get_num_threads()}")
        print(f"{'model':<24}{'DataLoader workers':>20}{'samples/s':>12}{'vs first':>10}{'data wait share':>18}{'peak RSS growth (MiB)':>24}")
        first: dict[int, float] = {}
        for workers in args.num_workers:
            for model_config in args.model_config:
                r = run(split, model_config, args.steps, args.batch, workers, args.crop_seconds, augment)
                ratio = r["samples_per_s"] / first.setdefault(workers, r["samples_per_s"])
                print(f"{Path(model_config).name:<24}{workers:>20}{r['samples_per_s']:>12.1f}{ratio:>9.2f}x"
                      f"{100 * r['wait_share']:>17.1f}%{r['peak_rss_growth_mib']:>24.0f}")
        print("target: data wait share < 10 %")


if __name__ == "__main__":
    main()
