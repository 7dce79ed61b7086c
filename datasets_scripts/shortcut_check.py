"""Shortcut check: can a trivial, non-learned feature tell bona fide from spoof?

Each feature below is used directly as a score and its EER reported. A dataset whose classes differ
in level, band-width, silence or length lets a detector score well without learning anything about
spoofing; a healthy dataset keeps every feature near 50 % EER. Because a feature may separate the
classes in either direction, the table reports ``best``: min(EER, 100 - EER), the EER of the better
polarity (a score and its negation have EERs summing to 100 %).

Silence and noise floor use an absolute threshold (-50 dBFS frame RMS), a different rule from the
relative one :mod:`datasets_scripts.postprocess` trims with, so that equal trimming does not make
them look equal by construction.

    python -m datasets_scripts.shortcut_check DATASET_DIR [--split test] [--max-per-class 500] [--per-attack]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable

import numpy as np

from racl.audio import AudioDecodeError, decode_audio_cell
from racl.labels import SAMPLING_RATE
from racl.metrics import compute_eer

from .loading import DatasetLoadError, load_rows

FRAME = 400  # 25 ms
HOP = 160  # 10 ms
SILENCE_DB = -50.0
EPS = 1e-10


def frames(wave: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    """(n, frame) windows every ``hop`` samples; a clip shorter than one frame is zero-extended to one."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size < frame:
        wave = np.pad(wave, (0, frame - wave.size))
    return np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop]


def _frame_db(wave: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(frames(wave) ** 2, axis=1) + EPS)


def _power_spectrum(wave: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(frames(wave) * np.hanning(FRAME), axis=1)) ** 2 + EPS


