"""Evaluation of a RACL detector on a dataset split or a corpus (library + ``racl-eval`` CLI).

Clips are scored full length by :class:`racl.scoring.Scorer` (windows of ``score_window_seconds``,
window scores averaged), optionally with the mean window embedding of each clip. The summary gives
the EER pooled, per attack, per reconstruction paradigm and, when the systems seen in training are
known, on seen and on unseen systems separately: the unseen number is the headline (DESIGN.md
section 8). Polarity as in :mod:`racl.metrics`: higher score = more bona fide, label 0 bonafide /
1 spoof.

    racl-eval --model FOLDER_OR_ID --data DATASET_DIR_OR_HUB_ID [--split test] [--calibrate-on validation]
    racl-eval --model FOLDER_OR_ID --corpus asvspoof2019_la --root LA [--corpus-split eval] \\
              [--asv-scores LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.trl.scores.txt]

Writes ``scores.txt``, ``results.json``, ``report.md``, ``det.png``, ``score_hist.png`` and
``embeddings.png`` to ``--out``. Exit status 0 on success (unreadable corpus files are listed and
excluded, not fatal), 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datasets_scripts.schema import NO_ATTACK, NO_RECONSTRUCTION, label_id

from . import SAMPLING_RATE
from .audio import AudioDecodeError, check_waveform, load_audio, to_mono_16k
from .metrics import BONAFIDE, SPOOF, compute_eer, compute_min_tdcf, fit_calibration
from .scoring import Scorer

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
REQUIRED_COLUMNS = ("audio", "label", "utt_id")  # the rest of the schema has sensible defaults
ASV_KEYS = ("target", "nontarget", "spoof")


# ---------------------------------------------------------------------------------------------
# the score table


@dataclass
class ScoreTable:
    """One row per scored clip, in dataset / protocol order (unreadable clips left out).

    ``score`` float64, ``label`` int (0 bonafide / 1 spoof), ``is_reconstructed`` bool;
    ``embeddings`` (n, d) float32 is the mean of each clip's window embeddings, or None.
    ``unreadable`` lists ``(utt_id, reason)`` of the clips that could not be decoded.
    """

    utt_id: list[str]
    score: np.ndarray
    label: np.ndarray
    attack: list[str]
    reconstruction: list[str]
    is_reconstructed: np.ndarray
    source_id: list[str]
    speaker: list[str]
    embeddings: np.ndarray | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utt_id)

    @classmethod
    def from_rows(cls, meta: dict[str, list], scored: dict[int, tuple], failed: Iterable[tuple[int, str]]) -> "ScoreTable":
        """Assemble from row metadata, ``{row: (score, embedding)}`` and ``[(row, reason)]``."""
        keep = sorted(scored)
        embeddings = [scored[i][1] for i in keep]
        has_embeddings = bool(keep) and all(e is not None for e in embeddings)
        return cls(
            utt_id=[meta["utt_id"][i] for i in keep],
            score=np.array([scored[i][0] for i in keep], dtype=np.float64),
            label=np.array([meta["label"][i] for i in keep], dtype=np.int64),
            attack=[meta["attack"][i] for i in keep],
            reconstruction=[meta["reconstruction"][i] for i in keep],
            is_reconstructed=np.array([meta["is_reconstructed"][i] for i in keep], dtype=bool),
            source_id=[meta["source_id"][i] for i in keep],
            speaker=[meta["speaker"][i] for i in keep],
            embeddings=np.stack(embeddings).astype(np.float32) if has_embeddings else None,
            unreadable=[(meta["utt_id"][i], reason) for i, reason in sorted(failed)],
        )

    def kinds(self) -> list[str]:
        """The four groups of :func:`racl.plots.plot_embedding_map` for each row.

        A reconstruction is labelled spoof, so its kind comes from its *source* row's label (found by
        ``source_id``); when the source is not in the table, a reconstruction with attack ``-`` is
        taken to come from bona fide speech.
        """
        label_of = dict(zip(self.utt_id, self.label.tolist()))
        out = []
        for label, recon, source, attack in zip(self.label, self.is_reconstructed, self.source_id, self.attack):
            if not recon:
                out.append("bonafide original" if label == BONAFIDE else "spoof original")
                continue
            source_label = label_of.get(source, BONAFIDE if attack == NO_ATTACK else SPOOF)
            out.append("bonafide reconstructed" if source_label == BONAFIDE else "spoof reconstructed")
        return out

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON / pandas friendly), embeddings left out."""
        return {
            "utt_id": list(self.utt_id),
            "score": self.score.tolist(),
            "label": self.label.tolist(),
            "attack": list(self.attack),
            "reconstruction": list(self.reconstruction),
            "is_reconstructed": self.is_reconstructed.tolist(),
            "source_id": list(self.source_id),
            "speaker": list(self.speaker),
        }


