"""A suite of test corpora scored in one run: ``racl-eval --model M --suite paper`` (the paper's five sets).

Each set is a corpus read by :mod:`datasets_scripts.corpora` and scored full length (:func:`score_corpus`). Its
root comes from ``--roots FILE`` (a YAML mapping ``corpus name: folder``; ``~`` and ``${VAR}`` expand) or else from
the set's environment variable. A set without a root, or whose root does not hold the corpus, is one line on
stderr and the others still run. Writes one report folder per set and ``suite.md`` / ``suite.json``: EER (and
min t-DCF for ASVspoof 2019 LA, from the organisers' ASV scores when the corpus has them) per set, their mean,
and the paper's figures beside them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import check_keys, read_yaml
from ..labels import BONAFIDE, SPOOF
from ..scoring import Scorer
from .corpus import score_corpus
from .report import write_report
from .summary import summarize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteSet:
    name: str  # as the table shows it
    corpus: str  # a reader of datasets_scripts.corpora
    env: str  # the environment variable holding its root
    split: str | None  # the corpus's own split that is scored (None: all of it)


PAPER = (
    SuiteSet("ASVspoof 2019 LA", "asvspoof2019_la", "ASVSPOOF2019_ROOT", "eval"),
    SuiteSet("In-the-Wild", "in_the_wild", "ITW_ROOT", None),
    SuiteSet("WaveFake", "wavefake", "WAVEFAKE_ROOT", None),
    SuiteSet("CodecFake", "codecfake", "CODECFAKE_ROOT", "eval"),
    SuiteSet("DiffSSD", "diffssd", "DIFFSSD_ROOT", "test"),
)
SUITES = {"paper": PAPER}
# The paper's mean EER (%) over its five sets (arXiv 2604.26465, as a published digest of it reports; per-set
# figures were not available to us): baseline, + diffusion reconstructions, + multi-layer aggregation, + RACL.
PAPER_MEAN_EER = {"baseline": 15.789, "+ diffusion reconstructions": 12.220, "+ multi-layer aggregation": 8.888, "+ RACL (the full model)": 8.247}


def suite_roots(suite: str, roots_file: str | None = None) -> dict[str, str | None]:
    """``{corpus: root or None}`` for every set of ``suite``: the roots file first, then the environment."""
    sets = SUITES[suite]
    given: dict = {}
    if roots_file:
        given, _ = read_yaml(roots_file)
        check_keys(str(roots_file), "", given, {s.corpus for s in sets})
    roots = {}
    for test_set in sets:
        value = given.get(test_set.corpus) or os.environ.get(test_set.env)
        roots[test_set.corpus] = os.path.expanduser(os.path.expandvars(str(value))) if value else None
    return roots


def check_set(test_set: SuiteSet, root: str | None) -> str | None:
    """Why ``test_set`` cannot be scored at ``root`` (one line), or None when it can."""
    from datasets_scripts.corpora import iter_corpus

    if not root:
        return f"no root (set {test_set.env}, or `{test_set.corpus}:` in --roots)"
    try:
        labels = {r.label for r in iter_corpus(test_set.corpus, root, test_set.split)}
    except (OSError, ValueError) as error:
        return " ".join(str(error).split())
    if labels != {BONAFIDE, SPOOF}:
        return f"{root} holds {'no clips' if not labels else 'one class only'}; EER needs both"
    return None


def run_suite(scorer: Scorer, suite: str, roots: dict[str, str | None], out: Path, batch_size: int = 8, progress: bool = False) -> dict:
    """Score every set of ``suite`` that is present; a missing one is logged and left out. Returns the suite's results."""
    from datasets_scripts.corpora.asvspoof2019 import asv_scores_file

    rows = []
    for test_set in SUITES[suite]:
        root = roots.get(test_set.corpus)
        problem = check_set(test_set, root)
        if problem:
            logger.warning("%s skipped: %s", test_set.name, problem)
            rows.append({"set": test_set.name, "corpus": test_set.corpus, "skipped": problem})
            continue
        asv = asv_scores_file(root, test_set.split) if test_set.corpus == "asvspoof2019_la" else None
        table = score_corpus(scorer, test_set.corpus, root, test_set.split, batch_size=batch_size, progress=progress)
        try:
            summary = summarize(table, asv)
        except ValueError as error:  # min t-DCF undefined for these ASV scores: keep the EER, say why
            logger.warning("%s: no min t-DCF: %s", test_set.name, error)
            summary = summarize(table)
        write_report(table, summary, out / test_set.corpus, title=f"{test_set.name} ({test_set.split or 'all'})")
        rows.append({"set": test_set.name, "corpus": test_set.corpus, "root": root, "split": test_set.split,
                     "n_clips": summary["n_clips"], "n_unreadable": summary["n_unreadable"],
                     "eer_percent": summary["eer_percent"], "min_tdcf": summary["min_tdcf"]})
    scored = [r for r in rows if "skipped" not in r]
    results = {"suite": suite, "sets": rows, "paper_mean_eer_percent": PAPER_MEAN_EER,
               "mean_eer_percent": sum(r["eer_percent"] for r in scored) / len(scored) if scored else None,
               "n_sets_scored": len(scored), "n_sets": len(rows)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(results, indent=2))
    (out / "suite.md").write_text(suite_markdown(results))
    return results


def suite_markdown(results: dict) -> str:
    lines = ["| test set | split | clips | EER % | min t-DCF | paper EER % |", "|---|---|---|---|---|---|"]
    for row in results["sets"]:
        if "skipped" in row:
            lines.append(f"| {row['set']} | | skipped: {row['skipped']} | | | - |")
            continue
        tdcf = "-" if row["min_tdcf"] is None else f"{row['min_tdcf']:.4f}"
        lines.append(f"| {row['set']} | {row['split'] or 'all'} | {row['n_clips']} | {row['eer_percent']:.2f} | {tdcf} | - |")
    mean = results["mean_eer_percent"]
    paper = results["paper_mean_eer_percent"]["+ RACL (the full model)"]
    over = f"{results['n_sets_scored']} of {results['n_sets']} sets"
    lines.append(f"| **mean** ({over}) | | | {'-' if mean is None else f'{mean:.2f}'} | | {paper:.3f} |")
    notes = ", ".join(f"{name} {value:.3f}" for name, value in results["paper_mean_eer_percent"].items())
    lines += ["", f"The paper's figures are the means over all five sets (per-set figures were not available to us): {notes}. "
              "A mean over fewer sets is not comparable to them."]
    return "\n".join(lines) + "\n"


__all__ = ["PAPER", "PAPER_MEAN_EER", "SUITES", "SuiteSet", "check_set", "run_suite", "suite_markdown", "suite_roots"]
