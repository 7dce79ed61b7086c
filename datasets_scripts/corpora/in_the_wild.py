"""In-the-Wild (Müller et al., Interspeech 2022): real and deepfaked speech of public figures.

Layout of ``release_in_the_wild``::

    <root>/meta.csv        header ``file,speaker,label``, e.g. ``0.wav,Alec Guinness,spoof``
    <root>/<file>          0.wav ... 31778.wav

Labels are ``bona-fide`` / ``spoof``. The corpus does not name the systems behind its spoofs, so they
all get attack ``itw-spoof``. It has no official splits: it is an evaluation set (split ``eval``).
``root`` may also be the folder that contains ``release_in_the_wild/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..schema import NO_ATTACK, SPOOF, ClipRecord, label_id
from . import check_split, malformed, require_dir, require_file, table_rows, unique_ids

CORPUS = "in_the_wild"
SPOOF_ATTACK = "itw-spoof"
COLUMNS = {"file": ("file",), "speaker": ("speaker",), "label": ("label",)}


def meta_path(root: str) -> Path:
    root_path = require_dir(root, "the In-the-Wild release folder (release_in_the_wild/ with meta.csv)")
    nested = root_path / "release_in_the_wild" / "meta.csv"
    if not (root_path / "meta.csv").exists() and nested.exists():
        return nested
    return require_file(root_path / "meta.csv", "In-the-Wild's meta.csv (columns file,speaker,label)")


def _records(meta: Path) -> Iterator[ClipRecord]:
    for line_no, row in table_rows(meta, COLUMNS):
        try:
            label = label_id(row["label"])
        except ValueError as e:
            raise malformed(meta, line_no, str(e)) from None
        attack = SPOOF_ATTACK if label == SPOOF else NO_ATTACK
        path = meta.parent / row["file"]
        yield ClipRecord(str(path), Path(row["file"]).stem, label, row["speaker"], CORPUS, attack)


def iter_clips(root: str, split: str | None = None) -> Iterator[ClipRecord]:
    """Every clip of ``meta.csv`` (split None or ``eval``: the corpus is one evaluation set)."""
    check_split(split, ("eval",), CORPUS, {"test": "eval"})
    meta = meta_path(root)
    return unique_ids(_records(meta), meta)
