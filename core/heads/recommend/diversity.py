"""Top-k selection with maximal marginal relevance (MMR) for diverse picks."""

from __future__ import annotations

import numpy as np

__all__ = ["check_k", "check_lambda", "select"]


def check_k(k: object) -> int:
    """``k`` as a positive int.

    Raises:
        ValueError: Not a positive int (bools are refused).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


def check_lambda(lam: object) -> float:
    """``lam`` as a float in [0, 1].

    Raises:
        ValueError: Outside [0, 1].
    """
    value = float(lam)  # type: ignore[arg-type]
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"mmr_lambda must be in [0, 1] (1 = pure relevance, 0 = pure "
                         f"diversity), got {value}")
    return value


def select(scores: np.ndarray, vectors: np.ndarray, k: int, exclude: np.ndarray | None,
           mmr_lambda: float) -> np.ndarray:
    """The indices of the ``k`` best items, best first, none of ``exclude``.

    With ``mmr_lambda < 1`` the pool of the ``max(50, 10 k)`` best is re-ranked greedily
    by ``lambda * relevance - (1 - lambda) * max similarity to the picks so far``
    (relevance min-max scaled over the pool, similarity of ``vectors`` clipped at 0).
    """
    s = scores.astype(np.float64).copy()
    if exclude is not None and len(exclude):
        s[exclude] = -np.inf
    avail = int(np.isfinite(s).sum())
    k = min(k, avail)
    if k <= 0:
        return np.zeros(0, np.int64)
    if mmr_lambda >= 1.0:
        top = np.argpartition(-s, k - 1)[:k]
        return top[np.argsort(-s[top], kind="stable")]
    c = min(avail, max(50, 10 * k))
    cand = np.argpartition(-s, c - 1)[:c]
    cand = cand[np.argsort(-s[cand], kind="stable")]
    rel = s[cand]
    lo, hi = rel.min(), rel.max()
    rel = (rel - lo) / (hi - lo) if hi > lo else np.ones_like(rel)
    vecs = vectors[cand]
    chosen = [0]
    max_sim = np.maximum(vecs @ vecs[0], 0.0).astype(np.float64)
    taken = np.zeros(c, bool)
    taken[0] = True
    while len(chosen) < k:
        val = mmr_lambda * rel - (1 - mmr_lambda) * max_sim
        val[taken] = -np.inf
        j = int(np.argmax(val))
        chosen.append(j)
        taken[j] = True
        max_sim = np.maximum(max_sim, vecs @ vecs[j])
    return cand[np.asarray(chosen)]
