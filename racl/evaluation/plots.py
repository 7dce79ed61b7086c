"""Figures for evaluation reports: DET curves, score histograms, embedding maps (PNG files).

Polarity as in :mod:`racl.metrics`: score higher = more bona fide, label 0 bonafide / 1 spoof.
Figures are built as ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never
through pyplot: no display is needed, no global backend is switched, and nothing leaks between
calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from ..labels import BONAFIDE, SPOOF
from ..metrics import as_labels, as_scores, compute_eer, det_curve_points

EMBEDDING_KINDS = ("bonafide original", "bonafide reconstructed", "spoof original", "spoof reconstructed")
_KIND_STYLE = {  # colour + marker, distinct for each of the paper's four groups
    "bonafide original": ("tab:green", "o"),
    "bonafide reconstructed": ("tab:olive", "^"),
    "spoof original": ("tab:red", "s"),
    "spoof reconstructed": ("tab:purple", "D"),
}
_DET_TICKS = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95])


def _figure(width: float, height: float):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _probit(p: np.ndarray, n_min: int) -> np.ndarray:
    """Normal deviate of a rate, clipped half a count inside (0, 1) so 0 and 1 stay plottable."""
    eps = 0.5 / max(n_min, 1)
    return norm.ppf(np.clip(p, eps, 1 - eps))


def plot_det(scores, labels, path, groups: Sequence | None = None, title: str = "DET curve") -> str:
    """DET curve (false acceptance vs false rejection on normal-deviate axes), one line per group.

    With ``groups`` (one name per clip, e.g. the attack), each spoof group is drawn against all
    bona fide clips, next to the pooled curve. Legend entries carry the EER in %.
    """
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    curves = [("pooled", np.ones_like(y, dtype=bool))]
    if groups is not None:
        g = np.asarray(groups).astype(str).reshape(-1)
        curves += [(str(n), (y == BONAFIDE) | (g == n)) for n in sorted(set(g[y == SPOOF]))]
    fig, ax = _figure(5.5, 5.5)
    for name, keep in curves:
        far, frr, _ = det_curve_points(s[keep], y[keep])
        n_min = min(int((y[keep] == BONAFIDE).sum()), int((y[keep] == SPOOF).sum()))
        eer = compute_eer(s[keep], y[keep])[0]
        ax.plot(_probit(far, n_min), _probit(frr, n_min), lw=2 if name == "pooled" else 1,
                label=f"{name} (EER {100 * eer:.2f} %)")
    lim = norm.ppf([_DET_TICKS[0], _DET_TICKS[-1]])
    ax.plot(lim, lim, ls=":", c="grey", lw=0.8)  # the EER line
    ticks = norm.ppf(_DET_TICKS)
    labels_pct = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels_pct)
    ax.set_yticks(ticks, labels_pct)
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel("False acceptance rate: spoofs accepted (%)")
    ax.set_ylabel("False rejection rate: bona fide rejected (%)")
    ax.set_title(title)
    ax.grid(True, lw=0.4)
    ax.legend(fontsize="small", loc="upper right")
    return _save(fig, path)


def plot_score_histogram(scores, labels, path, bins: int = 50, title: str = "Score distribution", threshold: float | None = None) -> str:
    """Overlaid histograms of bona fide and spoof scores, with the EER threshold marked when both classes are there
    and ``threshold`` (the verdict's decision score) when given."""
    s = as_scores(scores)
    y = as_labels(labels, s.size)
    edges = np.histogram_bin_edges(s, bins=bins)
    fig, ax = _figure(6, 4)
    for label, colour, name in ((BONAFIDE, "tab:green", "bona fide"), (SPOOF, "tab:red", "spoof")):
        if (y == label).any():
            ax.hist(s[y == label], bins=edges, alpha=0.6, density=True, color=colour, label=name)
    if len(set(y.tolist())) == 2:
        eer, eer_threshold = compute_eer(s, y)
        ax.axvline(eer_threshold, c="k", ls="--", lw=1, label=f"EER threshold (EER {100 * eer:.2f} %)")
    if threshold is not None:
        ax.axvline(threshold, c="tab:blue", ls=":", lw=1.5, label="verdict threshold (p(bona fide) = 0.5)")
    ax.set_xlabel("score = logit[bonafide] - logit[spoof] (higher = more bona fide)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _project(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D projection of (n, d) embeddings by PCA or t-SNE (L2-normalised first, as RACL uses them)."""
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}; use 'pca' or 'tsne'")


def plot_embedding_map(embeddings, kinds: Sequence[str], path, method: str = "pca", seed: int = 0,
                       title: str | None = None) -> str:
    """Scatter of embeddings in 2-D, one colour/marker per kind.

    ``kinds`` names each row: ``"bonafide original"``, ``"bonafide reconstructed"``, ``"spoof
    original"`` or ``"spoof reconstructed"``. A detector trained with RACL should keep the
    bona fide originals in their own tight cluster, away from every reconstruction.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    k = np.asarray(kinds).astype(str).reshape(-1)
    if x.ndim != 2 or x.shape[0] != k.size:
        raise ValueError(f"embeddings must be (n, d) with one kind per row; got {x.shape} and {k.size} kinds")
    unknown = set(k) - set(EMBEDDING_KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; expected {list(EMBEDDING_KINDS)}")
    if x.shape[0] < 3:
        raise ValueError("an embedding map needs at least 3 points")
    xy = _project(x, method, seed)
    fig, ax = _figure(6, 5.5)
    for kind in EMBEDDING_KINDS:
        sel = k == kind
        if sel.any():
            colour, marker = _KIND_STYLE[kind]
            ax.scatter(xy[sel, 0], xy[sel, 1], s=14, c=colour, marker=marker, alpha=0.75,
                       label=f"{kind} ({int(sel.sum())})")
    ax.set_title(title or f"Embeddings ({method.upper() if method == 'pca' else 't-SNE'})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize="small", markerscale=1.5)
    return _save(fig, path)
