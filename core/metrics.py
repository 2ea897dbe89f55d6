"""Pure evaluation metrics (numpy and the standard library only).

- SQuAD v1.1 answer scoring, as the official ``evaluate-v1.1.py``:
  :func:`normalize_answer`, :func:`exact_match_score`, :func:`f1_score`,
  :func:`metric_max_over_ground_truths`, :func:`squad_scores`.
- Ranking with binary relevance: :func:`dcg`, :func:`ndcg_at_k`, :func:`recall_at_k`,
  :func:`hit_rate_at_k`, :func:`reciprocal_rank`.
- Bitext mining: :func:`mining_scores` (precision / recall / F1 of mined pairs).
- Paired comparison of per-user values: :func:`paired_bootstrap`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "dcg",
    "exact_match_score",
    "expected_calibration_error",
    "f1_score",
    "hit_rate_at_k",
    "metric_max_over_ground_truths",
    "mining_scores",
    "ndcg_at_k",
    "normalize_answer",
    "paired_bootstrap",
    "recall_at_k",
    "reciprocal_rank",
    "squad_scores",
]


# -- official SQuAD v1.1 scoring (evaluate-v1.1.py) ------------------------------------------
def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 of normalised answers."""
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    common = Counter(pred) & Counter(gold)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred)
    recall = num_same / len(gold)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    """1.0 when the normalised answers are equal."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric: Callable[[str, str], float], prediction: str,
                                  ground_truths: Sequence[str]) -> float:
    """The best score of ``prediction`` over the gold answers."""
    return max(metric(prediction, gt) for gt in ground_truths)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` as fractions in [0, 1], averaged over questions.

    Raises:
        ValueError: ``predictions`` and ``golds`` differ in length.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = [metric_max_over_ground_truths(exact_match_score, p, g)
          for p, g in zip(predictions, golds, strict=True)]
    f1 = [metric_max_over_ground_truths(f1_score, p, g)
          for p, g in zip(predictions, golds, strict=True)]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1))}


# -- ranking (binary relevance) ---------------------------------------------------------------
def dcg(gains: Sequence[float] | np.ndarray) -> float:
    """Discounted cumulative gain of gains in rank order: ``sum_i gains[i] / log2(i + 2)``."""
    g = np.asarray(gains, dtype=np.float64).reshape(-1)
    return float((g / np.log2(np.arange(2, len(g) + 2))).sum())


def _hits(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int) -> np.ndarray:
    """1.0 / 0.0 per position of the first ``k`` ranked items: relevant or not."""
    return np.array([int(t) in relevant for t in ranked[:k]], float).reshape(-1)


def ndcg_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10
              ) -> float:
    """NDCG@k of a ranked list of item ids with binary relevance.

    The ideal ranking puts ``min(len(relevant), k)`` relevant items first; 0.0 when
    ``relevant`` is empty.
    """
    ideal = dcg(np.ones(min(len(relevant), k)))
    if ideal == 0.0:
        return 0.0
    return dcg(_hits(ranked, relevant, k)) / ideal


def recall_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10
                ) -> float:
    """Share of the relevant items among the first ``k`` ranked (0.0 when none is relevant)."""
    if not relevant:
        return 0.0
    return float(_hits(ranked, relevant, k).sum() / len(relevant))


def hit_rate_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int = 10
                  ) -> float:
    """1.0 when any of the first ``k`` ranked items is relevant, else 0.0."""
    return float(_hits(ranked, relevant, k).any())


def reciprocal_rank(scores: np.ndarray, relevant: Collection[int]) -> float:
    """``1 / rank`` of the best-scored relevant item, ranking every item by ``scores``.

    The rank counts the items scored strictly above that item, plus the relevant
    items tied with it (so ties among relevant items count against the ranking;
    ties with irrelevant items do not). Items excluded from the ranking should be
    scored ``-inf``.

    Raises:
        ValueError: ``relevant`` is empty.
    """
    if not relevant:
        raise ValueError("reciprocal_rank needs at least one relevant item")
    s = np.asarray(scores)
    rel_idx = np.fromiter(relevant, np.int64)
    best = s[rel_idx].max()
    return 1.0 / (1 + int((s > best).sum()) + int((s[rel_idx] == best).sum()) - 1)


# -- bitext mining ----------------------------------------------------------------------------
def mining_scores(pairs: Sequence[tuple[int, int, float, float]], gold: Mapping[int, int],
                  threshold: float | None) -> dict[str, float]:
    """Precision / recall / F1 of mined ``(src, tgt, score, cos)`` pairs above ``threshold``.

    Precision = correct kept pairs / kept pairs, recall = correct kept pairs / gold
    pairs (``gold``: src -> tgt); ``mined`` is the number of kept pairs. ``threshold``
    ``None`` keeps every pair.
    """
    kept = [(s, t) for s, t, sc, _ in pairs if threshold is None or sc >= threshold]
    correct = sum(1 for s, t in kept if gold.get(s) == t)
    p = correct / len(kept) if kept else 0.0
    r = correct / len(gold) if gold else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f, "mined": float(len(kept))}


# -- calibration ------------------------------------------------------------------------------
def expected_calibration_error(proba: np.ndarray, y: Sequence[int] | np.ndarray,
                               n_bins: int = 15) -> float:
    """Expected calibration error of the top class (Guo et al. 2017): the gap between
    confidence and accuracy, averaged over ``n_bins`` equal-width confidence bins weighted
    by their share of the rows.

    Args:
        proba: ``(n, n_classes)`` probabilities.
        y: ``(n,)`` true class indices.
        n_bins: Confidence bins over ``[0, 1]``.

    Raises:
        ValueError: Shapes that do not match, or no rows.
    """
    p = np.asarray(proba, float)
    t = np.asarray(y)
    if p.ndim != 2 or len(p) != len(t) or not len(p):
        raise ValueError(f"expected (n, n_classes) probabilities and n labels with n >= 1, got "
                         f"probabilities of shape {p.shape} and {len(t)} labels")
    conf = p.max(1)
    correct = (p.argmax(1) == t).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        m = bins == b
        ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


# -- paired comparison ------------------------------------------------------------------------
def paired_bootstrap(a: Mapping[Any, float], b: Mapping[Any, float], n_boot: int = 10_000,
                     seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of ``a[u] - b[u]`` over the keys both hold, with a 95 % percentile interval.

    A key may be a user or a ``(user, draw)`` pair: pairs of one user are resampled
    together (their differences are averaged per user first).

    Returns:
        ``(mean difference, interval low, interval high, users)``.

    Raises:
        ValueError: No key in common.
    """
    keys = [k for k in a if k in b]
    if not keys:
        raise ValueError("paired_bootstrap needs per-user values for the same users in both; "
                         "got none in common")
    per: dict[Any, list[float]] = {}
    for k in keys:
        per.setdefault(k[0] if isinstance(k, tuple) else k, []).append(a[k] - b[k])
    diff = np.array([np.mean(v) for v in per.values()])
    weights = np.array([len(v) for v in per.values()], float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), (n_boot, len(diff)))
    boots = (diff[idx] * weights[idx]).sum(axis=1) / weights[idx].sum(axis=1)
    mean = float((diff * weights).sum() / weights.sum())
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return mean, float(lo), float(hi), len(diff)