def spectral_flatness(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Mean over frames of geometric / arithmetic mean of the power spectrum (0 tonal … 1 white)."""
    p = _power_spectrum(wave)
    return float(np.mean(np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1)))


def high_band_ratio(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Share of the energy above 4 kHz, in dB."""
    p = _power_spectrum(wave).sum(axis=0)
    freqs = np.fft.rfftfreq(FRAME, 1 / sr)
    return float(10 * np.log10(p[freqs >= 4000].sum() / p.sum()))


def rms_level(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Whole-clip RMS in dBFS."""
    return float(10 * np.log10(np.mean(np.asarray(wave, dtype=np.float64) ** 2) + EPS))


def duration(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Length in seconds."""
    return len(wave) / sr


def _silent_run(db: np.ndarray) -> int:
    loud = np.flatnonzero(db > SILENCE_DB)
    return int(loud[0]) if loud.size else len(db)


def leading_silence(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Seconds before the first frame above -50 dBFS."""
    return _silent_run(_frame_db(wave)) * HOP / sr


def trailing_silence(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Seconds after the last frame above -50 dBFS."""
    return _silent_run(_frame_db(wave)[::-1]) * HOP / sr


def zero_crossing_rate(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """Sign changes per sample."""
    s = np.signbit(np.asarray(wave))
    return float(np.mean(s[1:] != s[:-1])) if len(s) > 1 else 0.0


def noise_floor(wave: np.ndarray, sr: int = SAMPLING_RATE) -> float:
    """10th percentile of frame RMS, in dB: the level of pauses (digital silence vs room noise)."""
    return float(np.percentile(_frame_db(wave), 10))


FEATURES: dict[str, Callable[[np.ndarray, int], float]] = {
    "spectral_flatness": spectral_flatness,
    "energy_above_4k_db": high_band_ratio,
    "rms_dbfs": rms_level,
    "duration_s": duration,
    "leading_silence_s": leading_silence,
    "trailing_silence_s": trailing_silence,
    "zero_crossing_rate": zero_crossing_rate,
    "noise_floor_db": noise_floor,
}


def eer_percent(scores: Iterable[float], labels: Iterable[int]) -> float:
    """EER in % for scores where higher = bona fide and labels 0 = bona fide, 1 = spoof."""
    scores, labels = np.asarray(list(scores), dtype=np.float64), np.asarray(list(labels), dtype=int)
    return 100.0 * float(compute_eer(scores, labels)[0])


def feature_table(waves: list[np.ndarray], sr: int = SAMPLING_RATE) -> dict[str, np.ndarray]:
    """Every feature of every clip: name → array of values."""
    return {name: np.array([fn(w, sr) for w in waves]) for name, fn in FEATURES.items()}


def shortcut_eers(items: list[tuple[np.ndarray, int]], sr: int = SAMPLING_RATE) -> dict[str, dict[str, float]]:
    """For (wave, label) pairs: per feature, the EER of the feature as score and the best polarity's EER."""
    labels = np.array([label for _, label in items])
    if len(set(labels.tolist())) != 2:
        raise ValueError("need clips of both classes (0 = bona fide, 1 = spoof)")
    out = {}
    for name, values in feature_table([w for w, _ in items], sr).items():
        eer = eer_percent(values, labels)
        out[name] = {"eer": eer, "best": min(eer, 100 - eer)}
    return out


def format_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Rows = features, columns = groups (all, or per attack); each cell 'best of either polarity' EER %."""
    groups = list(results)
    lines = [f"{'feature':22s}" + "".join(f"{g[:18]:>19s}" for g in groups)]
    for feature in FEATURES:
        lines.append(f"{feature:22s}" + "".join(f"{results[g][feature]['best']:18.1f}%" for g in groups))
    return "\n".join(lines)


def _group_names(ds) -> np.ndarray:
    """Attack per row, reconstructions as ``rec:<paradigm>`` (they carry their source's attack)."""
    attacks = np.array(ds["attack"], dtype=object)
    if "is_reconstructed" in ds.column_names:
        rec = np.array(ds["is_reconstructed"], dtype=bool)
        attacks[rec] = [f"rec:{r}" for r in np.array(ds["reconstruction"], dtype=object)[rec]]
    return attacks


def clip(ds, row: int) -> np.ndarray:
    """Row ``row``'s audio (an undecoded cell) as mono float32 at 16 kHz."""
    item = ds[int(row)]
    return decode_audio_cell(item["audio"], item.get("utt_id") or f"row {row}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--split", default=None, help="one split (default: all splits together)")
    parser.add_argument("--max-per-class", type=int, default=500, help="random subsample per class (0 = all)")
    parser.add_argument("--per-attack", action="store_true", help="one column per attack and per reconstruction paradigm (each vs the bona fide clips)")
    parser.add_argument("--seed", type=int, default=0)
    return run_reporting_errors("shortcut_check", run, parser.parse_args(argv))


def run_reporting_errors(prog: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``run(args)``, with a dataset that cannot be loaded or decoded as one line and exit status 2."""
    try:
        return run(args)
    except (DatasetLoadError, AudioDecodeError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    ds = load_rows(args.dataset_dir, args.split, undecoded_audio=True)
    labels, attacks = np.array(ds["label"]), _group_names(ds)
    if set(labels.tolist()) != {0, 1}:
        raise DatasetLoadError(f"{args.dataset_dir}: the check needs bona fide and spoof clips; labels found: {sorted(set(labels.tolist()))}")
    rng = np.random.default_rng(args.seed)
    keep = []
    for label in (0, 1):
        idx = np.flatnonzero(labels == label)
        if args.max_per_class and idx.size > args.max_per_class:
            idx = np.sort(rng.choice(idx, args.max_per_class, replace=False))
        keep.extend(idx.tolist())
    waves = {i: clip(ds, i) for i in keep}
    groups = {"all": keep}
    if args.per_attack:
        bona = [i for i in keep if labels[i] == 0]
        for attack in sorted(set(attacks[keep][labels[keep] == 1])):
            groups[attack] = bona + [i for i in keep if attacks[i] == attack]
    results = {g: shortcut_eers([(waves[i], int(labels[i])) for i in idx]) for g, idx in groups.items()}
    print(f"{len(keep)} clips; EER % of each feature as a score, best of either polarity (50 = chance)")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
