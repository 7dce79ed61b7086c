"""The evaluation report of a score table: scores.txt, results.json, report.md and its figures."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .dataset import score_dataset
from .summary import summarize
from .table import ScoreTable


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
    table.write_scores(paths["scores"])
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


__all__ = ["report_markdown", "write_report", "run_split_evaluation"]
