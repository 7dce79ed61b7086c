"""The score table: one row per scored clip, with the metadata the summary breaks the EER down by."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..labels import BONAFIDE, NO_ATTACK, SPOOF


@dataclass
class ScoreTable:
    """One row per scored clip, in dataset / protocol order (unreadable clips left out).

    ``score`` float64, ``label`` int (0 bonafide / 1 spoof), ``is_reconstructed`` bool;
    ``embeddings`` (n, d) float32 is the mean of each clip's window embeddings, or None; ``familiarity`` each
    clip's distance to the model's training audio, or None where the model has no familiarity check.
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
    familiarity: np.ndarray | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utt_id)

    @classmethod
    def from_rows(cls, meta: dict[str, list], scored: dict[int, tuple], failed: Iterable[tuple[int, str]]) -> "ScoreTable":
        """Assemble from row metadata, ``{row: (score, embedding, familiarity)}`` and ``[(row, reason)]``."""
        keep = sorted(scored)
        embeddings = [scored[i][1] for i in keep]
        has_embeddings = bool(keep) and all(e is not None for e in embeddings)
        distances = [scored[i][2] for i in keep]
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
            familiarity=np.array(distances, dtype=np.float64) if keep and None not in distances else None,
            unreadable=[(meta["utt_id"][i], reason) for i, reason in sorted(failed)],
        )

    def kinds(self) -> list[str]:
        """The four groups of :func:`racl.evaluation.plots.plot_embedding_map` for each row.

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

    def write_scores(self, path) -> None:
        """``scores.txt``: one ``UTT_ID SCORE`` line per scored clip, in table order."""
        Path(path).write_text("".join(f"{u} {s:.6f}\n" for u, s in zip(self.utt_id, self.score)))

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


__all__ = ["ScoreTable"]
