"""Several seeds of one or more runs: the one seed loop of the project.

Runs go seed by seed (every run with the first seed, then every run with the next, ...), each into
``<base>/seed-N``, so an interrupted sweep still compares all its runs. ``--seeds`` of the training
CLI (:func:`multi_seed`) and the ablation (:mod:`racl.ablation`) both go through :func:`run_seeds`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .config import TrainConfig


def seed_dir(base: str | Path, seed: int) -> Path:
    """The output folder of one seed of a run whose folder is ``base``."""
    return Path(base) / f"seed-{seed}"


def run_seeds(
    seeds: list[int],
    bases: Mapping[str, str | Path],
    run: Callable[[str, int, Path], object],
    skip_finished: bool = False,
    after_each: Callable[[str, int], object] | None = None,
) -> dict[str, dict[int, dict]]:
    """``run(key, seed, output_dir)`` for every seed and every run ``key`` (output under ``bases[key]``), seed-major.

    With ``skip_finished``, a (run, seed) whose ``summary.json`` exists is not run again. Returns the
    summaries found afterwards, ``{key: {seed: summary}}`` (a run that left none is missing).
    """
    summaries: dict[str, dict[int, dict]] = {key: {} for key in bases}
    for seed in seeds:
        for key, base in bases.items():
            out = seed_dir(base, seed)
            if not (skip_finished and (out / "summary.json").exists()):
                run(key, seed, out)
            if (out / "summary.json").exists():
                summaries[key][seed] = json.loads((out / "summary.json").read_text())
            if after_each is not None:
                after_each(key, seed)
    return summaries


def multi_seed(cfg: TrainConfig, seeds: list[int]) -> dict:
    """Train once per seed; mean ± std of the selection metric (and test EER when evaluated)."""
    from .loop import train  # here, not at the top: the ablation uses run_seeds without loading accelerate

    base = Path(cfg.training.output_dir)
    runs = {}

    def one(_, seed, out):
        run = copy.deepcopy(cfg)
        run.training.seed, run.training.output_dir = seed, str(out)
        runs[seed] = train(run)

    run_seeds(seeds, {"": base}, one)
    report = {"seeds": seeds, "runs": runs}
    for key in (f"validation_{cfg.training.reported_metric}",):
        values = [r.get(key, r.get("validation_eer")) for r in runs.values()]  # a run may fall back to pooled EER
        report[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    tests = [r["test"]["eer"] for r in runs.values() if "test" in r]
    if len(tests) == len(seeds):
        report["test_eer"] = {"mean": float(np.mean(tests)), "std": float(np.std(tests))}
    base.mkdir(parents=True, exist_ok=True)
    (base / "multi_seed.json").write_text(json.dumps(report, indent=2, default=float))
    return report


__all__ = ["seed_dir", "run_seeds", "multi_seed"]
