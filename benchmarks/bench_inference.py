"""Inference cost per path (fp32 eager, bf16, int8, ONNX fp32, ONNX int8), measured side by side in one run.

Full-size XLS-R 300M shape (random weights, no download): ``RACLForAudioClassification`` (one backbone pass
+ aggregation + AASIST) and ``transformers.Wav2Vec2ForSequenceClassification`` with the same backbone, each
on every path. Timed batches go round-robin over every (path, model) pair, so machine noise hits all alike.
Prints, per path:

- RTF (wall seconds per second of audio), its ratio to fp32 eager and to the fp32 physical limit
  (backbone FLOPs per audio second / measured matmul FLOP/s), and RACL / baseline (target <= 1.05);
- peak RSS growth during one forward; max |logit - fp32 logit| on the batch;
- a long file streamed through ``racl.scoring.Scorer`` (``--long-seconds``) on fp32 and on the fastest path:
  RTF, its ratio to the single-window RTF (windows overlap by half: ~2x), peak RSS growth.

With ``--demo-model`` (a trained model folder) and ``--demo-data`` (its dataset folder): the same paths on it,
RTF on one clip and EER on its test split per path (the accuracy cost of each path).

    python -m benchmarks.bench_inference [--seconds 4] [--batch 2] [--repeats 3] [--paths fp32,bf16,int8,onnx-fp32,onnx-int8]
        [--long-seconds 120] [--demo-model DIR --demo-data DIR]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import tempfile
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import Wav2Vec2ForSequenceClassification

from modeling_racl import RACLConfig, RACLForAudioClassification
from racl.config import read_model_config
from racl.export import default_feature_extractor, export_onnx
from racl.precision import OnnxRunner, TorchRunner, native_bf16
from racl.scoring import Scorer

from .peak_memory import PeakRSS

SR = 16_000
PATHS = ("fp32", "bf16", "int8", "onnx-fp32", "onnx-int8")


def split_path(path: str) -> tuple[str, str]:
    """'onnx-int8' → ('onnx', 'int8'); 'bf16' → ('torch', 'bf16')."""
    return tuple(path.split("-")) if path.startswith("onnx-") else ("torch", path)


def make_runners(model: torch.nn.Module, paths: list[str], onnx_dir: str | None) -> dict:
    """One runner per path; torch's int8 quantises a copy, the ONNX graphs come from ``onnx_dir``."""
    runners = {}
    for path in paths:
        backend, precision = split_path(path)
        if backend == "onnx":
            runners[path] = OnnxRunner(onnx_dir, precision)
        else:
            runners[path] = TorchRunner(copy.deepcopy(model) if precision == "int8" else model, precision)
    return runners


def timed(runner, x, mask) -> float:
    start = time.perf_counter()
    runner(x, mask)
    return time.perf_counter() - start


def peak_growth(runner, x, mask) -> int:
    with PeakRSS() as meter:
        runner(x, mask)
    return meter.growth