# ---------------------------------------------------------------------------------------------
# scoring core (shared by datasets and corpora)


class _EmbeddingTap:
    """Collects the ``.embeddings`` of every forward pass of ``model`` (a forward hook).

    The scorer's own batching, padding and masking stay untouched, so the scores are exactly the
    scorer's; the embeddings come out in window order, batch after batch.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.batches: list[torch.Tensor] = []

    def _hook(self, module, args, output):
        self.batches.append(output.embeddings.detach().float().cpu())

    def __enter__(self) -> "_EmbeddingTap":
        self.handle = self.model.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()

    def take(self) -> torch.Tensor:
        flat = torch.cat(self.batches)
        self.batches.clear()
        return flat


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module):
    """Eval mode for scoring, then the caller's mode back (validation runs inside training)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _score_waves(scorer: Scorer, waves: list[np.ndarray], tap: _EmbeddingTap | None) -> tuple[list[float], list]:
    """Clip scores and mean window embeddings (or Nones) of decoded waveforms."""
    results = scorer.score_waveforms(waves)
    scores = [r.score for r in results]
    if tap is None:
        return scores, [None] * len(results)
    per_clip = torch.split(tap.take(), [len(r.windows) for r in results])
    return scores, [e.mean(dim=0).numpy() for e in per_clip]


def _score_rows(
    scorer: Scorer,
    rows: Sequence[int],
    decode: Callable[[int], np.ndarray],
    clips_per_step: int,
    with_embeddings: bool,
    progress: bool = False,
) -> tuple[dict[int, tuple], list[tuple[int, str]]]:
    """Decode and score ``rows`` a few clips at a time; an undecodable clip is logged and skipped."""
    from tqdm.auto import tqdm

    scored: dict[int, tuple] = {}
    failed: list[tuple[int, str]] = []
    tap_context = _EmbeddingTap(scorer.model) if with_embeddings else contextlib.nullcontext()
    with tap_context as tap, _eval_mode(scorer.model):
        for start in tqdm(range(0, len(rows), clips_per_step), disable=not progress, desc="scoring", unit="step"):
            waves, kept = [], []
            for i in rows[start : start + clips_per_step]:
                try:
                    waves.append(decode(i))
                    kept.append(i)
                except AudioDecodeError as error:
                    logger.warning("unreadable, excluded from the evaluation: %s", error)
                    failed.append((i, str(error)))
            if waves:
                for i, score, embedding in zip(kept, *_score_waves(scorer, waves, tap)):
                    scored[i] = (score, embedding)
    return scored, failed


def _as_scorer(scorer_or_model, feature_extractor, batch_size, window_seconds, hop_seconds, accelerator) -> Scorer:
    if isinstance(scorer_or_model, Scorer):
        return scorer_or_model
    if feature_extractor is None:
        raise ValueError("scoring a bare model needs its feature extractor")
    # each process scores its own rows: the unwrapped module avoids DDP's collective ops
    model = accelerator.unwrap_model(scorer_or_model) if accelerator is not None else scorer_or_model
    return Scorer(model, feature_extractor, batch_size=batch_size, window_seconds=window_seconds, hop_seconds=hop_seconds)


# ---------------------------------------------------------------------------------------------
# datasets


def _column(dataset, name: str, default: Callable[[int], object]) -> list:
    return list(dataset[name]) if name in dataset.column_names else [default(i) for i in range(len(dataset))]


def _label_ids(dataset) -> list[int]:
    """Labels as 0/1 whatever the column holds (ClassLabel in any order, names, ints)."""
    from datasets import ClassLabel

    feature = dataset.features["label"]
    values = list(dataset["label"])
    if isinstance(feature, ClassLabel):
        return [label_id(feature.int2str(int(v))) for v in values]
    return [label_id(v) for v in values]


