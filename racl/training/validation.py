"""Validation during training: full-length scores of the validation split, the selection metric, the best model.

The best model is chosen by validation EER (pooled, or on spoofs of attacks unseen in training),
not by loss, and written as a Hub-ready folder to ``<output_dir>/best``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from accelerate.utils import gather_object

from ..audio import decode_audio_cell
from ..export import export_model_folder
from ..metrics import compute_eer
from ..scoring import Scorer

logger = logging.getLogger(__name__)
CLIPS_PER_STEP = 16  # clips decoded and scored together


def validation_scores(model, extractor, split, batch_size: int, accelerator=None, windows=None) -> dict:
    """Full-length scores of a split; with an accelerator the work is divided between processes and gathered.
    ``windows`` (:class:`racl.training.cached_states.CachedWindows` of ``split``): a frozen backbone's hidden states
    of the split, so that only the head runs."""
    model = accelerator.unwrap_model(model) if accelerator else model
    scorer = Scorer(model, extractor, batch_size=batch_size)
    indices = list(range(len(split)))

    def score(mine):
        local = []
        for start in range(0, len(mine), CLIPS_PER_STEP):
            chunk = mine[start : start + CLIPS_PER_STEP]
            if windows is not None:
                local.extend(zip(chunk, windows.scores(model, chunk, batch_size)))
                continue
            rows = split.select(chunk)
            waves = [decode_audio_cell(audio, utt) for audio, utt in zip(rows["audio"], rows["utt_id"])]
            results = scorer.score_waveforms(waves, rows["utt_id"])
            local.extend(zip(chunk, (r.score for r in results)))
        return local

    if accelerator is None:
        by_index = dict(score(indices))
    else:
        with accelerator.split_between_processes(indices) as mine:
            local = score(mine)
        # gather_object, not gather_for_metrics: inside the training loop, after an epoch's last batch, the latter
        # trims to the *training* loader's remainder and drops validation clips. Uneven shares need no trimming here.
        by_index = dict(gather_object(local))
    order = sorted(by_index)
    return {"index": order, "score": np.array([by_index[i] for i in order]), "label": np.array(split.select(order)["label"]), "attack": split.select(order)["attack"]}


def selection_value(scores: dict, metric: str, train_attacks: set[str]) -> dict:
    eer, threshold = compute_eer(scores["score"], scores["label"])
    result = {"eer": eer, "threshold": threshold}
    unseen = np.array([lab == 0 or att not in train_attacks for lab, att in zip(scores["label"], scores["attack"])])
    if metric == "eer_unseen":
        # train() checked that validation holds unseen spoofs; max_eval_samples may still leave none
        has_unseen = (scores["label"][unseen] == 1).any()
        result["eer_unseen"] = compute_eer(scores["score"][unseen], scores["label"][unseen])[0] if has_unseen else eer
    return result


def evaluate_and_keep_best(accelerator, model, extractor, val_split, cfg, state, train_attacks, windows=None):
    """Score validation (from ``windows``, its cached hidden states, when given), log it, and export the model to
    ``<output_dir>/best`` when it is the best so far (with ``selection_metric: last``, at the final step only)."""
    model.eval()
    scores = validation_scores(model, extractor, val_split, cfg.training.eval_batch_size, accelerator, windows)
    result = selection_value(scores, cfg.training.selection_metric, train_attacks)
    accelerator.log({f"validation/{k}": v for k, v in result.items()}, step=state.step)
    metric = result[cfg.training.reported_metric]
    logger.info("step %d: validation %s", state.step, {k: round(v, 4) for k, v in result.items()})
    keep = state.step >= cfg.training.max_steps if cfg.training.selection_metric == "last" else metric < state.best_metric
    if keep:
        state.best_metric, state.best_step = metric, state.step
        if accelerator.is_main_process:
            best = Path(cfg.training.output_dir) / "best"
            export_model_folder(accelerator.unwrap_model(model), best, extractor, results={"validation": {"eer": result["eer"]}})
            (best / "validation_scores.json").write_text(json.dumps({"step": state.step, **result, "selection_metric": cfg.training.selection_metric}, indent=2))
    accelerator.wait_for_everyone()


__all__ = ["validation_scores", "selection_value", "evaluate_and_keep_best"]
