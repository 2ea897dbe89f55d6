"""What single embedding dimensions mean: per-dimension effect sizes between labels, and
what a linear probe keeps of its accuracy on the top-k dimensions only.

- :func:`dimension_effects`: Cohen's d per dimension (two labels) or the between/within
  variance ratio (F statistic, more labels).
- :func:`probe_curve`: cross-validated accuracy of a logistic-regression probe on the
  top-k dimensions (ranked on each training fold, so the test fold never picks them)
  against the probe on all dimensions.
- :func:`labelled_set`: the labelled sentences the app ships for this view.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_KS", "DimensionEffects", "ProbePoint", "dimension_effects",
           "labelled_set", "parse_labelled_lines", "plot_dimensions", "probe_curve"]

#: The k values of :func:`probe_curve` (those below the dimension count, then all).
DEFAULT_KS = (1, 2, 4, 8, 16, 32)
#: The shipped labelled set (``core/assets``).
LABELLED_ASSET = "inside_sentiment.txt"


def parse_labelled_lines(text: str) -> tuple[list[str], list[str]]:
    """``label | text`` lines (``#`` comments and blank lines skipped) -> labels, texts.

    Raises:
        ValueError: A line without ``label |`` or without text.
    """
    labels, texts = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        lab, sep, body = line.partition("|")
        if not sep or not lab.strip() or not body.strip():
            raise ValueError(f"line {n} ({line[:60]!r}) is not 'label | text'; write the "
                             f"label, a '|' and the text, e.g. 'positive | A lovely day.'")
        labels.append(lab.strip())
        texts.append(body.strip())
    return labels, texts


def labelled_set() -> tuple[list[str], list[str]]:
    """The shipped labelled sentences (sentiment, 20 positive + 20 negative)."""
    return parse_labelled_lines(
        (resources.files("embedsuite") / "assets" / LABELLED_ASSET).read_text("utf-8"))


def _check(x: np.ndarray, labels: Sequence[str], min_per_class: int) -> tuple[np.ndarray,
                                                                               list[str]]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels):
        raise ValueError(f"{x.shape[0] if x.ndim else 0} vectors for {len(labels)} labels; "
                         f"give one vector per label")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"only one label ({classes[0] if classes else 'none'!s}) given; "
                         f"the texts need at least two different labels")
    counts = {c: sum(lb == c for lb in labels) for c in classes}
    few = {c: n for c, n in counts.items() if n < min_per_class}
    if few:
        raise ValueError(f"too few texts for label(s) {few}; give at least {min_per_class} "
                         f"texts per label")
    return x, classes


@dataclass(frozen=True)
class DimensionEffects:
    """Per-dimension separation of the labels.

    Attributes:
        classes: The labels, sorted.
        kind: ``"cohen_d"`` (two labels: ``classes[1]`` minus ``classes[0]``, pooled SD)
            or ``"f_ratio"`` (between- over within-label variance).
        scores: One score per dimension (signed for ``cohen_d``).
        order: Dimensions from the most separating to the least (by ``|score|``).
    """

    classes: list[str]
    kind: str
    scores: np.ndarray
    order: np.ndarray


def _scores(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[str, np.ndarray]:
    if n_classes == 2:
        a, b = x[y == 0], x[y == 1]
        pooled = np.sqrt(((len(a) - 1) * a.var(0, ddof=1) + (len(b) - 1) * b.var(0, ddof=1))
                         / max(len(a) + len(b) - 2, 1))
        return "cohen_d", (b.mean(0) - a.mean(0)) / np.maximum(pooled, 1e-12)
    mean = x.mean(0)
    between = np.zeros(x.shape[1])
    within = np.zeros(x.shape[1])
    for c in range(n_classes):
        xc = x[y == c]
        between += len(xc) * (xc.mean(0) - mean) ** 2
        within += ((xc - xc.mean(0)) ** 2).sum(0)
    df_b, df_w = n_classes - 1, max(len(x) - n_classes, 1)
    return "f_ratio", (between / df_b) / np.maximum(within / df_w, 1e-12)


def dimension_effects(x: np.ndarray, labels: Sequence[str]) -> DimensionEffects:
    """How well each dimension of ``x`` (one row per text) separates ``labels``.

    Raises:
        ValueError: Rows and labels differ in number, one label only, or a label with
            fewer than two texts.
    """
    x, classes = _check(x, labels, 2)
    y = np.array([classes.index(lb) for lb in labels])
    kind, scores = _scores(x, y, len(classes))
    order = np.argsort(-np.abs(scores), kind="stable")
    return DimensionEffects(classes, kind, scores, order)


@dataclass(frozen=True)
class ProbePoint:
    """Cross-validated accuracy of the probe on the top ``k`` dimensions (``k`` = the
    dimension count: all) and its share of the all-dimension probe's accuracy."""

    k: int
    accuracy: float
    share: float


def probe_curve(x: np.ndarray, labels: Sequence[str], ks: Sequence[int] = DEFAULT_KS, *,
                folds: int = 5, seed: int = 0) -> list[ProbePoint]:
    """Accuracy of a logistic-regression probe on the top-k dimensions, cross-validated.

    The dimensions are ranked (:func:`dimension_effects`) on each training fold only.
    The last point is the probe on all dimensions; ``share`` is each accuracy over it.

    Raises:
        ValueError: As :func:`dimension_effects`, or fewer texts per label than folds.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x, classes = _check(x, labels, 2)
    y = np.array([classes.index(lb) for lb in labels])
    n_folds = min(folds, int(np.bincount(y).min()))
    dim = x.shape[1]
    use = [*sorted({int(k) for k in ks if 0 < int(k) < dim}), dim]
    correct = dict.fromkeys(use, 0)
    splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y)
    for train, test in splits:
        order = np.argsort(-np.abs(_scores(x[train], y[train], len(classes))[1]),
                           kind="stable")
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        xs_train, xs_test = (x[train] - mu) / sd, (x[test] - mu) / sd
        for k in use:
            cols = order[:k]
            clf = LogisticRegression(max_iter=2000, C=1.0)
            clf.fit(xs_train[:, cols], y[train])
            correct[k] += int((clf.predict(xs_test[:, cols]) == y[test]).sum())
    acc = {k: correct[k] / len(y) for k in use}
    full = acc[dim]
    logger.debug("probe curve over %d texts, %d folds: %s", len(y), n_folds, acc)
    return [ProbePoint(k, round(a, 4), round(a / full, 4) if full > 0 else 0.0)
            for k, a in acc.items()]


def plot_dimensions(effects: DimensionEffects, top: int = 10, title: str = "") -> Any:
    """Bar chart of the ``top`` most separating dimensions (dimension numbers on x)."""
    from embedsuite.plotting import new_figure

    idx = effects.order[: max(1, int(top))]
    vals = effects.scores[idx]
    fig = new_figure(figsize=(max(5.0, 0.45 * len(idx) + 2.5), 3.6))
    ax = fig.subplots()
    colours = ["#2a9d8f" if v >= 0 else "#e76f51" for v in vals]
    ax.bar(range(len(idx)), vals, color=colours)
    ax.set_xticks(range(len(idx)), [str(int(i)) for i in idx], fontsize=8,
                  rotation=60 if len(idx) > 16 else 0)
    ax.set_xlabel("embedding dimension", fontsize=9)
    ax.axhline(0, color="grey", lw=0.8)
    if effects.kind == "cohen_d":
        ax.set_ylabel(f"Cohen's d ({effects.classes[1]} - {effects.classes[0]})", fontsize=9)
    else:
        ax.set_ylabel("between / within variance (F)", fontsize=9)
    ax.set_title(title or f"The {len(idx)} dimensions that separate "
                          f"{', '.join(effects.classes)} best", fontsize=9)
    fig.tight_layout()
    return fig
