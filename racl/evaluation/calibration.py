"""Calibration of scores into p(bonafide): the fit (scikit-learn), kept out of the core metrics.

The model applies what is fitted here (``bonafide_probability``: ``sigmoid(scale * score + bias)``
with ``calibration_scale`` / ``calibration_bias`` of its config); this module only finds the two values.
"""

from __future__ import annotations

from ..labels import BONAFIDE, SPOOF
from ..metrics import as_labels, as_scores


def fit_calibration(scores, labels) -> tuple[float, float]:
    """Platt scaling: ``p(bonafide | score) = sigmoid(scale * score + bias)``.

    A one-feature logistic regression (scikit-learn, L-BFGS) fitted by maximum likelihood; ``C``
    is huge so the L2 penalty is negligible (two parameters, thousands of clips: nothing to
    regularise; a huge ``C`` rather than "no penalty" keeps it valid across scikit-learn
    versions). Fit on the validation split, never on the test split. Perfectly separated scores
    have no finite maximum-likelihood fit; the tiny penalty then keeps a steep but finite one.
    """
    from sklearn.linear_model import LogisticRegression

    s = as_scores(scores)
    y = as_labels(labels, s.size)
    if not ((y == BONAFIDE).any() and (y == SPOOF).any()):
        raise ValueError(f"calibration needs bona fide and spoof scores (got {int((y == BONAFIDE).sum())} bona fide, {int((y == SPOOF).sum())} spoof)")
    model = LogisticRegression(C=1e10, solver="lbfgs", max_iter=1000, tol=1e-10)
    model.fit(s[:, None], (y == BONAFIDE).astype(int))  # positive class = bona fide
    return float(model.coef_[0, 0]), float(model.intercept_[0])


__all__ = ["fit_calibration"]