def dataset_metadata(dataset) -> dict[str, list]:
    """Per-row metadata of a schema split (no audio decoded); missing optional columns defaulted."""
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"the dataset has no {', '.join(map(repr, missing))} column; columns are {dataset.column_names}")
    meta = {"utt_id": [str(u) for u in dataset["utt_id"]], "label": _label_ids(dataset)}
    meta["attack"] = _column(dataset, "attack", lambda i: NO_ATTACK if meta["label"][i] == BONAFIDE else UNKNOWN)
    meta["reconstruction"] = _column(dataset, "reconstruction", lambda i: NO_RECONSTRUCTION)
    meta["is_reconstructed"] = _column(dataset, "is_reconstructed", lambda i: meta["reconstruction"][i] != NO_RECONSTRUCTION)
    meta["source_id"] = _column(dataset, "source_id", lambda i: meta["utt_id"][i])
    meta["speaker"] = _column(dataset, "speaker", lambda i: UNKNOWN)
    return meta


def decode_dataset_audio(value, name: str = "audio") -> np.ndarray:
    """A decoded ``Audio`` cell → mono float32 at 16 kHz.

    datasets >= 4 hands out a torchcodec ``AudioDecoder`` (``get_all_samples()`` gives a
    (channels, samples) tensor); older versions and in-memory rows give ``{array, sampling_rate}``.
    """
    if hasattr(value, "get_all_samples"):
        samples = value.get_all_samples()
        data, rate = samples.data.numpy(), int(samples.sample_rate)
    elif isinstance(value, dict) and "array" in value:
        data, rate = value["array"], int(value["sampling_rate"])
    else:
        raise AudioDecodeError(f"{name}: audio cell is neither an AudioDecoder nor {{array, sampling_rate}}")
    return check_waveform(to_mono_16k(data, rate), name)


def score_dataset(
    scorer_or_model,
    feature_extractor=None,
    dataset=None,
    batch_size: int = 8,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    return_embeddings: bool = True,
    accelerator=None,
    progress: bool = False,
) -> ScoreTable:
    """Score every row of a schema split (``datasets.Dataset``) full length.

    ``scorer_or_model``: a :class:`racl.scoring.Scorer`, or a model (then ``feature_extractor`` is
    needed and ``batch_size`` / ``window_seconds`` / ``hop_seconds`` build the scorer). Audio is
    decoded at 16 kHz by ``datasets``; ``batch_size`` clips are decoded per step. The model is put
    in eval mode and given back in the mode it came in.

    With an ``accelerate.Accelerator``, rows are split between processes
    (``split_between_processes``, contiguous and unpadded, so no row is scored twice) and the
    results gathered with ``gather_object``; every process gets the whole table back.
    """
    from datasets import Audio

    if dataset is None:
        raise ValueError("score_dataset needs a dataset")
    scorer = _as_scorer(scorer_or_model, feature_extractor, batch_size, window_seconds, hop_seconds, accelerator)
    meta = dataset_metadata(dataset)
    audio = dataset.select_columns(["audio"]).cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))

    def decode(i: int) -> np.ndarray:
        try:
            return decode_dataset_audio(audio[i]["audio"], meta["utt_id"][i])
        except AudioDecodeError:
            raise
        except Exception as error:  # torchcodec / arrow errors on a damaged cell
            raise AudioDecodeError(f"{meta['utt_id'][i]}: cannot decode audio ({error})") from None

    rows = list(range(len(dataset)))
    if accelerator is None:
        scored, failed = _score_rows(scorer, rows, decode, batch_size, return_embeddings, progress)
    else:
        from accelerate.utils import gather_object

        with accelerator.split_between_processes(rows) as mine:
            scored, failed = _score_rows(scorer, list(mine), decode, batch_size, return_embeddings, progress)
        scored = {i: (s, e) for i, s, e in gather_object([(i, s, e) for i, (s, e) in scored.items()])}
        failed = gather_object(failed)
    return ScoreTable.from_rows(meta, scored, failed)


def seen_systems(train_split) -> tuple[set[str], set[str]]:
    """(attacks, reconstruction paradigms) present in a training split, read without decoding audio."""
    meta = dataset_metadata(train_split)
    attacks = {a for a, y in zip(meta["attack"], meta["label"]) if y == SPOOF and a != NO_ATTACK}
    paradigms = set(meta["reconstruction"]) - {NO_RECONSTRUCTION}
    return attacks, paradigms


# ---------------------------------------------------------------------------------------------
# corpora


def corpus_metadata(records) -> dict[str, list]:
    """Per-row metadata of corpus records (:class:`datasets_scripts.schema.ClipRecord`)."""
    recon = [str(r.extra.get("reconstruction", NO_RECONSTRUCTION)) for r in records]
    return {
        "utt_id": [r.utt_id for r in records],
        "label": [r.label for r in records],
        "attack": [r.attack for r in records],
        "reconstruction": recon,
        "is_reconstructed": [x != NO_RECONSTRUCTION for x in recon],
        "source_id": [r.source_id for r in records],
        "speaker": [r.speaker for r in records],
    }


