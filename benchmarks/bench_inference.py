"""Inference cost of RACL vs. the plain backbone classifier, measured side by side in one run.

Builds the full-size XLS-R 300M architecture from its config (random weights, no download) twice:
``RACLForAudioClassification`` (one backbone pass + aggregation + AASIST) and
``transformers.Wav2Vec2ForSequenceClassification`` with the same backbone config. Batches alternate
between the two so machine noise hits both alike. Prints:

- RTF (wall seconds per second of audio) of each, and their ratio (target <= 1.05);
- peak memory of each (CUDA allocator peak, or process RSS growth on CPU);
- RTF of scoring one long file with ``racl.scoring.Scorer`` (default 10 minutes, windows + hop of the config);
- the fp32 physical-limit RTF: backbone FLOPs per audio second / measured matmul FLOP/s.

    python -m benchmarks.bench_inference [--seconds 4] [--batch 2] [--repeats 5] [--long-seconds 600]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import Wav2Vec2ForSequenceClassification

from modeling_racl import RACLConfig, RACLForAudioClassification
from racl.export import default_feature_extractor
from racl.scoring import Scorer

from .peak_memory import PeakRSS

SR = 16_000


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def timed_forward(model, x, device) -> float:
    sync(device)
    start = time.perf_counter()
    model(x)
    sync(device)
    return time.perf_counter() - start


@torch.inference_mode()
def peak_memory(model, x, device) -> int:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        model(x)
        return torch.cuda.max_memory_allocated()
    with PeakRSS() as meter:
        model(x)
    return meter.growth


def matmul_flops_per_second(device, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


@torch.no_grad()  # FlopCounterMode cannot read weight-norm parametrisations under inference_mode
def backbone_flops_per_audio_second(backbone, seconds: float, device) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        backbone(torch.randn(1, int(seconds * SR), device=device))
    return counter.get_total_flops() / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length of the side-by-side batches")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per model (after one warm-up each)")
    parser.add_argument("--long-seconds", type=float, default=600.0, help="length of the long file scored end to end (0 skips)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    config = RACLConfig()  # the XLS-R 300M architecture, random weights
    racl = RACLForAudioClassification(config).to(device).eval()
    baseline = Wav2Vec2ForSequenceClassification(config.backbone_config).to(device).eval()
    x = torch.randn(args.batch, int(args.seconds * SR), device=device)
    audio_seconds = args.batch * args.seconds

    for model in (racl, baseline):  # warm-up
        timed_forward(model, x, device)
    times = {"racl": [], "baseline": []}
    for _ in range(args.repeats):  # interleaved, so noise hits both
        times["racl"].append(timed_forward(racl, x, device))
        times["baseline"].append(timed_forward(baseline, x, device))
    rtf = {k: float(np.median(v)) / audio_seconds for k, v in times.items()}
    memory = {"racl": peak_memory(racl, x, device), "baseline": peak_memory(baseline, x, device)}

    flops = backbone_flops_per_audio_second(racl.backbone, args.seconds, device)
    peak_flops = matmul_flops_per_second(device)
    physical_rtf = flops / peak_flops

    print(f"device: {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), torch {torch.__version__}")
    print(f"batches: {args.batch} x {args.seconds:g} s, {args.repeats} timed repeats each, interleaved; median reported")
    print(f"{'model':<44}{'RTF (s/s)':>12}{'peak mem (MiB)':>16}")
    print(f"{'RACL (XLS-R 300M + weighted agg + AASIST)':<44}{rtf['racl']:>12.4f}{memory['racl'] / 2**20:>16.0f}")
    print(f"{'Wav2Vec2ForSequenceClassification (same bb)':<44}{rtf['baseline']:>12.4f}{memory['baseline'] / 2**20:>16.0f}")
    print(f"ratio RACL / baseline RTF: {rtf['racl'] / rtf['baseline']:.3f} (target <= 1.05)")
    print(f"backbone: {flops / 1e9:.1f} GFLOP per audio second; matmul: {peak_flops / 1e9:.1f} GFLOP/s; fp32 physical-limit RTF: {physical_rtf:.3f}")

    if args.long_seconds > 0:
        scorer = Scorer(racl, default_feature_extractor(), batch_size=8)
        long_wave = np.random.default_rng(0).standard_normal(int(args.long_seconds * SR)).astype(np.float32) * 0.1
        start = time.perf_counter()
        result = scorer.score_waveform(long_wave, "long")
        elapsed = time.perf_counter() - start
        print(
            f"long file: {args.long_seconds:g} s scored in {len(result.windows)} windows "
            f"({config.score_window_seconds:g} s, hop {config.score_hop_seconds:g} s) in {elapsed:.1f} s: RTF {elapsed / args.long_seconds:.4f}"
        )


if __name__ == "__main__":
    main()