def matmul_flops_per_second(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


@torch.no_grad()  # FlopCounterMode cannot read weight-norm parametrisations under inference_mode
def backbone_flops_per_audio_second(backbone, seconds: float) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        backbone(torch.randn(1, int(seconds * SR)))
    return counter.get_total_flops() / seconds


def export_all(models: dict, paths: list[str], workdir: str) -> dict:
    """The ONNX graphs of each model (only when an ONNX path is asked for), and how long the export took."""
    folders = {}
    if not any(p.startswith("onnx-") for p in paths):
        return folders
    for name, model in models.items():
        folder = os.path.join(workdir, name)
        start = time.perf_counter()
        export_onnx(model, folder, int8="onnx-int8" in paths)
        print(f"exported {name} to ONNX in {time.perf_counter() - start:.0f} s")
        folders[name] = folder
    return folders


def side_by_side(runners: dict, x, mask, repeats: int) -> dict:
    """Median seconds per (model, path), timed round-robin after one warm-up each."""
    times = {key: [] for key in runners}
    for key, runner in runners.items():
        runner(x, mask)
    for _ in range(repeats):
        for key, runner in runners.items():
            times[key].append(timed(runner, x, mask))
    return {key: float(np.median(v)) for key, v in times.items()}


def long_file(model, extractor, runner, seconds: float, batch: int, span_windows: int = 0) -> tuple[float, float, int]:
    """(RTF, windows, peak RSS growth) of a long file streamed through the scorer in 32 s pieces."""
    scorer = Scorer(model, extractor, batch_size=batch, runner=runner, stream_seconds=0, span_windows=span_windows)
    rng = np.random.default_rng(0)
    pieces = (0.1 * rng.standard_normal(int(min(32, seconds - s) * SR)).astype(np.float32) for s in np.arange(0, seconds, 32))
    with PeakRSS() as meter:
        start = time.perf_counter()
        result = scorer.score_stream(pieces, "long")
        elapsed = time.perf_counter() - start
    return elapsed / seconds, len(result.windows), meter.growth


def vad_cost(seconds: float = 60.0) -> float:
    """RTF of the speech detector (racl.vad) on noise."""
    from racl.vad import SpeechDetector

    detector = SpeechDetector()
    wave = (0.1 * np.random.default_rng(2).standard_normal(int(seconds * SR))).astype(np.float32)
    detector.probabilities(wave[:SR])  # warm-up
    start = time.perf_counter()
    detector.probabilities(wave)
    return (time.perf_counter() - start) / seconds


def folder_throughput(model: str, files: int, workdir: str) -> None:
    """Files/s of accelerate-launched folder scoring (racl.evaluation.folder_scoring) with 1 and with 2 processes (one
    thread each, the cores shared out), and with 1 process on 1 thread (what 2 processes double without oversubscription)."""
    import re
    import subprocess
    import sys

    import soundfile as sf

    folder = os.path.join(workdir, "folder")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(files):
        sf.write(os.path.join(folder, f"clip{i:04d}.wav"), (0.1 * rng.standard_normal(4 * SR)).astype(np.float32), SR)
    rates = {}
    for processes, threads in ((1, None), (1, 1), (2, None)):
        out = os.path.join(workdir, f"scores{processes}-{threads}.jsonl")
        launcher = ["--multi_gpu"] if processes > 1 else []  # accelerate's torchrun launcher; it refuses a single process
        command = [sys.executable, "-m", "accelerate.commands.launch", *launcher, "--num_processes", str(processes), "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "racl.evaluation.folder_scoring", "--model", model, "--out", out, *(["--threads", str(threads)] if threads else []), folder]
        log = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}).stderr
        runs = [(int(n), float(t)) for n, t in re.findall(r"process \d+: (\d+) files in ([\d.]+) s", log)]
        cores = re.search(r"(\d+) core\(s\) available, (\d+) thread", log)
        rates[processes, threads] = sum(n for n, _ in runs) / max(t for _, t in runs)
        print(f"folder scoring, {processes} process(es): {rates[processes, threads]:.2f} files/s ({files} files of 4 s; "
              f"{cores.group(1)} cores available, {cores.group(2)} thread(s) per process)")
    print(f"2 processes / 1: {rates[2, None] / rates[1, None]:.2f}x, / 1 on one thread: {rates[2, None] / rates[1, 1]:.2f}x "
          "(target >= 1.7 where both cores are free)")


def bench_xlsr(args, workdir: str) -> None:
    torch.manual_seed(0)
    config = RACLConfig(**read_model_config(args.config))
    config.backbone_name_or_path = None  # the architecture only: random weights
    racl = RACLForAudioClassification(config).eval()
    baseline = Wav2Vec2ForSequenceClassification(config.backbone_config).eval()
    x = torch.randn(args.batch, int(args.seconds * SR))
    mask = torch.ones(x.shape, dtype=torch.long)
    audio_seconds = args.batch * args.seconds
    onnx = export_all({"racl": racl, "baseline": baseline}, args.paths, workdir)
    runners = {}
    for name, model in (("racl", racl), ("baseline", baseline)):
        for path, runner in make_runners(model, args.paths, onnx.get(name)).items():
            runners[(name, path)] = runner
    seconds = side_by_side(runners, x, mask, args.repeats)
    rtf = {key: s / audio_seconds for key, s in seconds.items()}
    memory = {key: peak_growth(r, x, mask) for key, r in runners.items() if key[0] == "racl"}
    reference = runners[("racl", "fp32")](x, mask)
    logit_diff = {path: float((runners[("racl", path)](x, mask) - reference).abs().max()) for path in args.paths}
    physical = backbone_flops_per_audio_second(racl.backbone, args.seconds) / matmul_flops_per_second()

    print(f"\nmodel shape {args.config} (random weights), batches of {args.batch} x {args.seconds:g} s, {args.repeats} timed rounds, median;"
          f" fp32 physical-limit RTF {physical:.3f}")
    print(f"{'path':<11}{'RACL RTF':>10}{'vs fp32':>9}{'vs limit':>10}{'baseline RTF':>14}{'RACL/base':>11}{'peak RSS +MiB':>15}{'max|dlogit|':>13}")
    for path in args.paths:
        r, b = rtf[("racl", path)], rtf[("baseline", path)]
        print(f"{path:<11}{r:>10.4f}{r / rtf[('racl', 'fp32')]:>8.2f}x{r / physical:>9.2f}x{b:>14.4f}{r / b:>11.3f}"
              f"{memory[('racl', path)] / 2**20:>15.0f}{logit_diff[path]:>13.2e}")
    fastest = min(args.paths, key=lambda p: rtf[("racl", p)])
    print(f"fastest path: {fastest}, RTF {rtf[('racl', fastest)]:.4f} (target <= 0.165; fp32 limit measured here {physical:.3f})")
    if args.long_seconds > 0:
        extractor = default_feature_extractor(config)
        for path in dict.fromkeys(["fp32", fastest]):
            if split_path(path)[0] != "torch":
                continue  # span encoding runs on the torch backend; the ONNX paths' long files are windows alone
            for span in (0, args.span_windows):
                long_rtf, windows, growth = long_file(racl, extractor, runners[("racl", path)], args.long_seconds, args.batch, span)
                how = f"spans of {span} windows" if span else "each window alone"
                print(f"long file ({path}, {how}): {args.long_seconds:g} s streamed in {windows} windows ({config.score_window_seconds:g} s, hop "
                      f"{config.score_hop_seconds:g} s): RTF {long_rtf:.4f} = {long_rtf / rtf[('racl', path)]:.2f}x the single-window RTF; "
                      f"peak RSS +{growth / 2**20:.0f} MiB")