def score_corpus(
    scorer: Scorer,
    corpus_name: str,
    root: str,
    split: str | None = None,
    batch_size: int = 8,
    return_embeddings: bool = True,
    progress: bool = False,
) -> ScoreTable:
    """Score a corpus read by ``datasets_scripts.corpora`` (ASVspoof 2019/2021, In-the-Wild, folder...).

    Files are decoded with :func:`racl.audio.load_audio`; an unreadable one is logged (one warning
    line naming the file and the reason), left out of the table and listed in ``table.unreadable``.
    An unknown corpus, a wrong layout or an unknown split raise before any scoring.
    """
    from datasets_scripts.corpora import iter_corpus

    records = list(iter_corpus(corpus_name, root, split))
    if not records:
        raise ValueError(f"corpus {corpus_name!r} at {root} (split {split}) has no clips")
    meta = corpus_metadata(records)
    rows = list(range(len(records)))
    scored, failed = _score_rows(scorer, rows, lambda i: load_audio(records[i].path), batch_size, return_embeddings, progress)
    return ScoreTable.from_rows(meta, scored, failed)


# ---------------------------------------------------------------------------------------------
# summary


def read_asv_scores(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(scores, keys) of an ASVspoof 2019 ASV score file.

    The organisers' ``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt`` has three columns,
    ``SOURCE KEY SCORE`` (SOURCE ``bonafide`` or the attack id, KEY ``target`` / ``nontarget`` /
    ``spoof``), as read by the official ``evaluate_tDCF_asvspoof19.py``; the later six-column files
    (``SPEAKER UTT ... KEY SCORE``) are read too: the key is always the second last field and the
    score the last.
    """
    scores, keys = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                key, score = fields[-2], float(fields[-1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}, line {line_no}: expected '... KEY SCORE', got {line.strip()!r}") from None
            if key not in ASV_KEYS:
                raise ValueError(f"{path}, line {line_no}: key {key!r} is not one of {', '.join(ASV_KEYS)}")
            scores.append(score)
            keys.append(key)
    if not scores:
        raise ValueError(f"{path}: no ASV scores")
    return np.array(scores), np.array(keys)


def _eer_entry(scores: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> dict:
    eer, threshold = compute_eer(scores[keep], labels[keep])
    return {"eer": eer, "eer_percent": 100 * eer, "threshold": threshold, "n_spoof": int((labels[keep] == SPOOF).sum())}


def _group_eers(table: ScoreTable, names: Sequence[str], members: np.ndarray, seen: set | None,
                seen_key: Sequence[str] | None = None) -> dict[str, dict]:
    """EER of each named group of ``members`` (spoof rows) against all bona fide rows.

    A group is seen when its ``seen_key`` (default: its name) is in ``seen``.
    """
    names = np.asarray(names, dtype=str)
    keys = names if seen_key is None else np.asarray(seen_key, dtype=str)
    bona = table.label == BONAFIDE
    out = {}
    for name in sorted(set(names[members])):
        group = members & (names == name)
        out[name] = _eer_entry(table.score, table.label, bona | group)
        if seen is not None:
            out[name]["seen"] = str(keys[group][0]) in seen
    return out


def _reconstruction_sources(table: ScoreTable) -> list[str]:
    """``"<paradigm> of bona fide"`` / ``"<paradigm> of spoof"`` per row (from its source's label)."""
    return [f"{recon} of {'bona fide' if kind == 'bonafide reconstructed' else 'spoof'}"
            for recon, kind in zip(table.reconstruction, table.kinds())]


def _seen_spoofs(table: ScoreTable, seen_attacks: set | None, seen_paradigms: set | None) -> np.ndarray:
    """Spoof rows whose every generator was seen in training.

    The attack counts when ``seen_attacks`` is given (a reconstruction of bona fide speech, attack
    ``-``, has none), the paradigm when ``seen_paradigms`` is given (originals have none).
    """
    attack = np.asarray(table.attack, dtype=str)
    recon = np.asarray(table.reconstruction, dtype=str)
    attack_ok = np.ones(len(table), bool) if seen_attacks is None else np.isin(attack, list(seen_attacks)) | (table.is_reconstructed & (attack == NO_ATTACK))
    recon_ok = np.ones(len(table), bool) if seen_paradigms is None else ~table.is_reconstructed | np.isin(recon, list(seen_paradigms))
    return (table.label == SPOOF) & attack_ok & recon_ok


def summarize(table: ScoreTable, asv_scores=None, seen_attacks: Iterable[str] | None = None, seen_paradigms: Iterable[str] | None = None) -> dict:
    """EER pooled, per attack, per reconstruction paradigm, on seen/unseen systems; min t-DCF.

    - ``per_attack``: original (not reconstructed) spoofs of each attack vs all bona fide;
    - ``per_reconstruction``: reconstructed clips (of bona fide and of spoof sources) of each
      paradigm vs all bona fide;
    - ``per_reconstruction_source``: the same, reconstructions of bona fide and of spoofed clips
      apart (``"<paradigm> of bona fide"``): a reconstruction of a spoof still carries its TTS trace;
    - ``originals``: original (not reconstructed) spoofs vs all bona fide, the number comparable to
      ASVspoof-style test sets, which hold no reconstructions; ``None`` when there are none;
    - ``seen`` / ``unseen`` (when ``seen_attacks`` and/or ``seen_paradigms``, what training saw, are
      given): spoofs whose generators were all seen / not all seen, vs all bona fide; ``None``
      where no such spoof exists. ``headline`` is the unseen EER when there is one, else pooled;
    - ``min_tdcf`` (ASVspoof 2019 formulation) when ``asv_scores`` is given: a path to an ASV score
      file (:func:`read_asv_scores`) or a ``(scores, keys)`` pair.

    EERs are fractions, with ``eer_percent`` alongside. Raises ``ValueError`` when a class is missing.
    """
    s, y = table.score, table.label
    n_bona, n_spoof = int((y == BONAFIDE).sum()), int((y == SPOOF).sum())
    if not (n_bona and n_spoof):
        raise ValueError(f"EER needs bona fide and spoof clips; got {n_bona} bona fide and {n_spoof} spoof")
    seen_attacks = None if seen_attacks is None else set(seen_attacks)
    seen_paradigms = None if seen_paradigms is None else set(seen_paradigms)
    eer, threshold = compute_eer(s, y)
    out = {
        "n_clips": len(table), "n_bonafide": n_bona, "n_spoof": n_spoof, "n_unreadable": len(table.unreadable),
        "eer": eer, "eer_percent": 100 * eer, "eer_threshold": threshold,
        "per_attack": _group_eers(table, table.attack, (y == SPOOF) & ~table.is_reconstructed, seen_attacks),
        "per_reconstruction": _group_eers(table, table.reconstruction, (y == SPOOF) & table.is_reconstructed, seen_paradigms),
        "per_reconstruction_source": _group_eers(table, _reconstruction_sources(table), (y == SPOOF) & table.is_reconstructed,
                                                 seen_paradigms, seen_key=table.reconstruction),
        "seen_attacks": sorted(seen_attacks) if seen_attacks is not None else None,
        "seen_paradigms": sorted(seen_paradigms) if seen_paradigms is not None else None,
        "seen": None, "unseen": None, "min_tdcf": None,
    }
    original_spoofs = (y == SPOOF) & ~table.is_reconstructed
    out["originals"] = _eer_entry(s, y, (y == BONAFIDE) | original_spoofs) if original_spoofs.any() else None
    if seen_attacks is not None or seen_paradigms is not None:
        seen = _seen_spoofs(table, seen_attacks, seen_paradigms)
        unseen = (y == SPOOF) & ~seen
        out["seen"] = _eer_entry(s, y, (y == BONAFIDE) | seen) if seen.any() else None
        out["unseen"] = _eer_entry(s, y, (y == BONAFIDE) | unseen) if unseen.any() else None
    if asv_scores is not None:
        asv, keys = read_asv_scores(asv_scores) if isinstance(asv_scores, (str, os.PathLike)) else asv_scores
        out["min_tdcf"], out["min_tdcf_threshold"] = compute_min_tdcf(s, y, asv, keys)
    headline = ("EER on unseen systems", out["unseen"]["eer"]) if out["unseen"] else ("EER pooled", eer)
    out["headline"] = {"name": headline[0], "eer": headline[1], "eer_percent": 100 * headline[1]}
    return out


# ---------------------------------------------------------------------------------------------
# report


def _md_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(entry: dict | None) -> str:
    return "-" if entry is None else f"{entry['eer_percent']:.2f}"


def _group_rows(groups: dict[str, dict]) -> list[list]:
    return [[name, e["n_spoof"], f"{e['eer_percent']:.2f}", {True: "seen", False: "unseen"}.get(e.get("seen"), "-")] for name, e in groups.items()]


def report_markdown(summary: dict, calibration: dict | None = None, title: str = "Evaluation", figures: Sequence[str] = ()) -> str:
    """The text of ``report.md``: overview, per-attack and per-paradigm tables, figure links."""
    parts = [f"# {title}", "", f"**{summary['headline']['name']}: {summary['headline']['eer_percent']:.2f} %**", ""]
    overview = [
        ["clips scored", summary["n_clips"]],
        ["bona fide / spoof", f"{summary['n_bonafide']} / {summary['n_spoof']}"],
        ["unreadable (excluded)", summary["n_unreadable"]],
        ["EER pooled (%)", f"{summary['eer_percent']:.2f}"],
        ["EER on original spoofs only (%)", _pct(summary.get("originals"))],
        ["EER on seen systems (%)", _pct(summary["seen"])],
        ["EER on unseen systems (%)", _pct(summary["unseen"])],
        ["min t-DCF", "-" if summary["min_tdcf"] is None else f"{summary['min_tdcf']:.4f}"],
    ]
    parts += [_md_table(["", "value"], overview), ""]
    for key, heading in (("per_attack", "Per attack"), ("per_reconstruction", "Per reconstruction paradigm"),
                         ("per_reconstruction_source", "Per reconstruction paradigm and source")):
        if summary.get(key):
            parts += [f"## {heading} (vs all bona fide)", "", _md_table(["group", "spoof clips", "EER (%)", "in training"], _group_rows(summary[key])), ""]
    if calibration:
        sign = "+" if calibration["bias"] >= 0 else "-"
        parts += [f"Calibration (fitted on {calibration.get('split', 'validation')}): "
                  f"p_bonafide = sigmoid({calibration['scale']:.4g} · score {sign} {abs(calibration['bias']):.4g})", ""]
    parts += ["Score = logit[bonafide] - logit[spoof], higher = more bona fide.", ""]
    parts += [" ".join(f"![{Path(f).stem}]({f})" for f in figures)]
    return "\n".join(parts) + "\n"


def _det_groups(table: ScoreTable) -> list[str]:
    """Curve names for the DET plot: the attack of original spoofs, the paradigm of reconstructions."""
    return [f"{r} (reconstruction)" if rec else a for a, r, rec in zip(table.attack, table.reconstruction, table.is_reconstructed)]


def write_report(table: ScoreTable, summary: dict, out_dir: str | os.PathLike, calibration: dict | None = None, title: str = "Evaluation") -> dict[str, Path]:
    """Write scores.txt, results.json, det.png, score_hist.png, embeddings.png (if any) and report.md."""
    from .plots import plot_det, plot_embedding_map, plot_score_histogram

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"scores": out / "scores.txt", "results": out / "results.json", "report": out / "report.md",
             "det": out / "det.png", "score_hist": out / "score_hist.png"}
    paths["scores"].write_text("".join(f"{u} {s:.6f}\n" for u, s in zip(table.utt_id, table.score)))
    plot_det(table.score, table.label, paths["det"], groups=_det_groups(table), title=title)
    plot_score_histogram(table.score, table.label, paths["score_hist"], title=title)
    if table.embeddings is not None and len(table) >= 3:
        paths["embeddings"] = out / "embeddings.png"
        plot_embedding_map(table.embeddings, table.kinds(), paths["embeddings"], method="pca", title=f"{title}: embeddings (PCA)")
    results = {**summary, "calibration": calibration, "unreadable": [{"utt_id": u, "error": e} for u, e in table.unreadable]}
    paths["results"].write_text(json.dumps(results, indent=2))
    figures = [paths[k].name for k in ("det", "score_hist", "embeddings") if k in paths]
    paths["report"].write_text(report_markdown(summary, calibration, title, figures))
    return paths


def run_split_evaluation(
    scorer_or_model,
    feature_extractor,
    split,
    out_dir: str | os.PathLike | None = None,
    seen_attacks: Iterable[str] | None = None,
    seen_paradigms: Iterable[str] | None = None,
    asv_scores=None,
    batch_size: int = 8,
    accelerator=None,
) -> dict:
    """Score a split, summarise it and (with ``out_dir``) write the report; returns the summary.

    The summary's ``eer`` / ``min_tdcf`` keys are what :func:`racl.export.model_card` reads.
    """
    table = score_dataset(scorer_or_model, feature_extractor, split, batch_size=batch_size, accelerator=accelerator)
    summary = summarize(table, asv_scores, seen_attacks, seen_paradigms)
    if out_dir is not None and (accelerator is None or accelerator.is_main_process):
        write_report(table, summary, out_dir)
    return summary


# ---------------------------------------------------------------------------------------------
# model folder updates


def _local_model_dir(model_dir: str | os.PathLike) -> Path:
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json); calibration and the card need a local folder")
    return path


