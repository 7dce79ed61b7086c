"""Full-length scoring of audio with a RACL detector (library + ``racl-score`` CLI).

Long audio is cut into windows (``score_window_seconds``, hop ``score_hop_seconds`` from the model
config); windows of many files are scored together in padded, masked batches, and each file's score
is the mean of its window scores. Score and probability are the model's own definitions
(``scores_from_logits``: ``logit[bonafide] - logit[spoof]``, higher = more bona fide;
``bonafide_probability``: calibrated p(bonafide)).

With ``--vad`` only windows that hold speech vote (``racl.vad``); a file without speech is labelled
"no speech" and has no score. ``--precision`` and ``--backend`` choose how the forward pass runs
(``racl.precision``); files longer than ``--stream-seconds`` are decoded and scored piece by piece, so
memory does not grow with their length; ``--out`` appends each result to a CSV or JSONL file as it is
made, and a rerun skips the files already there (``racl.folder_scoring``).

    racl-score --model FOLDER_OR_HUB_ID [--format table|csv|json] [--vad] [--precision fp32|bf16|int8]
               [--backend torch|onnx] [--out scores.jsonl] PATH...
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
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

from . import SAMPLING_RATE
from .audio import AudioDecodeError, check_waveform, find_audio_files, load_audio
from .precision import BACKENDS, PRECISIONS, OnnxRunner, TorchRunner, check_choice
from .span_encoding import check_span_model, span_scores
from .streaming import stream_audio, streamable_seconds

NO_SPEECH = "no speech"  # the label of a file in which no window holds speech


def verdict(p_bonafide: float) -> str:
    """The label of a clip from its calibrated p(bonafide): bona fide from 0.5 up (one rule for every command)."""
    return "bonafide" if p_bonafide >= 0.5 else "spoof"


@dataclass
class WindowScore:
    start: float  # seconds
    end: float
    score: float
    speech: float | None = None  # seconds of speech in the window (None: not measured)
    votes: bool = True  # False: too little speech, left out of the clip's score
    familiarity: float | None = None  # distance to the training audio (None: the model has no fitted check)


@dataclass
class ClipScore:
    path: str
    score: float | None = None
    p_bonafide: float | None = None
    label: str | None = None
    duration: float | None = None
    speech_seconds: float | None = None
    error: str = ""
    windows: list[WindowScore] = field(default_factory=list)
    familiarity: float | None = None  # mean window distance to the training audio (modeling_racl/familiarity_racl.py)
    familiar: bool | None = None  # within the model's familiarity threshold; False: the verdict is not to be trusted


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


def load_detector_without_weights(name_or_path: str):
    """The model's config, score and probability definitions on the meta device, for a runner that holds the weights
    itself (ONNX): no memory spent on a second copy of them."""
    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=True)
    with torch.device("meta"):
        model = AutoModelForAudioClassification.from_config(config, trust_remote_code=True)
    return model.eval(), AutoFeatureExtractor.from_pretrained(name_or_path)


class Scorer:
    """Scores waveforms (16 kHz mono float32) in batches of windows.

    ``runner`` runs the forward pass (``racl.precision``: fp32 by default); ``vad`` (a
    ``racl.vad.SpeechDetector``) makes verdicts speech-aware; ``span_windows`` > 1 encodes that many
    consecutive windows of a clip in one pass (``racl.span_encoding``) instead of each window alone.
    """

    def __init__(self, model, feature_extractor, batch_size: int = 16, window_seconds: float | None = None, hop_seconds: float | None = None,
                 runner=None, vad=None, stream_seconds: float = 600.0, span_windows: int = 0):
        self.runner = runner or TorchRunner(model)
        self.model = getattr(self.runner, "model", model)  # the module that runs (a quantised one for int8)
        self.config = model.config
        self.extractor = feature_extractor
        self.batch_size = batch_size
        self.window = int(SAMPLING_RATE * (window_seconds or model.config.score_window_seconds))
        self.hop = int(SAMPLING_RATE * (hop_seconds or model.config.score_hop_seconds))
        self.device = self.runner.device
        self.min_samples = model.config.min_input_samples
        self.vad = vad
        self.stream_seconds = stream_seconds
        self.span_windows = span_windows  # > 1: that many consecutive windows from one encoder pass (racl.span_encoding)
        # The familiarity check's distances come out of the forward pass that gives the logits: a hook keeps the latest
        # batch's, read right after it, so passes made elsewhere (span encoding, training) never shift them.
        self._distances = None
        if isinstance(self.runner, TorchRunner) and getattr(self.model, "familiarity", None) is not None:
            self.model.register_forward_hook(lambda module, args, out: setattr(self, "_distances", out.familiarity.float().cpu().tolist()))
        if span_windows > 1:
            if not isinstance(self.runner, TorchRunner):
                raise ValueError("span encoding runs on the torch backend")
            check_span_model(self.model)

    @classmethod
    def from_pretrained(cls, name_or_path: str, device=None, precision: str = "fp32", backend: str = "torch", vad: bool = False, **kwargs) -> "Scorer":
        check_choice(precision, backend)
        if backend == "onnx":
            if device not in (None, "cpu"):
                raise ValueError(f"the ONNX backend runs on the CPU, not on {device}")
            model, extractor = load_detector_without_weights(name_or_path)
            runner = OnnxRunner(name_or_path, precision)
        else:
            model, extractor = load_detector(name_or_path, device)
            runner = TorchRunner(model, precision)
        if vad:
            from .vad import SpeechDetector

            vad = SpeechDetector()
        return cls(model, extractor, runner=runner, vad=vad or None, **kwargs)

    def score_windows(self, windows: list[np.ndarray], familiarity: list | None = None) -> np.ndarray:
        """One score per window; windows of unequal length are padded and masked. A ``familiarity`` list gets each
        window's distance to the training audio appended (None where the model has no fitted check)."""
        scores = []
        for i in range(0, len(windows), self.batch_size):
            batch = self.extractor(
                windows[i : i + self.batch_size], sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
            )
            logits = self.runner(batch["input_values"], batch["attention_mask"])
            scores.append(self.model.scores_from_logits(logits).float())
            if familiarity is not None:
                got, self._distances = self._distances, None
                familiarity.extend(got if got is not None and len(got) == len(logits) else [None] * len(logits))
        return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)

    def score_spans(self, audio: np.ndarray, offset: int, spans: list[tuple[int, int]], familiarity: list | None = None) -> list[float]:
        """Scores of consecutive windows ``spans`` of one clip, whose audio is ``audio`` from sample ``offset`` on
        (``familiarity`` as in :meth:`score_windows`; span encoding gives none)."""
        if self.span_windows < 2 or len(spans) < 2:
            return self.score_windows([audio[s - offset : e - offset] for s, e in spans], familiarity).tolist()
        if familiarity is not None:
            familiarity.extend([None] * len(spans))
        scores = []
        for i in range(0, len(spans), self.span_windows):
            scores.extend(span_scores(self.model, self.extractor, self.runner.autocast, audio, offset, spans[i : i + self.span_windows]).tolist())
        return scores

    @torch.inference_mode()
    def probability(self, score: float) -> float:
        """The model's calibrated p(bonafide) of a clip score (in float64: a clip score is a mean of window scores)."""
        return float(self.model.bonafide_probability(torch.tensor(score, dtype=torch.float64)))

    @property
    def decision_score(self) -> float:
        """The clip score at which the verdict turns (calibrated p(bonafide) = 0.5; 0 for an uncalibrated model)."""
        scale = self.config.calibration_scale
        return -self.config.calibration_bias / scale + 0.0 if scale else 0.0  # + 0.0: no '-0.000' on screen

    def check_length(self, wave: np.ndarray, name: str) -> np.ndarray:
        self.check_samples(len(wave), name)
        return wave

    def check_samples(self, num_samples: int, name: str) -> None:
        if num_samples < self.min_samples:
            raise AudioDecodeError(
                f"{name}: too short to score ({num_samples} samples; the model needs at least {self.min_samples}, "
                f"{1000 * self.min_samples / SAMPLING_RATE:.0f} ms at 16 kHz)"
            )

    def speech(self, probabilities: np.ndarray | None, spans: list[tuple[int, int]], num_samples: int) -> tuple[list, float | None]:
        """Seconds of speech in each span and in the whole clip, from the speech detector's frame probabilities
        (Nones without a detector)."""
        if probabilities is None:
            return [None] * len(spans), None
        return [self.vad.speech_seconds(probabilities, s, e) for s, e in spans], self.vad.speech_seconds(probabilities, 0, num_samples)

    def summarise(self, name: str, num_samples: int, spans, scores, probabilities: np.ndarray | None = None,
                  familiarity: list | None = None) -> ClipScore:
        """A clip's result from its windows: the mean score of the windows that vote (all of them without a speech
        detector), the calibrated probability and the verdict, and their mean familiarity distance where the model
        has the check; "no speech" when no window votes."""
        speech, speech_seconds = self.speech(probabilities, spans, num_samples)
        familiarity = familiarity or [None] * len(spans)
        windows = [WindowScore(s / SAMPLING_RATE, e / SAMPLING_RATE, float(v), sp, sp is None or self.vad.votes(sp, e - s), f)
                   for (s, e), v, sp, f in zip(spans, scores, speech, familiarity)]
        voting = [w.score for w in windows if w.votes]
        duration = num_samples / SAMPLING_RATE
        if not voting:
            return ClipScore(path=name, label=NO_SPEECH, duration=duration, speech_seconds=speech_seconds, windows=windows)
        score = float(np.mean(voting))
        p = self.probability(score)
        distances = [w.familiarity for w in windows if w.votes]
        distance = float(np.mean(distances)) if None not in distances else None
        threshold = getattr(self.config, "familiarity_threshold", None)  # absent from folders saved before the check
        return ClipScore(path=name, score=score, p_bonafide=p, label=verdict(p), duration=duration, speech_seconds=speech_seconds,
                         windows=windows, familiarity=distance,
                         familiar=None if distance is None or threshold is None else distance <= threshold)

    def score_waveforms(self, waves: list[np.ndarray], names: list[str] | None = None) -> list[ClipScore]:
        names = names or [f"clip{i}" for i in range(len(waves))]
        for wave, name in zip(waves, names):
            self.check_length(wave, name)
        spans = [window_spans(len(w), self.window, self.hop) for w in waves]
        familiarity: list = []  # one distance (or None) per window, in the order of the scores
        if self.span_windows > 1:
            window_scores = iter([x for w, clip_spans in zip(waves, spans) for x in self.score_spans(w, 0, clip_spans, familiarity)])
        else:  # the windows of all clips batched together
            window_scores = iter(self.score_windows([w[s:e] for w, clip_spans in zip(waves, spans) for s, e in clip_spans], familiarity).tolist())
        distances = iter(familiarity)
        return [
            self.summarise(name, len(wave), clip_spans, [next(window_scores) for _ in clip_spans], self.vad and self.vad.probabilities(wave),
                           [next(distances) for _ in clip_spans])
            for name, wave, clip_spans in zip(names, waves, spans)
        ]

    def score_waveform(self, wave: np.ndarray, name: str = "clip") -> ClipScore:
        return self.score_waveforms([check_waveform(np.asarray(wave, dtype=np.float32), name)], [name])[0]

    def score_stream(self, pieces, name: str = "clip", windows_per_step: int | None = None) -> ClipScore:
        """Score audio that arrives in pieces (16 kHz mono float32 arrays) with the windows ``window_spans`` gives the
        whole: only the last window's worth of samples and one step of windows are held at once."""
        step = windows_per_step or 4 * self.batch_size
        buffer, offset, total = np.zeros(0, dtype=np.float32), 0, 0  # buffer[0] is sample `offset` of the stream
        spans, scores, familiarity = [], [], []
        pending: list[tuple[int, int]] = []
        probabilities = []  # one float per 32 ms frame: 450 kB per hour
        vad_stream = self.vad.stream() if self.vad is not None else None

        def flush():
            if pending:
                scores.extend(self.score_spans(buffer, offset, pending, familiarity))
                spans.extend(pending)
                pending.clear()

        next_start = 0
        for piece in pieces:
            check_waveform(piece, name)
            if vad_stream is not None:
                probabilities.append(vad_stream.push(piece))
            keep = min(next_start, max(total - self.window, 0), *(s for s, _ in pending[:1]))
            buffer, offset = np.concatenate([buffer[keep - offset :], piece]), keep
            total += len(piece)
            while next_start + self.window <= total:
                pending.append((next_start, next_start + self.window))
                next_start += self.hop
                if len(pending) >= step:
                    flush()
        if total == 0:
            raise AudioDecodeError(f"{name}: zero-length audio (no samples)")
        self.check_samples(total, name)
        flush()
        tail = window_spans(total, self.window, self.hop)[len(spans):]  # the flush-with-the-end window, or a short clip's only one
        pending.extend(tail)
        flush()
        frames = np.concatenate([*probabilities, vad_stream.finish()]) if vad_stream is not None else None
        return self.summarise(name, total, spans, scores, frames, familiarity)

    def score_file(self, path: str) -> ClipScore:
        """One file: decoded whole, or piece by piece when it is longer than ``stream_seconds``."""
        seconds = streamable_seconds(path)
        if seconds is not None and seconds > self.stream_seconds:
            return self.score_stream(stream_audio(path), path)
        return self.score_waveforms([self.check_length(load_audio(path), path)], [path])[0]

    def iter_files(self, paths: list[str], files_per_batch: int = 8, progress: bool = False):
        """Decode and score files, yielding results in input order; an unreadable file becomes a result with ``error``
        set, the rest go on. Short files are scored together in batches, long ones streamed one by one."""
        from tqdm.auto import tqdm

        pending: list[tuple[str, np.ndarray]] = []

        def flush():
            results = self.score_waveforms([w for _, w in pending], [p for p, _ in pending]) if pending else []
            pending.clear()
            return results

        for path in tqdm(paths, disable=not progress, desc="scoring", unit="file"):
            try:
                seconds = streamable_seconds(path)
                if seconds is not None and seconds > self.stream_seconds:
                    yield from flush()  # keep output in input order
                    yield self.score_file(path)
                    continue
                pending.append((path, self.check_length(load_audio(path), path)))
            except AudioDecodeError as error:
                yield from flush()
                yield ClipScore(path=path, error=str(error))
                continue
            if len(pending) >= files_per_batch:
                yield from flush()
        yield from flush()

    def score_files(self, paths: list[str], files_per_batch: int = 8, progress: bool = False) -> list[ClipScore]:
        return list(self.iter_files(paths, files_per_batch, progress))


