"""Visibility check: does a paradigm's trace survive the dataset's processing?

A reconstruction is labelled spoof. If, after the common final processing, it cannot be told from its
own source clip, training on it labels near-copies of bona fide speech as spoof: label noise that also
costs the detector the paradigms it could learn (measured on the demo, docs/demo.md).

For each paradigm (and source kind: reconstructions of bona fide and of spoofed clips apart), every
reconstruction is paired with its source row (``source_id``). Each clip is summarised by the mean,
standard deviation and mean frame-to-frame change of its log energies, in 60 mel bands and in the 257
bins of a 512-point STFT (32 ms Hann window, 10 ms hop; ``--n-fft`` / ``--hop`` change it), and a
logistic regression tells reconstruction from source, cross-validated so that a source and its
reconstruction are never split between training and test folds. About 50 % accuracy: the trace is
invisible in these clip statistics (a learned detector may still find local traces they miss, so this
is a first look, not a proof).

    python -m datasets_scripts.visibility_check DATASET_DIR [--split train] [--folds 5] [--n-fft 512 --hop 160]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from racl.labels import SAMPLING_RATE

from .loading import DatasetLoadError, load_rows
from .shortcut_check import clip, frames, run_reporting_errors

N_FFT = 512
HOP = 160
MEL_BANDS = 60
EPS = 1e-10
FEATURE_SETS = ("mel", "linear")


def _mel_matrix(n_fft: int = N_FFT) -> np.ndarray:
    import torchaudio.functional as AF

    return AF.melscale_fbanks(n_fft // 2 + 1, 0.0, SAMPLING_RATE / 2, MEL_BANDS, SAMPLING_RATE).numpy().astype(np.float64)


def log_spectral_statistics(wave: np.ndarray, mel: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> dict[str, np.ndarray]:
    """Per-bin mean, std and mean |frame-to-frame change| of the log (mel / linear) power spectrogram."""
    power = np.abs(np.fft.rfft(frames(wave, n_fft, hop) * np.hanning(n_fft), axis=1)) ** 2
    out = {}
    for name, spectrogram in (("mel", power @ mel), ("linear", power)):
        log = np.log(spectrogram + EPS)
        change = np.abs(np.diff(log, axis=0)).mean(axis=0) if len(log) > 1 else np.zeros(log.shape[1])
        out[name] = np.concatenate([log.mean(axis=0), log.std(axis=0), change])
    return out


def pair_accuracy(pairs: list[tuple[np.ndarray, np.ndarray]], folds: int = 5, n_fft: int = N_FFT,
                  hop: int = HOP) -> dict[str, float]:
    """Cross-validated accuracy of telling each pair's second clip (reconstruction) from its first (source).

    Returns ``{"mel": acc, "linear": acc}``; 0.5 is chance. Needs at least ``folds`` pairs. ``n_fft`` /
    ``hop``: the STFT the statistics are taken on (a longer window resolves harmonics, where the traces
    of phase reconstruction show).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(pairs) < folds:
        raise ValueError(f"visibility check: {len(pairs)} pairs, need at least {folds} (one per fold)")
    mel = _mel_matrix(n_fft)
    features = [log_spectral_statistics(w, mel, n_fft, hop) for pair in pairs for w in pair]
    labels = np.tile([0, 1], len(pairs))
    groups = np.repeat(np.arange(len(pairs)), 2)  # a source and its reconstruction share a fold
    out = {}
    for name in FEATURE_SETS:
        x = np.nan_to_num(np.stack([f[name] for f in features]))
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        out[name] = float(cross_val_score(model, x, labels, groups=groups, cv=GroupKFold(folds)).mean())
    return out


def paired_groups(ds) -> dict[str, list[tuple[int, int]]]:
    """``"<paradigm> of bona fide|spoof"`` → [(source row, reconstruction row)] of one split."""
    row_of = {utt: i for i, utt in enumerate(ds["utt_id"])}
    labels = ds["label"]
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, (recon, is_recon, source) in enumerate(zip(ds["reconstruction"], ds["is_reconstructed"], ds["source_id"])):
        if not is_recon or source not in row_of:
            continue
        j = row_of[source]
        groups.setdefault(f"{recon} of {'bona fide' if labels[j] == 0 else 'spoof'}", []).append((j, i))
    return dict(sorted(groups.items()))


def format_table(results: dict[str, tuple[int, dict[str, float]]]) -> str:
    lines = [f"{'reconstructions':<34}{'pairs':>6}" + "".join(f"{name + ' acc':>12}" for name in FEATURE_SETS)]
    for group, (n, acc) in results.items():
        lines.append(f"{group:<34}{n:>6}" + "".join(f"{100 * acc[name]:>11.1f}%" for name in FEATURE_SETS))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--split", default="train", help="the split whose pairs are checked (default: train)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-pairs", type=int, default=200, help="per group, a seeded subsample (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-fft", type=int, default=N_FFT, help=f"STFT window in samples (default {N_FFT})")
    parser.add_argument("--hop", type=int, default=HOP, help=f"STFT hop in samples (default {HOP})")
    args = parser.parse_args(argv)
    if args.folds < 2 or args.max_pairs < 0:
        parser.error(f"--folds must be at least 2 (got {args.folds}) and --max-pairs at least 0 (got {args.max_pairs})")
    if args.hop < 1 or args.n_fft < 16:
        parser.error(f"--hop must be at least 1 (got {args.hop}) and --n-fft at least 16 (got {args.n_fft})")
    return run_reporting_errors("visibility_check", run, args)


def run(args: argparse.Namespace) -> int:
    ds = load_rows(args.dataset_dir, args.split, undecoded_audio=True)
    missing = {"utt_id", "label", "reconstruction", "is_reconstructed", "source_id"} - set(ds.column_names)
    if missing:
        raise DatasetLoadError(f"{args.dataset_dir}: not a hard-sample dataset (missing columns: {', '.join(sorted(missing))})")
    groups = paired_groups(ds)
    if not groups:
        raise DatasetLoadError(f"{args.dataset_dir}: split {args.split!r} holds no reconstruction whose source is in the split")
    rng = np.random.default_rng(args.seed)
    results = {}
    for name, pairs in groups.items():
        if args.max_pairs and len(pairs) > args.max_pairs:
            pairs = [pairs[k] for k in np.sort(rng.choice(len(pairs), args.max_pairs, replace=False))]
        if len(pairs) < args.folds:
            print(f"{name}: {len(pairs)} pairs, fewer than --folds {args.folds}: skipped", file=sys.stderr)
            continue
        waves = [(clip(ds, j), clip(ds, i)) for j, i in pairs]
        results[name] = (len(pairs), pair_accuracy(waves, args.folds, args.n_fft, args.hop))
    print(f"split {args.split}, {args.n_fft}-point STFT, hop {args.hop}: accuracy of telling a reconstruction "
          "from its own source clip (50 % = invisible)")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