def calibrate(model_dir: str | os.PathLike, validation_table: ScoreTable) -> tuple[float, float]:
    """Fit Platt scaling on validation scores and store it as the folder config's calibration_scale/bias."""
    from transformers import AutoConfig

    path = _local_model_dir(model_dir)
    scale, bias = fit_calibration(validation_table.score, validation_table.label)
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    config.calibration_scale, config.calibration_bias = scale, bias
    config.save_pretrained(path)  # keeps auto_map; only the two values change
    return scale, bias


def update_model_card(model_dir: str | os.PathLike, results: dict) -> Path:
    """Rewrite the folder's README.md with ``results`` ({dataset: {eer, min_tdcf}}) as model-index.

    Results of earlier evaluations kept in ``eval_results.json`` stay, those of the same dataset
    name are replaced.
    """
    from transformers import AutoConfig

    from .export import model_card

    path = _local_model_dir(model_dir)
    stored = path / "eval_results.json"
    merged = {**(json.loads(stored.read_text()) if stored.is_file() else {}), **results}
    stored.write_text(json.dumps(merged, indent=2))
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    readme = path / "README.md"
    readme.write_text(model_card(config, merged))
    return readme


def card_results(summary: dict, name: str) -> dict:
    """Model-card entries of a summary: pooled EER (+ min t-DCF), and the unseen-system EER."""
    results = {name: {"eer": summary["eer"], "min_tdcf": summary["min_tdcf"]}}
    if summary.get("unseen"):
        results[f"{name}, unseen systems"] = {"eer": summary["unseen"]["eer"]}
    return results