COLUMNS = ["path", "score", "p_bonafide", "label", "familiar", "error"]


def result_row(r: ClipScore) -> list[str]:
    familiar = "" if r.familiar is None else "yes" if r.familiar else "no"
    return [r.path, _num(r.score), _num(r.p_bonafide), r.label or "", familiar, r.error]


def format_results(results: list[ClipScore], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(r) for r in results], indent=2)
    rows = [result_row(r) for r in results]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """The options racl-score shares with folder scoring across processes (``racl.evaluation.folder_scoring``)."""
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--window", type=float, help="window seconds (default: the model's)")
    parser.add_argument("--hop", type=float, help="hop seconds (default: the model's)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32, bf16 autocast, or int8 dynamic quantisation of the Linear layers")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="torch, or onnxruntime on the graph racl-export --onnx wrote")
    parser.add_argument("--vad", action="store_true", help="speech-aware verdicts: windows without speech do not vote (silero-vad)")
    parser.add_argument("--stream-seconds", type=float, default=600.0, help="files longer than this are decoded and scored piece by piece")
    parser.add_argument("--span-windows", type=int, default=0, metavar="N",
                        help="encode N consecutive windows in one pass, so overlapping windows are not encoded twice (wav2vec2-family encoders)")
    parser.add_argument("paths", nargs="+", help="audio files or folders (searched recursively)")


