"""Evaluation metrics for spoofing countermeasures: EER, min t-DCF, per-group EER.

Polarity (one convention for the whole project, docs/design.md, "Conventions"):

- **score** = ``logit[bonafide] - logit[spoof]``; **higher = more bona fide** (ASVspoof convention).
- **labels**: ``0 = bonafide``, ``1 = spoof`` (label names are accepted too, read by :func:`racl.labels.label_id`).
- A clip is *accepted* as bona fide when ``score >= threshold``.

Error rates are fractions in [0, 1] (multiply by 100 for the percentages papers print):

- false acceptance rate ``FAR(t)``: fraction of spoof clips with ``score >= t`` (spoofs let through);
- false rejection rate ``FRR(t)``: fraction of bona fide clips with ``score < t`` (real speech refused).

EER definition: the ROC is taken at every *distinct* score (so tied scores move together, as in
scikit-learn's ``roc_curve``); walking from the strictest threshold, FRR falls and FAR rises. The
EER is where the straight segment between the two operating points bracketing ``FRR = FAR``
crosses that line. This is exact for ties: all-tied scores give 0.5, a perfect detector 0, an
inverted one 1. (The ASVspoof reference takes the mean of FAR and FRR at the closest operating
point instead, which differs from this by at most one step of the curve.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .labels import BONAFIDE, SPOOF, label_id


# ---------------------------------------------------------------------------------------------
# input checks


def as_scores(scores, name: str = "scores") -> np.ndarray:
    """1-D float64 array; NaN/Inf are refused (no ordering is defined for them)."""
    arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name}: {bad} NaN/Inf value(s); every score must be a finite number")
    return arr


def as_labels(labels, n: int) -> np.ndarray:
    """1-D int array of 0 (bonafide) / 1 (spoof), from ints, bools or the label names."""
    raw = np.asarray(labels).reshape(-1)
    if raw.dtype.kind in "OUS":
        arr = np.array([label_id(str(v)) for v in raw], dtype=np.int64)  # ValueError naming an unknown label
    else:
        arr = raw.astype(np.int64)
    if arr.size != n:
        raise ValueError(f"got {n} scores but {arr.size} labels")
    if not np.isin(arr, (BONAFIDE, SPOOF)).all():
        raise ValueError("labels must be 0 (bonafide) or 1 (spoof)")
    return arr


def _split(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(bona fide scores, spoof scores); both must be non-empty."""
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    bona, spoof = s[y == BONAFIDE], s[y == SPOOF]
    if bona.size == 0 or spoof.size == 0:
        raise ValueError(
            f"EER needs both bona fide and spoof scores (got {bona.size} bona fide, {spoof.size} spoof)"
        )
    return bona, spoof


# ---------------------------------------------------------------------------------------------
# DET / ROC operating points


def _operating_points(positive: np.ndarray, negative: np.ndarray):
    """Miss and false-alarm rates for the rule ``accept if score >= t``.

    ``t`` runs over +inf (accept nothing) followed by every distinct score in decreasing order,
    so the first point is (miss=1, fa=0) and the last (miss=0, fa=1). Returns
    ``(miss, fa, thresholds)`` as float arrays of the same length.
    """
    thresholds = np.unique(np.concatenate([positive, negative]))[::-1]
    # count of scores >= t for each t: right-side search in the ascending arrays
    pos_sorted, neg_sorted = np.sort(positive), np.sort(negative)
    pos_accepted = positive.size - np.searchsorted(pos_sorted, thresholds, side="left")
    neg_accepted = negative.size - np.searchsorted(neg_sorted, thresholds, side="left")
    miss = np.concatenate([[1.0], 1.0 - pos_accepted / positive.size])
    fa = np.concatenate([[0.0], neg_accepted / negative.size])
    return miss, fa, np.concatenate([[np.inf], thresholds])