# ---------------------------------------------------------------------------------------------
# CLI


def load_dataset_dict(data: str):
    """A DatasetDict from a local folder (Parquet layout or ``save_to_disk``) or a Hub id."""
    import datasets

    path = Path(data).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{data}: not a folder; --data takes a dataset folder or a Hub id")
        if (path / "dataset_dict.json").is_file():
            return datasets.load_from_disk(str(path))
        loader, target = datasets.load_dataset, str(path)
    elif path.is_absolute() or data.startswith((".", "~")) or data.count("/") != 1:
        raise FileNotFoundError(f"{data}: no such dataset folder")
    else:
        loader, target = datasets.load_dataset, data
    try:
        loaded = loader(target)
    except Exception as error:  # load_dataset raises many kinds; the user needs the reason only
        raise ValueError(f"cannot load dataset {data!r}: {type(error).__name__}: {error}") from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def _split_of(dataset_dict, split: str, data: str):
    if split not in dataset_dict:
        raise ValueError(f"{data}: no split {split!r}; it has {', '.join(dataset_dict)}")
    dataset = dataset_dict[split]
    labels = set(dataset_metadata(dataset)["label"])
    if labels != {BONAFIDE, SPOOF}:
        only = "bona fide" if labels == {BONAFIDE} else "spoof"
        raise ValueError(f"{data}: split {split!r} holds only {only} clips; EER needs both classes")
    return dataset


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "eval"


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="racl-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="dataset folder (Parquet or save_to_disk) or Hub id, with the racl schema")
    source.add_argument("--corpus", help="corpus reader name (asvspoof2019_la, in_the_wild, folder, ...)")
    parser.add_argument("--split", default="test", help="dataset split to evaluate (default: test)")
    parser.add_argument("--root", help="corpus root folder (with --corpus)")
    parser.add_argument("--corpus-split", default=None, help="the corpus's own split, e.g. eval (default: all)")
    parser.add_argument("--asv-scores", help="ASVspoof 2019 ASV score file, for min t-DCF")
    parser.add_argument("--calibrate-on", metavar="SPLIT", help="fit calibration on this split and write it into the model folder")
    parser.add_argument("--seen-attacks", help="comma-separated attacks seen in training (default with --data: the train split's)")
    parser.add_argument("--seen-paradigms", help="comma-separated reconstruction paradigms seen in training")
    parser.add_argument("--out", help="output folder (default: eval_results/<data>_<split>)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--update-card", action="store_true", help="add the results to the model folder's README.md")
    args = parser.parse_args(argv)
    if args.corpus and not args.root:
        parser.error("--corpus needs --root")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def _csv_set(text: str | None) -> set[str] | None:
    return None if text is None else {t.strip() for t in text.split(",") if t.strip()}


