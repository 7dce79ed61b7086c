"""What a detector says on a set of one class, e.g. a folder of your own real speech (``racl-eval`` on such a set).

EER needs both classes. On one class the number that means something is how many clips get the other label
under the rule every command uses (``racl.scoring.verdict``: calibrated p(bonafide) below 0.5 is spoof): false
alarms on bona fide speech, misses on spoofs. It is reported with a 95 % Wilson interval (few clips give a wide
one) and broken down by speaker, attack and reconstruction paradigm where the set names more than one. Where the
model has a familiarity check, the share of clips it finds unlike the training audio is given beside it, and the
share given the other label without that warning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from ..labels import BONAFIDE
from ..scoring import verdict
from .table import ScoreTable

QUANTILES = (5, 25, 50, 75, 95)


def _rate(other: np.ndarray, unfamiliar: np.ndarray | None = None) -> dict:
    k, n = int(other.sum()), int(other.size)
    low, high = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    entry = {"n_clips": n, "n_other": k, "rate": k / n, "rate_percent": 100 * k / n, "ci95_percent": [100 * low, 100 * high]}
    if unfamiliar is not None:
        entry["unfamiliar_percent"] = 100 * float(unfamiliar.mean())
        entry["other_and_familiar_percent"] = 100 * float((other & ~unfamiliar).mean())
    return entry


def _groups(names: list[str], other: np.ndarray, unfamiliar: np.ndarray | None) -> dict[str, dict]:
    """The rate per distinct name; empty when the set names only one (nothing to break down)."""
    keys = sorted(set(names))
    if len(keys) < 2:
        return {}
    names = np.asarray(names)
    return {key: _rate(other[names == key], None if unfamiliar is None else unfamiliar[names == key]) for key in keys}


def summarize_one_class(table: ScoreTable, probability: Callable[[float], float], decision_score: float,
                        familiarity_threshold: float | None = None) -> dict:
    """The one-class summary of ``table`` (every row one label): clips given the other label, overall and per group.

    ``probability`` maps a clip score to the model's calibrated p(bonafide) (``Scorer.probability``);
    ``decision_score`` is the score at which the verdict turns (``Scorer.decision_score``), kept for the plot;
    ``familiarity_threshold`` the model's, where the table has familiarity distances.
    """
    labels = set(table.label.tolist())
    if len(labels) != 1:
        raise ValueError(f"a one-class summary needs clips of one class; got labels {sorted(labels)}")
    label = "bonafide" if labels == {BONAFIDE} else "spoof"
    other_name = "spoof" if label == "bonafide" else "bonafide"
    p = np.array([probability(float(s)) for s in table.score])
    other = np.array([verdict(x) == other_name for x in p])
    reconstruction = [r if rec else "none" for r, rec in zip(table.reconstruction, table.is_reconstructed)]
    unfamiliar = None
    if table.familiarity is not None and familiarity_threshold is not None:
        unfamiliar = table.familiarity > familiarity_threshold
    rate = _rate(other, unfamiliar)
    what = "false alarms" if label == "bonafide" else "misses"
    return {
        "one_class": label,
        "other_label": other_name,
        "n_clips": len(table),
        "n_unreadable": len(table.unreadable),
        "verdict_rule": "calibrated p(bonafide) < 0.5: spoof (as racl-score)",
        "decision_score": decision_score,
        f"labelled_{other_name}": rate,
        "headline": {"name": f"{'bona fide' if label == 'bonafide' else 'spoof'} clips labelled {other_name} ({what})",
                     "percent": rate["rate_percent"]},
        "per_speaker": _groups(table.speaker, other, unfamiliar),
        "per_attack": _groups(table.attack, other, unfamiliar),
        "per_reconstruction": _groups(reconstruction, other, unfamiliar),
        "score_quantiles": {f"p{q}": float(v) for q, v in zip(QUANTILES, np.percentile(table.score, QUANTILES))},
        "p_bonafide_median": float(np.median(p)),
    }


def one_class_markdown(summary: dict, title: str, figures: list[str]) -> str:
    other = summary["other_label"]
    rate = summary[f"labelled_{other}"]
    low, high = rate["ci95_percent"]
    parts = [f"# {title}", "", f"**{summary['headline']['name']}: {rate['rate_percent']:.1f} %** "
             f"({rate['n_other']} of {rate['n_clips']}; 95 % interval {low:.1f}–{high:.1f} %)", "",
             f"A set of one class: no EER. Verdict rule: {summary['verdict_rule']}, i.e. clip score below "
             f"{summary['decision_score']:.4g}. Unreadable clips (excluded): {summary['n_unreadable']}.", ""]
    checked = "unfamiliar_percent" in rate
    if checked:
        parts += [f"Unlike the model's training audio (its familiarity check): **{rate['unfamiliar_percent']:.1f} %** of the clips; "
                  f"labelled {other} without that warning: {rate['other_and_familiar_percent']:.1f} %.", ""]
    extra_head, extra_rule = (" unfamiliar % | labelled and familiar % |", "---|---|") if checked else ("", "")
    for key, heading in (("per_speaker", "speaker"), ("per_attack", "attack"), ("per_reconstruction", "reconstruction paradigm")):
        if summary[key]:
            parts += [f"## Per {heading}", "", f"| {heading} | clips | labelled {other} | % | 95 % interval |{extra_head}",
                      f"|---|---|---|---|---|{extra_rule}"]
            parts += [f"| {name} | {e['n_clips']} | {e['n_other']} | {e['rate_percent']:.1f} | "
                      f"{e['ci95_percent'][0]:.1f}–{e['ci95_percent'][1]:.1f} |"
                      + (f" {e['unfamiliar_percent']:.1f} | {e['other_and_familiar_percent']:.1f} |" if checked else "")
                      for name, e in summary[key].items()]
            parts.append("")
    quantiles = ", ".join(f"{k[1:]} % {v:.3g}" for k, v in summary["score_quantiles"].items())
    parts += [f"Clip scores (logit[bonafide] - logit[spoof], higher = more bona fide), percentiles: {quantiles}; "
              f"median p(bonafide) {summary['p_bonafide_median']:.3f}.", ""]
    parts += [" ".join(f"![{Path(f).stem}]({f})" for f in figures)]
    return "\n".join(parts) + "\n"


def write_one_class_report(table: ScoreTable, summary: dict, out_dir: str | os.PathLike, title: str) -> dict[str, Path]:
    """Write scores.txt, results.json, score_hist.png (with the verdict's threshold) and report.md."""
    from .plots import plot_score_histogram

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"scores": out / "scores.txt", "results": out / "results.json", "report": out / "report.md", "score_hist": out / "score_hist.png"}
    table.write_scores(paths["scores"])
    plot_score_histogram(table.score, table.label, paths["score_hist"], title=title, threshold=summary["decision_score"])
    results = {**summary, "unreadable": [{"utt_id": u, "error": e} for u, e in table.unreadable]}
    paths["results"].write_text(json.dumps(results, indent=2))
    paths["report"].write_text(one_class_markdown(summary, title, [paths["score_hist"].name]))
    return paths


__all__ = ["summarize_one_class", "one_class_markdown", "write_one_class_report"]
