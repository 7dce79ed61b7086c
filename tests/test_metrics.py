"""EER, min t-DCF, per-group EER, label names, the local evaluate metric and the plots."""

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_curve

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from racl.metrics import (  # noqa: E402
    asv_error_rates,
    compute_eer,
    compute_min_tdcf,
    det_curve_points,
    eer_per_group,
)

REPO = Path(__file__).resolve().parents[1]


def sklearn_eer(scores, labels):
    """Independent EER: scikit-learn ROC (bona fide = positive), linear crossing of FNR and FPR."""
    fpr, tpr, _ = roc_curve(np.asarray(labels) == 0, scores, drop_intermediate=False)
    fnr = 1 - tpr
    i = int(np.argmax(fnr - fpr <= 0))
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    return fpr[i - 1] + d0 / (d0 - d1) * (fpr[i] - fpr[i - 1])


# ---------------------------------------------------------------------------------------------
# EER


def test_eer_perfect_inverted_ties():
    labels = [0, 0, 0, 1, 1, 1]
    assert compute_eer([3.0, 2.0, 1.5, -1.0, -2.0, 0.5], labels) == (0.0, 1.5)
    assert compute_eer([-3.0, -2.0, -1.5, 1.0, 2.0, 0.5], labels)[0] == 1.0
    assert compute_eer([0.7] * 6, labels)[0] == 0.5
    assert compute_eer([1.0, 1.0, 0.0, 1.0, 0.0, 0.0], labels)[0] == pytest.approx(1 / 3)


def test_eer_accepts_label_names_and_threshold_rule():
    scores = np.array([2.0, 0.4, 1.0, -1.0, 0.6, -0.2])
    names = ["bonafide", "bonafide", "bonafide", "spoof", "spoof", "spoof"]
    eer, thr = compute_eer(scores, names)
    assert eer == pytest.approx(1 / 3)
    # at the returned threshold (rule: bona fide if score >= t) the two error rates are equal here
    assert np.mean(scores[:3] < thr) == pytest.approx(np.mean(scores[3:] >= thr))


@pytest.mark.parametrize("seed", range(8))
def test_eer_matches_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    # rounding makes many ties, within and across classes
    scores = np.round(rng.normal(size=n) - rng.uniform(0, 2) * labels, int(rng.integers(0, 3)))
    assert abs(compute_eer(scores, labels)[0] - sklearn_eer(scores, labels)) < 1e-6


