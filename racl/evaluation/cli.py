"""Evaluation of a RACL detector on a dataset split or a corpus (library + ``racl-eval`` CLI).

Clips are scored full length by :class:`racl.scoring.Scorer` (windows of ``score_window_seconds``,
window scores averaged), optionally with the mean window embedding of each clip. The summary gives
the EER pooled, per attack, per reconstruction paradigm and, when the systems seen in training are
known, on seen and on unseen systems separately: the unseen number is the headline (docs/design.md#splits).
Polarity as in :mod:`racl.metrics`: higher score = more bona fide, label 0 bonafide / 1 spoof.

    racl-eval --model FOLDER_OR_ID --data DATASET_DIR_OR_HUB_ID [--split test] [--calibrate-on validation]
    racl-eval --model FOLDER_OR_ID --corpus asvspoof2019_la --root LA [--corpus-split eval] \\
              [--asv-scores LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.trl.scores.txt]
    racl-eval --model FOLDER_OR_ID --suite paper [--roots roots.yaml]   # the paper's five sets (racl.evaluation.suite)

Writes ``scores.txt``, ``results.json``, ``report.md``, ``det.png``, ``score_hist.png`` and
``embeddings.png`` to ``--out``. A set of one class (e.g. ``--corpus folder`` on a folder holding only
``bonafide/``: your own real speech) has no EER; it gets the one-class report instead
(:mod:`racl.evaluation.one_class`: how many clips get the other label, overall and per speaker / attack).
Exit status 0 on success (unreadable corpus files are listed and excluded, not fatal), 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from datasets_scripts.loading import get_split, load_dataset_dict

from ..labels import BONAFIDE, SPOOF
from ..precision import BACKENDS, PRECISIONS
from ..scoring import Scorer
from .corpus import score_corpus
from .dataset import dataset_metadata, score_dataset, seen_systems
from .model_folder import calibrate, card_results, update_model_card
from .one_class import summarize_one_class, write_one_class_report
from .report import write_report
from .suite import SUITES, check_set, run_suite, suite_roots
from .summary import read_asv_scores, summarize

logger = logging.getLogger("racl.evaluation")  # the package's: its modules log under it


def _check_both_classes(labels: set, where: str) -> None:
    """Calibration needs bona fide and spoof clips: a set of one class gets one line."""
    if labels != {BONAFIDE, SPOOF}:
        found = "no" if not labels else "only bona fide" if labels == {BONAFIDE} else "only spoof"
        raise ValueError(f"{where}: {found} clips; calibration needs both classes")


def _check_some_clips(labels: set, where: str, args) -> bool:
    """Whether the set to score holds one class only (then it gets the one-class report, which has no EER to record)."""
    if not labels:
        raise ValueError(f"{where}: no clips")
    one_class = len(labels) == 1
    if one_class and args.update_card:
        raise ValueError(f"{where}: clips of one class only, so no EER for --update-card to record; leave it out "
                         "for the one-class report (how many clips get the other label)")
    return one_class


def _split_of(dataset_dict, split: str, data: str):
    """The split, checked: present, not empty, with a label column; and its set of labels."""
    dataset = get_split(dataset_dict, split, data)
    return dataset, set(dataset_metadata(dataset)["label"])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "eval"


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="racl-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="dataset folder (Parquet or save_to_disk) or Hub id, with the racl schema")
    source.add_argument("--corpus", help="corpus reader name (asvspoof2019_la, in_the_wild, folder, ...)")
    source.add_argument("--suite", choices=sorted(SUITES), help="score every present set of a suite (paper: 19LA eval, In-the-Wild, "
                        "WaveFake, CodecFake eval, DiffSSD test); roots from --roots or ASVSPOOF2019_ROOT, ITW_ROOT, WAVEFAKE_ROOT, "
                        "CODECFAKE_ROOT, DIFFSSD_ROOT")
    parser.add_argument("--roots", help="with --suite: YAML mapping corpus name → root folder (default: the environment variables)")
    parser.add_argument("--split", default="test", help="dataset split to evaluate (default: test)")
    parser.add_argument("--root", help="corpus root folder (with --corpus)")
    parser.add_argument("--corpus-split", default=None, help="the corpus's own split, e.g. eval (default: all)")
    parser.add_argument("--asv-scores", help="ASVspoof 2019 ASV score file, for min t-DCF (default for --corpus asvspoof2019_la: the corpus's own)")
    parser.add_argument("--calibrate-on", metavar="SPLIT", help="fit calibration on this split and write it into the model folder")
    parser.add_argument("--seen-attacks", help="comma-separated attacks seen in training (default with --data: the train split's)")
    parser.add_argument("--seen-paradigms", help="comma-separated reconstruction paradigms seen in training")
    parser.add_argument("--out", help="output folder (default: eval_results/<data>_<split>)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--update-card", action="store_true", help="add the results to the model folder's README.md")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="as racl-score: fp32, bf16 autocast or int8 (default fp32)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="torch, or onnx (the graph racl-export --onnx wrote; no embedding plot)")
    args = parser.parse_args(argv)
    if args.corpus and not args.root:
        parser.error("--corpus needs --root")
    if args.roots and not args.suite:
        parser.error("--roots goes with --suite")
    if args.suite and (args.calibrate_on or args.update_card):
        parser.error("--suite scores test sets only: --calibrate-on and --update-card need --data or --corpus")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def _csv_set(text: str | None) -> set[str] | None:
    return None if text is None else {t.strip() for t in text.split(",") if t.strip()}


def _prepare_data(args):
    """Check the data before the model loads; returns (name, run(scorer), run_calibration(scorer) or None, seen, one_class)."""
    seen = (_csv_set(args.seen_attacks), _csv_set(args.seen_paradigms))
    if args.data:
        dd = load_dataset_dict(args.data)
        test, labels = _split_of(dd, args.split, args.data)
        one_class = _check_some_clips(labels, f"{args.data}: split {args.split!r}", args)
        calib = None
        if args.calibrate_on:
            calib, calib_labels = _split_of(dd, args.calibrate_on, args.data)
            _check_both_classes(calib_labels, f"{args.data}: split {args.calibrate_on!r}")
        if seen == (None, None) and "train" in dd and args.split != "train":
            seen = seen_systems(dd["train"])
        name = f"{Path(args.data).name or args.data} {args.split}"

        def dataset_run(scorer, dataset=test):
            return score_dataset(scorer, dataset=dataset, batch_size=args.batch_size, progress=sys.stderr.isatty())

        return name, dataset_run, (lambda scorer: dataset_run(scorer, calib)) if calib is not None else None, seen, one_class
    from datasets_scripts.corpora import iter_corpus

    # unknown corpus, wrong layout, unknown split, no clips: all before the model loads
    where = f"corpus {args.corpus!r} at {args.root}, split {{}}"
    one_class = _check_some_clips({r.label for r in iter_corpus(args.corpus, args.root, args.corpus_split)}, where.format(args.corpus_split), args)
    if args.calibrate_on:
        _check_both_classes({r.label for r in iter_corpus(args.corpus, args.root, args.calibrate_on)}, where.format(args.calibrate_on))
    name = f"{args.corpus} {args.corpus_split or 'all'}"

    def corpus_run(scorer, split=args.corpus_split):
        return score_corpus(scorer, args.corpus, args.root, split, batch_size=args.batch_size, progress=sys.stderr.isatty())

    run_calib = (lambda scorer: corpus_run(scorer, args.calibrate_on)) if args.calibrate_on else None
    return name, corpus_run, run_calib, seen, one_class


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


def _print_one_class(summary: dict, out: Path) -> None:
    other = summary["other_label"]
    rate = summary[f"labelled_{other}"]
    print(f"clips: {summary['n_clips']} (all {summary['one_class']}: no EER), unreadable: {summary['n_unreadable']}")
    print(f"{summary['headline']['name']}: {rate['rate_percent']:.1f} % ({rate['n_other']} of {rate['n_clips']}; "
          f"95 % interval {rate['ci95_percent'][0]:.1f}-{rate['ci95_percent'][1]:.1f} %)")
    if "unfamiliar_percent" in rate:
        print(f"unlike the training audio (familiarity check): {rate['unfamiliar_percent']:.1f} %; labelled {other} without "
              f"that warning: {rate['other_and_familiar_percent']:.1f} %")
    for key in ("per_speaker", "per_attack", "per_reconstruction"):
        for name, entry in summary[key].items():
            print(f"  {name}: {entry['rate_percent']:.1f} % of {entry['n_clips']}")
    print(f"report: {out / 'report.md'}")


def _run_suite(args) -> int:
    roots = suite_roots(args.suite, args.roots)
    if all(check_set(s, roots[s.corpus]) for s in SUITES[args.suite]):  # before the model loads
        names = ", ".join(f"{s.name} ({check_set(s, roots[s.corpus])})" for s in SUITES[args.suite])
        raise ValueError(f"no test set of suite {args.suite!r} is present: {names}")
    scorer = _load_scorer(args)
    out = Path(args.out or Path("eval_results") / f"suite_{args.suite}")
    results = run_suite(scorer, args.suite, roots, out, batch_size=args.batch_size, progress=sys.stderr.isatty())
    print((out / "suite.md").read_text(), end="")
    print(f"reports: {out}")
    return 0 if results["n_sets_scored"] else 2


def _load_scorer(args) -> Scorer:
    try:
        return Scorer.from_pretrained(args.model, device=args.device, batch_size=args.batch_size, precision=args.precision, backend=args.backend)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load model {args.model!r}: {error}") from None


def _run(args) -> int:
    if args.suite:
        return _run_suite(args)
    local_model = Path(args.model).is_dir()
    if (args.update_card or args.calibrate_on) and not local_model:
        raise ValueError(f"{args.model}: --calibrate-on and --update-card write into the model folder; give a local folder")
    if not args.asv_scores and args.corpus == "asvspoof2019_la" and args.corpus_split:
        from datasets_scripts.corpora.asvspoof2019 import asv_scores_file

        args.asv_scores = asv_scores_file(args.root, args.corpus_split)  # the organisers' file, where the corpus has it
    if args.asv_scores:
        read_asv_scores(args.asv_scores)  # format errors before the long part
    name, run, run_calib, (seen_attacks, seen_paradigms), one_class = _prepare_data(args)
    scorer = _load_scorer(args)
    calibration = None
    if run_calib is not None:
        scale, bias = calibrate(args.model, run_calib(scorer))
        scorer.model.config.calibration_scale, scorer.model.config.calibration_bias = scale, bias
        calibration = {"scale": scale, "bias": bias, "split": args.calibrate_on, "written_to": str(Path(args.model) / "config.json")}
    table = run(scorer)
    out = Path(args.out or Path("eval_results") / _slug(name))
    title = f"{Path(args.model).name or args.model} on {name}"
    if one_class:  # e.g. a folder of one's own real speech: how many clips get the other label
        if not len(table):
            raise ValueError(f"{name}: no clip could be read (see the lines above)")
        threshold = getattr(scorer.config, "familiarity_threshold", None)
        summary = {**summarize_one_class(table, scorer.probability, scorer.decision_score, threshold), "calibration": calibration}
        write_one_class_report(table, summary, out, title)
        _print_one_class(summary, out)
        return 0
    summary = summarize(table, args.asv_scores, seen_attacks, seen_paradigms)
    write_report(table, summary, out, calibration, title=title)
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


__all__ = ["main"]
