"""Scoring many clips with a :class:`racl.scoring.Scorer`, the part dataset and corpus scoring share.

Clips are decoded a few at a time; one that cannot be decoded is logged, left out and listed, and
the rest go on. The mean window embedding of each clip can be collected beside its score.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..audio import AudioDecodeError
from ..precision import TorchRunner
from ..scoring import Scorer

logger = logging.getLogger(__name__)


class EmbeddingTap:
    """Collects the ``.embeddings`` of every forward pass of ``model`` (a forward hook).

    The scorer's own batching, padding and masking stay untouched, so the scores are exactly the
    scorer's; the embeddings come out in window order, batch after batch.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.batches: list[torch.Tensor] = []

    def _hook(self, module, args, output):
        self.batches.append(output.embeddings.detach().float().cpu())

    def __enter__(self) -> "EmbeddingTap":
        self.handle = self.model.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()

    def take(self) -> torch.Tensor:
        flat = torch.cat(self.batches)
        self.batches.clear()
        return flat


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Eval mode for scoring, then the caller's mode back (validation runs inside training)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def score_waves(scorer: Scorer, waves: list[np.ndarray], tap: EmbeddingTap | None) -> tuple[list[float], list, list]:
    """Clip scores, mean window embeddings (or Nones) and familiarity distances (or Nones) of decoded waveforms."""
    results = scorer.score_waveforms(waves)
    scores, familiarity = [r.score for r in results], [r.familiarity for r in results]
    if tap is None:
        return scores, [None] * len(results), familiarity
    per_clip = torch.split(tap.take(), [len(r.windows) for r in results])
    return scores, [e.mean(dim=0).numpy() for e in per_clip], familiarity


def score_rows(
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
    with_embeddings = with_embeddings and isinstance(scorer.runner, TorchRunner)  # an ONNX graph returns logits only
    tap_context = EmbeddingTap(scorer.model) if with_embeddings else contextlib.nullcontext()
    with tap_context as tap, eval_mode(scorer.model):
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
                for i, *result in zip(kept, *score_waves(scorer, waves, tap)):
                    scored[i] = tuple(result)  # (score, embedding, familiarity distance)
    return scored, failed


def as_scorer(scorer_or_model, feature_extractor, batch_size, window_seconds, hop_seconds, accelerator) -> Scorer:
    if isinstance(scorer_or_model, Scorer):
        return scorer_or_model
    if feature_extractor is None:
        raise ValueError("scoring a bare model needs its feature extractor")
    # each process scores its own rows: the unwrapped module avoids DDP's collective ops
    model = accelerator.unwrap_model(scorer_or_model) if accelerator is not None else scorer_or_model
    return Scorer(model, feature_extractor, batch_size=batch_size, window_seconds=window_seconds, hop_seconds=hop_seconds)


__all__ = ["EmbeddingTap", "eval_mode", "score_waves", "score_rows", "as_scorer"]
