"""Labels, score polarity and the sampling rate, as every layer above the model uses them.

The model folder defines ``SAMPLING_RATE``, ``LABEL_NAMES``, ``BONAFIDE`` and ``SPOOF`` (it is the
lowest layer and the Hub remote code, so it cannot import this package); this module adds the
dataset schema's placeholders and the one parser of label spellings (docs/design.md, "Conventions").
"""

from __future__ import annotations

from modeling_racl.configuration_racl import BONAFIDE, LABEL_NAMES, SAMPLING_RATE, SPOOF

NO_ATTACK = "-"  # the ``attack`` of a bona fide clip
NO_RECONSTRUCTION = "none"  # the ``reconstruction`` of an original clip


def label_id(label: str | int) -> int:
    """Accept 0/1, 'bonafide'/'spoof' and the spellings corpora use ('bona-fide', 'genuine', 'fake', ...)."""
    if isinstance(label, (int,)) and label in (BONAFIDE, SPOOF):
        return int(label)
    text = str(label).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if text in {"bonafide", "genuine", "real", "0", "human", "original"}:
        return BONAFIDE
    if text in {"spoof", "fake", "1", "deepfake", "synthetic", "generated"}:
        return SPOOF
    raise ValueError(f"unknown label {label!r}: expected bonafide/spoof (or 0/1)")


__all__ = ["SAMPLING_RATE", "LABEL_NAMES", "BONAFIDE", "SPOOF", "NO_ATTACK", "NO_RECONSTRUCTION", "label_id"]