def _prepare_data(args):
    """Check the data before the model loads; returns (name, run(scorer), run_calibration(scorer) or None, seen)."""
    seen = (_csv_set(args.seen_attacks), _csv_set(args.seen_paradigms))
    if args.data:
        dd = load_dataset_dict(args.data)
        test = _split_of(dd, args.split, args.data)
        calib = _split_of(dd, args.calibrate_on, args.data) if args.calibrate_on else None
        if seen == (None, None) and "train" in dd and args.split != "train":
            seen = seen_systems(dd["train"])
        name = f"{Path(args.data).name or args.data} {args.split}"

        def dataset_run(scorer, dataset=test):
            return score_dataset(scorer, dataset=dataset, batch_size=args.batch_size, progress=sys.stderr.isatty())

        return name, dataset_run, (lambda scorer: dataset_run(scorer, calib)) if calib is not None else None, seen
    from datasets_scripts.corpora import iter_corpus

    # unknown corpus, wrong layout, unknown split, one class only: all before the model loads
    for split in [args.corpus_split] + ([args.calibrate_on] if args.calibrate_on else []):
        labels = {r.label for r in iter_corpus(args.corpus, args.root, split)}
        if labels != {BONAFIDE, SPOOF}:
            found = "no" if not labels else "only bona fide" if labels == {BONAFIDE} else "only spoof"
            raise ValueError(f"corpus {args.corpus!r} at {args.root}, split {split}: {found} clips; EER needs both classes")
    name = f"{args.corpus} {args.corpus_split or 'all'}"

    def corpus_run(scorer, split=args.corpus_split):
        return score_corpus(scorer, args.corpus, args.root, split, batch_size=args.batch_size, progress=sys.stderr.isatty())

    run_calib = (lambda scorer: corpus_run(scorer, args.calibrate_on)) if args.calibrate_on else None
    return name, corpus_run, run_calib, seen


