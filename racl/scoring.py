"""Full-length scoring of audio with a RACL detector (library + ``racl-score`` CLI).

Long audio is cut into windows (``score_window_seconds``, hop ``score_hop_seconds`` from the model
config); windows of many files are scored together in padded, masked batches, and each file's score
is the mean of its window scores. Score and probability are the model's own definitions
(``scores_from_logits``: ``logit[bonafide] - logit[spoof]``, higher = more bona fide;
``bonafide_probability``: calibrated p(bonafide)).

    racl-score --model FOLDER_OR_HUB_ID [--format table|csv|json] PATH...
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from . import SAMPLING_RATE
from .audio import AudioDecodeError, check_waveform, find_audio_files, load_audio


@dataclass
class WindowScore:
    start: float  # seconds
    end: float
    score: float


@dataclass
class ClipScore:
    path: str
    score: float | None = None
    p_bonafide: float | None = None
    label: str | None = None
    duration: float | None = None
    error: str = ""
    windows: list[WindowScore] = field(default_factory=list)


def window_spans(num_samples: int, window: int, hop: int) -> list[tuple[int, int]]:
    """Start/end sample of each window; the last window ends at the clip's end so no audio is left out."""
    if num_samples <= window:
        return [(0, num_samples)]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return [(s, s + window) for s in starts]


def load_detector(name_or_path: str, device: str | torch.device | None = None):
    """Model + feature extractor from a folder or Hub id (remote code trusted: it is this project's)."""
    model = AutoModelForAudioClassification.from_pretrained(name_or_path, trust_remote_code=True)
    extractor = AutoFeatureExtractor.from_pretrained(name_or_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), extractor


class Scorer:
    """Scores waveforms (16 kHz mono float32) in batches of windows."""

    def __init__(self, model, feature_extractor, batch_size: int = 16, window_seconds: float | None = None, hop_seconds: float | None = None):
        self.model = model
        self.extractor = feature_extractor
        self.batch_size = batch_size
        self.window = int(SAMPLING_RATE * (window_seconds or model.config.score_window_seconds))
        self.hop = int(SAMPLING_RATE * (hop_seconds or model.config.score_hop_seconds))
        self.device = next(model.parameters()).device
        self.min_samples = model.config.min_input_samples

    @classmethod
    def from_pretrained(cls, name_or_path: str, device=None, **kwargs) -> "Scorer":
        return cls(*load_detector(name_or_path, device), **kwargs)

    @torch.inference_mode()
    def score_windows(self, windows: list[np.ndarray]) -> np.ndarray:
        """One score per window; windows of unequal length are padded and masked."""
        scores = []
        for i in range(0, len(windows), self.batch_size):
            batch = self.extractor(
                windows[i : i + self.batch_size], sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
            )
            logits = self.model(batch["input_values"].to(self.device), attention_mask=batch["attention_mask"].to(self.device)).logits
            scores.append(self.model.scores_from_logits(logits).float().cpu())
        return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)

    @torch.inference_mode()
    def probability(self, score: float) -> float:
        """The model's calibrated p(bonafide) of a clip score (in float64: a clip score is a mean of window scores)."""
        return float(self.model.bonafide_probability(torch.tensor(score, dtype=torch.float64)))

    def check_length(self, wave: np.ndarray, name: str) -> np.ndarray:
        if len(wave) < self.min_samples:
            raise AudioDecodeError(
                f"{name}: too short to score ({len(wave)} samples; the model needs at least {self.min_samples}, "
                f"{1000 * self.min_samples / SAMPLING_RATE:.0f} ms at 16 kHz)"
            )
        return wave

    def score_waveforms(self, waves: list[np.ndarray], names: list[str] | None = None) -> list[ClipScore]:
        names = names or [f"clip{i}" for i in range(len(waves))]
        for wave, name in zip(waves, names):
            self.check_length(wave, name)
        spans = [window_spans(len(w), self.window, self.hop) for w in waves]
        flat = [w[s:e] for w, clip_spans in zip(waves, spans) for s, e in clip_spans]
        window_scores = iter(self.score_windows(flat).tolist())
        results = []
        for name, wave, clip_spans in zip(names, waves, spans):
            per_window = [WindowScore(s / SAMPLING_RATE, e / SAMPLING_RATE, next(window_scores)) for s, e in clip_spans]
            score = float(np.mean([w.score for w in per_window]))
            p = self.probability(score)
            results.append(
                ClipScore(path=name, score=score, p_bonafide=p, label="bonafide" if p >= 0.5 else "spoof", duration=len(wave) / SAMPLING_RATE, windows=per_window)
            )
        return results

    def score_waveform(self, wave: np.ndarray, name: str = "clip") -> ClipScore:
        return self.score_waveforms([check_waveform(np.asarray(wave, dtype=np.float32), name)], [name])[0]

    def score_files(self, paths: list[str], files_per_batch: int = 8, progress: bool = False) -> list[ClipScore]:
        """Decode and score files; an unreadable file becomes a row with ``error`` set, the rest go on."""
        from tqdm.auto import tqdm

        results: list[ClipScore] = []
        pending: list[tuple[str, np.ndarray]] = []

        def flush():
            if pending:
                results.extend(self.score_waveforms([w for _, w in pending], [p for p, _ in pending]))
                pending.clear()

        for path in tqdm(paths, disable=not progress, desc="scoring", unit="file"):
            try:
                pending.append((path, self.check_length(load_audio(path), path)))
            except AudioDecodeError as error:
                flush()  # keep output in input order
                results.append(ClipScore(path=path, error=str(error)))
                continue
            if len(pending) >= files_per_batch:
                flush()
        flush()
        return results


def format_results(results: list[ClipScore], fmt: str) -> str:
    columns = ["path", "score", "p_bonafide", "label", "error"]
    if fmt == "json":
        return json.dumps([asdict(r) for r in results], indent=2)
    rows = [[r.path, _num(r.score), _num(r.p_bonafide), r.label or "", r.error] for r in results]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="racl-score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--window", type=float, help="window seconds (default: the model's)")
    parser.add_argument("--hop", type=float, help="hop seconds (default: the model's)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("paths", nargs="+", help="audio files or folders (searched recursively)")
    args = parser.parse_args(argv)

    try:
        scorer = Scorer.from_pretrained(args.model, device=args.device, batch_size=args.batch_size, window_seconds=args.window, hop_seconds=args.hop)
    except (OSError, ValueError) as error:
        print(f"racl-score: cannot load model {args.model!r}: {error}", file=sys.stderr)
        return 2
    paths = find_audio_files(args.paths)
    if not paths:
        print("racl-score: no audio files found in the given paths", file=sys.stderr)
        return 2
    results = scorer.score_files(paths, progress=sys.stderr.isatty())
    for r in results:
        if r.error:
            print(f"racl-score: {r.error}", file=sys.stderr)
    print(format_results(results, args.format))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
