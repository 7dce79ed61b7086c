"""Scoring a corpus read by :mod:`datasets_scripts.corpora` (ASVspoof 2019/2021, In-the-Wild, a folder...)."""

from __future__ import annotations

from ..audio import load_audio
from ..labels import NO_RECONSTRUCTION
from ..scoring import Scorer
from .batch_scoring import score_rows
from .table import ScoreTable


def corpus_metadata(records) -> dict[str, list]:
    """Per-row metadata of corpus records (:class:`datasets_scripts.schema.ClipRecord`)."""
    recon = [str(r.extra.get("reconstruction", NO_RECONSTRUCTION)) for r in records]
    return {
        "utt_id": [r.utt_id for r in records],
        "label": [r.label for r in records],
        "attack": [r.attack for r in records],
        "reconstruction": recon,
        "is_reconstructed": [x != NO_RECONSTRUCTION for x in recon],
        "source_id": [r.source_id for r in records],
        "speaker": [r.speaker for r in records],
    }


def score_corpus(
    scorer: Scorer,
    corpus_name: str,
    root: str,
    split: str | None = None,
    batch_size: int = 8,
    return_embeddings: bool = True,
    progress: bool = False,
) -> ScoreTable:
    """Score a corpus read by ``datasets_scripts.corpora`` (ASVspoof 2019/2021, In-the-Wild, folder...).

    Files are decoded with :func:`racl.audio.load_audio`; an unreadable one is logged (one warning
    line naming the file and the reason), left out of the table and listed in ``table.unreadable``.
    An unknown corpus, a wrong layout or an unknown split raise before any scoring.
    """
    from datasets_scripts.corpora import iter_corpus

    records = list(iter_corpus(corpus_name, root, split))
    if not records:
        raise ValueError(f"corpus {corpus_name!r} at {root} (split {split}) has no clips")
    meta = corpus_metadata(records)
    rows = list(range(len(records)))
    scored, failed = score_rows(scorer, rows, lambda i: load_audio(records[i].path), batch_size, return_embeddings, progress)
    return ScoreTable.from_rows(meta, scored, failed)


__all__ = ["corpus_metadata", "score_corpus"]