def test_eer_errors_are_clear():
    with pytest.raises(ValueError, match="needs both bona fide and spoof scores"):
        compute_eer([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="needs both bona fide and spoof scores"):
        compute_eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        compute_eer([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="labels"):
        compute_eer([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="0 \\(bonafide\\) or 1 \\(spoof\\)"):
        compute_eer([0.1, 0.2], [0, 2])


def test_det_curve_points_endpoints():
    far, frr, thr = det_curve_points([1.0, 2.0, 0.0, 1.0], [0, 0, 1, 1])
    assert (far[0], frr[0], thr[0]) == (0.0, 1.0, np.inf)
    assert (far[-1], frr[-1]) == (1.0, 0.0)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0)


def test_eer_per_group_uses_all_bonafide():
    scores = [1.0, 2.0, 3.0, 0.0, 5.0, 2.5]
    labels = [0, 0, 0, 1, 1, 1]
    groups = ["-", "-", "-", "A01", "A02", "A01"]
    out = eer_per_group(scores, labels, groups)
    assert list(out) == ["pooled", "A01", "A02"]
    assert out["A01"] == compute_eer([1, 2, 3, 0, 2.5], [0, 0, 0, 1, 1]) and out["A01"][0] == 0.5
    assert out["A02"][0] == 1.0  # its one spoof outscores every bona fide clip
    assert out["pooled"] == compute_eer(scores, labels)


def test_label_names_are_read_by_the_one_label_parser():
    scores = [0.9, 0.8, 0.1, 0.2]
    assert compute_eer(scores, ["bonafide", "bona-fide", "spoof", "fake"]) == compute_eer(scores, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="unknown label 'maybe'"):
        compute_eer(scores, ["bonafide", "maybe", "spoof", "spoof"])


# ---------------------------------------------------------------------------------------------
# min t-DCF


def test_min_tdcf_hand_computed():
    # ASV: targets 2,3,4,5; non-targets -1,0,1,2.5; spoofs 1,3,4,2 (higher = same speaker).
    # At t = 2.5 (accept if >= t) one target is missed and one non-target accepted: P_miss_asv =
    # P_fa_asv = 1/4, the ASV EER point. Spoofs 3 and 4 pass: P_miss_spoof_asv = 2/4.
    asv_scores = [2, 3, 4, 5, -1, 0, 1, 2.5, 1, 3, 4, 2]
    asv_keys = ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 4
    asv = asv_error_rates(asv_scores, asv_keys)
    assert asv == {"threshold": 2.5, "p_fa_asv": 0.25, "p_miss_asv": 0.25, "p_miss_spoof_asv": 0.5}
    c1 = 0.9405 * (1 - 1 * 0.25) - 0.0095 * 10 * 0.25  # = 0.681625
    c2 = 10 * 0.05 * (1 - 0.5)  # = 0.25
    # CM: bona fide 0.9, 0.3, 0.8; spoof 0.1, 0.5, 0.2. Candidate thresholds and (P_miss, P_fa):
    # 0.1 -> (0, 1), 0.2 -> (0, 2/3), 0.3 -> (0, 1/3), 0.5 -> (1/3, 1/3), 0.8 -> (1/3, 0),
    # 0.9 -> (2/3, 0), +inf -> (1, 0). The cheapest is t = 0.3: C2 * 1/3.
    expected = c2 * (1 / 3) / min(c1, c2)
    cm_scores, cm_labels = [0.9, 0.3, 0.8, 0.1, 0.5, 0.2], [0, 0, 0, 1, 1, 1]
    tdcf, thr = compute_min_tdcf(cm_scores, cm_labels, asv_scores, asv_keys)
    assert tdcf == pytest.approx(expected) and tdcf == pytest.approx(1 / 3)
    assert thr == 0.3
    # a perfect CM costs nothing; an all-tied CM is no better than no CM (normalised t-DCF 1)
    assert compute_min_tdcf([1, 1, 1, 0, 0, 0], cm_labels, asv_scores, asv_keys)[0] == 0.0
    assert compute_min_tdcf([0.5] * 6, cm_labels, asv_scores, asv_keys)[0] == pytest.approx(1.0)


def test_min_tdcf_rejects_bad_asv_keys():
    with pytest.raises(ValueError, match="unknown ASV keys"):
        compute_min_tdcf([1, 0], [0, 1], [1, 0, 2], ["target", "impostor", "spoof"])


# ---------------------------------------------------------------------------------------------
# the evaluate metric


def test_evaluate_metric_matches_racl(monkeypatch):
    import evaluate

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) - labels, 2).astype(np.float32)
    expected = compute_eer(scores, labels)
    by_path = evaluate.load(str(REPO / "metrics" / "eer")).compute(predictions=scores, references=labels)
    monkeypatch.chdir(REPO)
    metric = evaluate.load("metrics/eer")
    for start in range(0, 300, 100):  # incremental use, as in an evaluation loop
        metric.add_batch(predictions=scores[start : start + 100], references=labels[start : start + 100])
    by_name = metric.compute()
    assert by_path == by_name == {"eer": expected[0], "threshold": pytest.approx(expected[1])}


# ---------------------------------------------------------------------------------------------
# plots


def _is_png(path):
    data = Path(path).read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png(tmp_path):
    from racl.evaluation.plots import EMBEDDING_KINDS, plot_det, plot_embedding_map, plot_score_histogram

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = rng.normal(size=200) - 2 * labels
    groups = np.where(labels == 0, "-", rng.choice(["A07", "A10"], 200))
    assert _is_png(plot_det(scores, labels, tmp_path / "det.png", groups=groups))
    assert _is_png(plot_score_histogram(scores, labels, tmp_path / "sub" / "hist.png"))
    kinds = np.array(EMBEDDING_KINDS)[rng.integers(0, 4, 60)]
    emb = rng.normal(size=(60, 8))
    assert _is_png(plot_embedding_map(emb, kinds, tmp_path / "pca.png"))
    assert _is_png(plot_embedding_map(emb, kinds, tmp_path / "tsne.png", method="tsne"))
    with pytest.raises(ValueError, match="unknown kinds"):
        plot_embedding_map(emb, ["other"] * 60, tmp_path / "x.png")