def bench_demo(args, workdir: str) -> None:
    from datasets import load_dataset

    from racl.evaluation.dataset import score_dataset
    from racl.metrics import compute_eer
    from racl.scoring import load_detector

    model, extractor = load_detector(args.demo_model, "cpu")
    onnx = export_all({"demo": model}, args.paths, workdir)
    runners = make_runners(model, args.paths, onnx.get("demo"))
    x = extractor([np.random.default_rng(1).standard_normal(4 * SR).astype(np.float32)], sampling_rate=SR, return_tensors="pt")["input_values"]
    mask = torch.ones(x.shape, dtype=torch.long)
    seconds = side_by_side(runners, x, mask, max(args.repeats, 10))
    test = load_dataset("parquet", data_files={"test": os.path.join(args.demo_data, "test-*.parquet")})["test"]
    if args.demo_rows:
        test = test.select(range(min(args.demo_rows, len(test))))
    print(f"\ndemo model ({os.path.basename(os.path.normpath(args.demo_model))}): one 4 s clip, {max(args.repeats, 10)} rounds; "
          f"EER on {len(test)} test clips")
    print(f"{'path':<11}{'RTF':>9}{'vs fp32':>9}{'EER (%)':>9}{'dEER (pt)':>11}")
    eers = {}
    for path in args.paths:
        scorer = Scorer(model, extractor, batch_size=16, runner=runners[path])
        table = score_dataset(scorer, dataset=test, batch_size=16, return_embeddings=False)
        eers[path] = 100 * compute_eer(table.score, table.label)[0]
        r = seconds[path] / 4
        print(f"{path:<11}{r:>9.4f}{r / (seconds['fp32'] / 4):>8.2f}x{eers[path]:>9.2f}{eers[path] - eers['fp32']:>+11.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/model/xlsr300m_aasist.json", help="the full-size model config (random weights)")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length of the side-by-side batches")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds over every path and model (after one warm-up each)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated, from " + ", ".join(PATHS))
    parser.add_argument("--long-seconds", type=float, default=120.0, help="length of the long file streamed end to end (0 skips)")
    parser.add_argument("--span-windows", type=int, default=8, help="the long file is also scored with spans of this many windows")
    parser.add_argument("--demo-model", help="a trained model folder to measure too")
    parser.add_argument("--demo-data", help="its dataset folder (Parquet splits): the paths' RTF and test-split EER on it")
    parser.add_argument("--demo-rows", type=int, help="score only the first N test clips")
    parser.add_argument("--skip-xlsr", action="store_true", help="the demo model only")
    parser.add_argument("--folder-files", type=int, default=0, help="folder scoring of this many files with 1 and 2 processes (--demo-model)")
    args = parser.parse_args()
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if "fp32" not in args.paths or not set(args.paths) <= set(PATHS):
        parser.error(f"--paths must include fp32 and be among {', '.join(PATHS)}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{datetime.date.today()}: {platform.processor() or platform.machine()}, {cores} cores, {torch.get_num_threads()} torch threads, "
          f"load average {os.getloadavg()[0]:.1f}, native bf16: {native_bf16(torch.device('cpu'))}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as workdir:
        if not args.skip_xlsr:
            bench_xlsr(args, workdir)
        if args.demo_model and args.demo_data:
            bench_demo(args, workdir)
        if args.demo_model and args.folder_files:
            folder_throughput(args.demo_model, args.folder_files, workdir)
        vad_rtf = vad_cost()
        print(f"speech detector (silero-vad, racl.vad): RTF {vad_rtf:.4f} on one thread")


if __name__ == "__main__":
    main()