def _print_summary(summary: dict, out: Path) -> None:
    print(f"clips: {summary['n_clips']} ({summary['n_bonafide']} bona fide, {summary['n_spoof']} spoof), unreadable: {summary['n_unreadable']}")
    print(f"EER pooled: {summary['eer_percent']:.2f} %")
    for key, label in (("originals", "original spoofs only"), ("seen", "seen systems"), ("unseen", "unseen systems")):
        if summary.get(key):
            print(f"EER {label}: {summary[key]['eer_percent']:.2f} %")
    if summary["min_tdcf"] is not None:
        print(f"min t-DCF: {summary['min_tdcf']:.4f}")
    for name, entry in {**summary["per_attack"], **summary["per_reconstruction"]}.items():
        print(f"  {name}: {entry['eer_percent']:.2f} %")
    print(f"report: {out / 'report.md'}")


def _run(args) -> int:
    local_model = Path(args.model).is_dir()
    if (args.update_card or args.calibrate_on) and not local_model:
        raise ValueError(f"{args.model}: --calibrate-on and --update-card write into the model folder; give a local folder")
    if args.asv_scores:
        read_asv_scores(args.asv_scores)  # format errors before the long part
    name, run, run_calib, (seen_attacks, seen_paradigms) = _prepare_data(args)
    try:
        scorer = Scorer.from_pretrained(args.model, device=args.device, batch_size=args.batch_size)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load model {args.model!r}: {error}") from None
    calibration = None
    if run_calib is not None:
        scale, bias = calibrate(args.model, run_calib(scorer))
        scorer.model.config.calibration_scale, scorer.model.config.calibration_bias = scale, bias
        calibration = {"scale": scale, "bias": bias, "split": args.calibrate_on, "written_to": str(Path(args.model) / "config.json")}
    table = run(scorer)
    summary = summarize(table, args.asv_scores, seen_attacks, seen_paradigms)
    out = Path(args.out or Path("eval_results") / _slug(name))
    write_report(table, summary, out, calibration, title=f"{Path(args.model).name or args.model} on {name}")
    if args.update_card:
        update_model_card(args.model, card_results(summary, name))
    _print_summary(summary, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``racl-eval``; bad input gives one ``racl-eval: ...`` line on stderr and exit status 2."""
    import datasets

    args = _parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("racl-eval: %(message)s"))
    logger.addHandler(handler)
    bars_were_on = not datasets.are_progress_bars_disabled()
    if not sys.stderr.isatty():  # keep logs and error output to the lines that matter
        datasets.disable_progress_bars()
    try:
        return _run(args)
    except (OSError, ValueError, KeyError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"racl-eval: {message}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)
        if bars_were_on:
            datasets.enable_progress_bars()


if __name__ == "__main__":
    sys.exit(main())
