"""What an evaluation writes into a local model folder: the calibration of its config, and its model card."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .calibration import fit_calibration
from .table import ScoreTable


def local_model_dir(model_dir: str | os.PathLike) -> Path:
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json); calibration and the card need a local folder")
    return path


def calibrate(model_dir: str | os.PathLike, validation_table: ScoreTable) -> tuple[float, float]:
    """Fit Platt scaling on validation scores and store it as the folder config's calibration_scale/bias."""
    from transformers import AutoConfig

    path = local_model_dir(model_dir)
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

    from ..export import model_card

    path = local_model_dir(model_dir)
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


__all__ = ["local_model_dir", "calibrate", "update_model_card", "card_results"]
