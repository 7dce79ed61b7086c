"""Two detectors side by side and fused, on one dataset split, over several seeds (docs/demo.md).

Each pair is two ``racl-eval`` output folders (their ``scores.txt``) with the model folders that made them. The
fusion is the sum of each model's calibrated log-odds (``calibration_scale * score + calibration_bias``, fitted
on validation), so neither model's score range dominates by its scale alone; or, with ``--rule min``, the smaller of
the two (a clip is as bona fide as the more doubtful model finds it: either model's alarm is enough). Every column is summarised by
:func:`racl.evaluation.summary.summarize`, as ``racl-eval`` does, with the training split's systems as "seen".

    python -m benchmarks.score_fusion --data outputs/wide/data [--rule sum|min] \\
        --pair EVAL_A0 MODEL_A0 EVAL_B0 MODEL_B0 --pair EVAL_A1 MODEL_A1 EVAL_B1 MODEL_B1 ...
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from datasets_scripts.loading import load_dataset_dict
from racl.evaluation.dataset import dataset_metadata, seen_systems
from racl.evaluation.summary import summarize
from racl.evaluation.table import ScoreTable


RULES = {"sum": lambda a, b: a + b, "min": min}


def calibrated_scores(eval_dir: str, model_dir: str) -> dict[str, float]:
    """utt_id -> calibrated log-odds of bona fide, from a ``racl-eval`` folder and its model's calibration."""
    config_path, scores_path = Path(model_dir) / "config.json", Path(eval_dir) / "scores.txt"
    for path in (config_path, scores_path):
        if not path.is_file():
            raise SystemExit(f"score_fusion: no {path} (a model folder and the racl-eval --out folder of its scores)")
    config = json.loads(config_path.read_text())
    if config.get("calibration_scale") is None or config.get("calibration_bias") is None:
        raise SystemExit(f"score_fusion: {config_path} has no calibration (train with racl.training or run racl-eval --calibrate-on)")
    scale, bias = config["calibration_scale"], config["calibration_bias"]
    with open(scores_path) as f:
        return {utt: scale * float(score) + bias for utt, score in (line.split() for line in f if line.strip())}


def summary_of(meta: dict, scores: dict[str, float], seen: tuple[set, set]) -> dict:
    missing = [u for u in meta["utt_id"] if u not in scores]
    if missing:
        raise SystemExit(f"score_fusion: {len(missing)} clips of the split have no score (first: {missing[0]})")
    table = ScoreTable.from_rows(meta, {i: (scores[u], None, None) for i, u in enumerate(meta["utt_id"])}, [])
    return summarize(table, seen_attacks=seen[0], seen_paradigms=seen[1])


def rows(summary: dict) -> dict[str, float]:
    out = {"pooled": summary["eer_percent"]}
    for key in ("unseen", "originals"):
        if summary.get(key):
            out[key] = summary[key]["eer_percent"]
    for key in ("per_attack", "per_reconstruction_source"):
        out.update({name: entry["eer_percent"] for name, entry in (summary.get(key) or {}).items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the dataset folder both models were scored on")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pair", nargs=4, action="append", required=True, metavar=("EVAL_A", "MODEL_A", "EVAL_B", "MODEL_B"))
    parser.add_argument("--rule", choices=sorted(RULES), default="sum", help="how the two calibrated log-odds combine")
    args = parser.parse_args(argv)
    dataset = load_dataset_dict(args.data)
    meta = dataset_metadata(dataset[args.split])
    seen = seen_systems(dataset["train"])
    columns: dict[str, list[dict]] = {"A": [], "B": [], "A+B": []}
    for eval_a, model_a, eval_b, model_b in args.pair:
        a, b = calibrated_scores(eval_a, model_a), calibrated_scores(eval_b, model_b)
        fused = {u: RULES[args.rule](a[u], b[u]) for u in a if u in b}
        for name, scores in (("A", a), ("B", b), ("A+B", fused)):
            columns[name].append(rows(summary_of(meta, scores, seen)))

    def cell(values: list[float]) -> str:
        return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"

    print(f"{args.split} split of {args.data}, EER %, mean ± std over {len(args.pair)} pairs")
    print("| group | A | B | A+B (fused) |\n|---|---|---|---|")
    for group in columns["A"][0]:
        print(f"| {group} | " + " | ".join(cell([run[group] for run in columns[name]]) for name in columns) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