def det_curve_points(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET operating points of a countermeasure: ``(far, frr, thresholds)``.

    One point per distinct score (plus the accept-nothing point at ``+inf``), thresholds
    decreasing: ``far`` (spoofs accepted) rises from 0 to 1, ``frr`` (bona fide rejected) falls
    from 1 to 0. The rule is ``accept as bona fide if score >= threshold``.
    """
    bona, spoof = _split(scores, labels)
    frr, far, thresholds = _operating_points(bona, spoof)
    return far, frr, thresholds


def _crossing(miss: np.ndarray, fa: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """EER by linear interpolation where ``miss - fa`` changes sign; threshold of the nearer point."""
    diff = miss - fa  # starts at +1, ends at -1, non-increasing
    i = int(np.argmax(diff <= 0))  # first point on or past the crossing (i >= 1)
    d0, d1 = diff[i - 1], diff[i]
    alpha = d0 / (d0 - d1)  # d0 > 0 >= d1, so alpha in (0, 1]
    eer = fa[i - 1] + alpha * (fa[i] - fa[i - 1])
    # an actual score is more useful downstream than an interpolated one
    j = i if abs(d1) <= abs(d0) else i - 1
    if not np.isfinite(thresholds[j]):  # the accept-nothing point: use the highest score
        j = 1
    return float(eer), float(thresholds[j])


def compute_eer(scores, labels) -> tuple[float, float]:
    """Equal error rate of a countermeasure, as a fraction in [0, 1], and its threshold.

    ``scores``: higher = more bona fide; ``labels``: 0 bonafide, 1 spoof (see module doc for the
    exact definition). The threshold is the real score whose operating point is nearest the
    crossing, with the rule ``bona fide if score >= threshold``.

    Raises ``ValueError`` for NaN/Inf scores or when one class is missing.
    """
    bona, spoof = _split(scores, labels)
    miss, fa, thresholds = _operating_points(bona, spoof)
    return _crossing(miss, fa, thresholds)


# ---------------------------------------------------------------------------------------------
# tandem detection cost function


@dataclass(frozen=True)
class TDCFCostModel:
    """Priors and costs of the t-DCF (defaults: ASVspoof 2019 evaluation plan)."""

    p_spoof: float = 0.05  # prior of a spoofing attack
    p_tar: float = 0.95 * 0.99  # prior of a target (genuine, same speaker) trial = 0.9405
    p_non: float = 0.95 * 0.01  # prior of a zero-effort non-target trial = 0.0095
    c_miss_asv: float = 1.0  # ASV rejects a target
    c_fa_asv: float = 10.0  # ASV accepts a non-target
    c_miss_cm: float = 1.0  # CM rejects bona fide speech
    c_fa_cm: float = 10.0  # CM accepts a spoof


ASVSPOOF2019_COST_MODEL = TDCFCostModel()


def asv_error_rates(asv_scores, asv_keys) -> dict[str, float]:
    """ASV operating point fixed at its own EER threshold, as the ASVspoof 2019 plan does.

    ``asv_keys`` holds ``"target"``, ``"nontarget"`` or ``"spoof"`` per ASV trial; higher ASV
    score = same speaker. Returns the threshold and ``p_fa_asv`` (non-targets accepted),
    ``p_miss_asv`` (targets rejected) and ``p_miss_spoof_asv`` (spoofs rejected by the ASV).
    """
    s = as_scores(asv_scores, "asv_scores")
    keys = np.asarray(asv_keys).astype(str).reshape(-1)
    if keys.size != s.size:
        raise ValueError(f"got {s.size} ASV scores but {keys.size} keys")
    unknown = set(np.unique(keys)) - {"target", "nontarget", "spoof"}
    if unknown:
        raise ValueError(f"unknown ASV keys {sorted(unknown)}; expected target, nontarget, spoof")
    tar, non, spoof = s[keys == "target"], s[keys == "nontarget"], s[keys == "spoof"]
    if not (tar.size and non.size and spoof.size):
        raise ValueError("the t-DCF needs target, nontarget and spoof ASV scores")
    miss, fa, thresholds = _operating_points(tar, non)
    # the operating point where ASV misses and false alarms are closest (first one on ties)
    k = int(np.argmin(np.abs(miss - fa)[1:])) + 1
    t = float(thresholds[k])
    return {
        "threshold": t,
        "p_fa_asv": float(np.mean(non >= t)),
        "p_miss_asv": float(np.mean(tar < t)),
        "p_miss_spoof_asv": float(np.mean(spoof < t)),
    }


def compute_min_tdcf(
    cm_scores,
    cm_labels,
    asv_scores,
    asv_keys,
    cost_model: TDCFCostModel = ASVSPOOF2019_COST_MODEL,
) -> tuple[float, float]:
    """Normalised minimum t-DCF (ASVspoof 2019 formulation) and the CM threshold reaching it.

    With the ASV fixed at its EER threshold (``asv_error_rates``), the t-DCF of a CM threshold
    ``t`` is linear in the CM error rates::

        C1 = P_tar (C_miss_cm - C_miss_asv P_miss_asv) - P_non C_fa_asv P_fa_asv
        C2 = C_fa_cm P_spoof (1 - P_miss_spoof_asv)
        t-DCF(t) = C1 P_miss_cm(t) + C2 P_fa_cm(t)

    normalised by ``min(C1, C2)`` (the cost of a CM that accepts or rejects everything, so 1
    means "no better than no CM"). The minimum is taken over every distinct CM score and the
    accept-nothing / accept-everything extremes. CM polarity as everywhere: higher = bona fide,
    labels 0 bonafide / 1 spoof.
    """
    bona, spoof = _split(cm_scores, cm_labels)
    asv = asv_error_rates(asv_scores, asv_keys)
    cm = cost_model
    if min(asdict(cm).values()) < 0 or abs(cm.p_spoof + cm.p_tar + cm.p_non - 1.0) > 1e-10:
        raise ValueError("t-DCF cost model: costs must be >= 0 and the three priors must sum to 1")
    c1 = cm.p_tar * (cm.c_miss_cm - cm.c_miss_asv * asv["p_miss_asv"]) - cm.p_non * cm.c_fa_asv * asv["p_fa_asv"]
    c2 = cm.c_fa_cm * cm.p_spoof * (1.0 - asv["p_miss_spoof_asv"])
    if c1 <= 0 or c2 <= 0:
        raise ValueError(
            f"t-DCF weights must be positive (C1={c1:.4g}, C2={c2:.4g}); the ASV error rates "
            f"{asv} make the CM irrelevant (e.g. the ASV already rejects every spoof)"
        )
    miss, fa, thresholds = _operating_points(bona, spoof)
    # accept-everything point (the -inf threshold) completes the curve
    miss, fa = np.append(miss, 0.0), np.append(fa, 1.0)
    thresholds = np.append(thresholds, -np.inf)
    tdcf = (c1 * miss + c2 * fa) / min(c1, c2)
    k = int(np.argmin(tdcf))
    return float(tdcf[k]), float(thresholds[k])


# ---------------------------------------------------------------------------------------------
# breakdowns


def eer_per_group(scores, labels, groups: Sequence) -> dict[str, tuple[float, float]]:
    """EER and threshold (as :func:`compute_eer` gives them) pooled and for each spoof group.

    ``groups`` gives one name per clip (attack, reconstruction paradigm, ...); only the spoof clips'
    names matter. Each group's EER is that group's spoof clips against *all* bona fide clips, the
    ASVspoof per-attack convention. Returns ``{"pooled": (eer, threshold), group: (eer, threshold),
    ...}`` (groups sorted by name), EERs as fractions in [0, 1].
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    g = np.asarray(groups).astype(str).reshape(-1)
    if g.size != s.size:
        raise ValueError(f"got {s.size} scores but {g.size} group names")
    out = {"pooled": compute_eer(s, y)}
    bona = y == BONAFIDE
    for name in sorted(set(g[y == SPOOF])):
        keep = bona | ((y == SPOOF) & (g == name))
        out[str(name)] = compute_eer(s[keep], y[keep])
    return out
