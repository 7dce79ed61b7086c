"""The summary of a score table: EER pooled, per attack, per paradigm, on seen and unseen systems; min t-DCF.

The unseen-system EER is the headline (docs/design.md#splits). Polarity as in :mod:`racl.metrics`: higher
score = more bona fide, label 0 bonafide / 1 spoof.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from ..labels import BONAFIDE, NO_ATTACK, SPOOF
from ..metrics import compute_eer, compute_min_tdcf, eer_per_group
from .table import ScoreTable

ASV_KEYS = ("target", "nontarget", "spoof")


def read_asv_scores(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(scores, keys) of an ASVspoof 2019 ASV score file.

    The organisers' ``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt`` has three columns,
    ``SOURCE KEY SCORE`` (SOURCE ``bonafide`` or the attack id, KEY ``target`` / ``nontarget`` /
    ``spoof``), as read by the official ``evaluate_tDCF_asvspoof19.py``; the later six-column files
    (``SPEAKER UTT ... KEY SCORE``) are read too: the key is always the second last field and the
    score the last.
    """
    scores, keys = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                key, score = fields[-2], float(fields[-1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}, line {line_no}: expected '... KEY SCORE', got {line.strip()!r}") from None
            if key not in ASV_KEYS:
                raise ValueError(f"{path}, line {line_no}: key {key!r} is not one of {', '.join(ASV_KEYS)}")
            scores.append(score)
            keys.append(key)
    if not scores:
        raise ValueError(f"{path}: no ASV scores")
    return np.array(scores), np.array(keys)


def _entry(eer: float, threshold: float, n_spoof: int) -> dict:
    return {"eer": eer, "eer_percent": 100 * eer, "threshold": threshold, "n_spoof": n_spoof}


def _eer_entry(scores: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> dict:
    return _entry(*compute_eer(scores[keep], labels[keep]), int((labels[keep] == SPOOF).sum()))


def _group_eers(table: ScoreTable, names: Sequence[str], members: np.ndarray, seen: set | None,
                seen_key: Sequence[str] | None = None) -> dict[str, dict]:
    """EER of each named group of ``members`` (spoof rows) against all bona fide rows.

    A group is seen when its ``seen_key`` (default: its name) is in ``seen``.
    """
    if not members.any():
        return {}
    names = np.asarray(names, dtype=str)
    keys = names if seen_key is None else np.asarray(seen_key, dtype=str)
    keep = (table.label == BONAFIDE) | members
    per_group = eer_per_group(table.score[keep], table.label[keep], names[keep])
    del per_group["pooled"]
    out = {}
    for name, (eer, threshold) in per_group.items():
        group = members & (names == name)
        out[name] = _entry(eer, threshold, int(group.sum()))
        if seen is not None:
            out[name]["seen"] = str(keys[group][0]) in seen
    return out


def _reconstruction_sources(table: ScoreTable) -> list[str]:
    """``"<paradigm> of bona fide"`` / ``"<paradigm> of spoof"`` per row (from its source's label)."""
    return [f"{recon} of {'bona fide' if kind == 'bonafide reconstructed' else 'spoof'}"
            for recon, kind in zip(table.reconstruction, table.kinds())]


def _seen_spoofs(table: ScoreTable, seen_attacks: set | None, seen_paradigms: set | None) -> np.ndarray:
    """Spoof rows whose every generator was seen in training.

    The attack counts when ``seen_attacks`` is given (a reconstruction of bona fide speech, attack
    ``-``, has none), the paradigm when ``seen_paradigms`` is given (originals have none).
    """
    attack = np.asarray(table.attack, dtype=str)
    recon = np.asarray(table.reconstruction, dtype=str)
    attack_ok = np.ones(len(table), bool) if seen_attacks is None else np.isin(attack, list(seen_attacks)) | (table.is_reconstructed & (attack == NO_ATTACK))
    recon_ok = np.ones(len(table), bool) if seen_paradigms is None else ~table.is_reconstructed | np.isin(recon, list(seen_paradigms))
    return (table.label == SPOOF) & attack_ok & recon_ok


def summarize(table: ScoreTable, asv_scores=None, seen_attacks: Iterable[str] | None = None, seen_paradigms: Iterable[str] | None = None) -> dict:
    """EER pooled, per attack, per reconstruction paradigm, on seen/unseen systems; min t-DCF.

    - ``per_attack``: original (not reconstructed) spoofs of each attack vs all bona fide;
    - ``per_reconstruction``: reconstructed clips (of bona fide and of spoof sources) of each
      paradigm vs all bona fide;
    - ``per_reconstruction_source``: the same, reconstructions of bona fide and of spoofed clips
      apart (``"<paradigm> of bona fide"``): a reconstruction of a spoof still carries its TTS trace;
    - ``originals``: original (not reconstructed) spoofs vs all bona fide, the number comparable to
      ASVspoof-style test sets, which hold no reconstructions; ``None`` when there are none;
    - ``seen`` / ``unseen`` (when ``seen_attacks`` and/or ``seen_paradigms``, what training saw, are
      given): spoofs whose generators were all seen / not all seen, vs all bona fide; ``None``
      where no such spoof exists. ``headline`` is the unseen EER when there is one, else pooled;
    - ``min_tdcf`` (ASVspoof 2019 formulation) when ``asv_scores`` is given: a path to an ASV score
      file (:func:`read_asv_scores`) or a ``(scores, keys)`` pair.

    EERs are fractions, with ``eer_percent`` alongside. Raises ``ValueError`` when a class is missing.
    """
    s, y = table.score, table.label
    n_bona, n_spoof = int((y == BONAFIDE).sum()), int((y == SPOOF).sum())
    if not (n_bona and n_spoof):
        raise ValueError(f"EER needs bona fide and spoof clips; got {n_bona} bona fide and {n_spoof} spoof")
    seen_attacks = None if seen_attacks is None else set(seen_attacks)
    seen_paradigms = None if seen_paradigms is None else set(seen_paradigms)
    eer, threshold = compute_eer(s, y)
    out = {
        "n_clips": len(table), "n_bonafide": n_bona, "n_spoof": n_spoof, "n_unreadable": len(table.unreadable),
        "eer": eer, "eer_percent": 100 * eer, "eer_threshold": threshold,
        "per_attack": _group_eers(table, table.attack, (y == SPOOF) & ~table.is_reconstructed, seen_attacks),
        "per_reconstruction": _group_eers(table, table.reconstruction, (y == SPOOF) & table.is_reconstructed, seen_paradigms),
        "per_reconstruction_source": _group_eers(table, _reconstruction_sources(table), (y == SPOOF) & table.is_reconstructed,
                                                 seen_paradigms, seen_key=table.reconstruction),
        "seen_attacks": sorted(seen_attacks) if seen_attacks is not None else None,
        "seen_paradigms": sorted(seen_paradigms) if seen_paradigms is not None else None,
        "seen": None, "unseen": None, "min_tdcf": None,
    }
    original_spoofs = (y == SPOOF) & ~table.is_reconstructed
    out["originals"] = _eer_entry(s, y, (y == BONAFIDE) | original_spoofs) if original_spoofs.any() else None
    if seen_attacks is not None or seen_paradigms is not None:
        seen = _seen_spoofs(table, seen_attacks, seen_paradigms)
        unseen = (y == SPOOF) & ~seen
        out["seen"] = _eer_entry(s, y, (y == BONAFIDE) | seen) if seen.any() else None
        out["unseen"] = _eer_entry(s, y, (y == BONAFIDE) | unseen) if unseen.any() else None
    if asv_scores is not None:
        asv, keys = read_asv_scores(asv_scores) if isinstance(asv_scores, (str, os.PathLike)) else asv_scores
        out["min_tdcf"], out["min_tdcf_threshold"] = compute_min_tdcf(s, y, asv, keys)
    headline = ("EER on unseen systems", out["unseen"]["eer"]) if out["unseen"] else ("EER pooled", eer)
    out["headline"] = {"name": headline[0], "eer": headline[1], "eer_percent": 100 * headline[1]}
    return out


__all__ = ["ASV_KEYS", "read_asv_scores", "summarize"]