def scorer_from_args(args, device=None) -> Scorer:
    return Scorer.from_pretrained(args.model, device=device, precision=args.precision, backend=args.backend, vad=args.vad,
                                  batch_size=args.batch_size, window_seconds=args.window, hop_seconds=args.hop, stream_seconds=args.stream_seconds,
                                  span_windows=args.span_windows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="racl-score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scoring_arguments(parser)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--out", help="append each result to this .csv or .jsonl as it is made; files already in it are skipped")
    args = parser.parse_args(argv)

    results_file = None
    if args.out:
        from .folder_scoring import ResultsFile

        try:
            results_file = ResultsFile.open(args.out, COLUMNS, result_row)
        except (OSError, ValueError) as error:
            print(f"racl-score: cannot append to {args.out}: {error}", file=sys.stderr)
            return 2
    try:
        scorer = scorer_from_args(args, args.device)
    except (OSError, ValueError) as error:
        print(f"racl-score: cannot load model {args.model!r}: {error}", file=sys.stderr)
        return 2
    paths = find_audio_files(args.paths)
    if not paths:
        print("racl-score: no audio files found in the given paths", file=sys.stderr)
        return 2
    if results_file is not None:
        todo = results_file.todo(paths)
        failed = 0
        for r in scorer.iter_files(todo, progress=sys.stderr.isatty()):
            results_file.write(r)
            failed += bool(r.error)
            if r.error:
                print(f"racl-score: {r.error}", file=sys.stderr)
        print(f"racl-score: {len(todo)} scored into {args.out}, {len(paths) - len(todo)} already there", file=sys.stderr)
        return 1 if failed else 0
    results = scorer.score_files(paths, progress=sys.stderr.isatty())
    for r in results:
        if r.error:
            print(f"racl-score: {r.error}", file=sys.stderr)
    print(format_results(results, args.format))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
