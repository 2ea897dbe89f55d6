"""Exact blockwise neighbour search, side centering and the ratio margin (pure numpy).

All neighbour searches are exact and run blockwise (float32 matrix products on
row and column chunks, :func:`numpy.argpartition` per chunk, a running top-k),
so memory stays bounded for candidate sets of up to ~1,000,000 sentences.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from embedsuite.encoders.base import progress

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "MARGIN_FLOOR",
    "MIN_CENTER",
    "SCORINGS",
    "Scoring",
    "as_matrix",
    "center",
    "check_scoring",
    "knn_mean",
    "knn_search",
    "margin_scores",
    "maybe_center",
]

Scoring = Literal["margin", "cosine"]
SCORINGS: tuple[str, ...] = ("margin", "cosine")

#: Fewest sentences a side needs to be centred by its own mean (see :func:`maybe_center`).
MIN_CENTER = 16

#: Smallest denominator of the ratio margin (see :func:`margin_scores`).
MARGIN_FLOOR = 0.05

#: Bytes one block of similarities may take (rows x columns x 4).
DEFAULT_BLOCK_BYTES = 64 * 1024 * 1024


def check_scoring(scoring: object) -> Scoring:
    """``scoring`` if it is one of :data:`SCORINGS`, else ValueError."""
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    return scoring  # type: ignore[return-value]


def as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a float32 ``(n, dim)`` array (no copy when it is one already)."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim), got shape {a.shape}")
    return a


def knn_search(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    *,
    exclude_self: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product neighbours of each query row among the key rows.

    The similarity matrix is never held whole: queries and keys are cut into
    chunks so that one block takes at most ``block_bytes``; each block keeps its
    top-k with :func:`numpy.argpartition` and is merged into a running top-k.

    Args:
        queries: ``(n, dim)`` float32 (L2-normalised rows give cosines).
        keys: ``(m, dim)`` float32.
        k: Neighbours per query; capped at ``m`` (``m - 1`` with ``exclude_self``).
        exclude_self: ``queries`` and ``keys`` are the same rows; skip ``i == j``.
        block_bytes: Memory bound of one similarity block.
        show_progress: A progress bar over query rows (``None``: automatic).

    Returns:
        ``(scores, indices)``, both ``(n, k')``, sorted by decreasing score.
    """
    q = as_matrix(queries, "queries")
    x = as_matrix(keys, "keys")
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]} but keys have dim {x.shape[1]}")
    n, m = q.shape[0], x.shape[0]
    kk = min(int(k), m - 1 if exclude_self else m)
    if kk < 1 or n == 0:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    budget = max(int(block_bytes) // 4, 1024)
    col = int(min(m, max(budget // 256, 4096)))
    row = int(max(1, min(n, budget // col)))
    out_s = np.empty((n, kk), np.float32)
    out_i = np.empty((n, kk), np.int64)
    with progress(n, "nearest neighbours", show_progress, threshold=20_000) as bar:
        for r0 in range(0, n, row):
            qb = q[r0 : r0 + row]
            best_s = np.full((qb.shape[0], kk), -np.inf, np.float32)
            best_i = np.zeros((qb.shape[0], kk), np.int64)
            for c0 in range(0, m, col):
                sims = qb @ x[c0 : c0 + col].T
                if exclude_self:
                    rr = np.arange(qb.shape[0])
                    cc = rr + r0 - c0
                    ok = (cc >= 0) & (cc < sims.shape[1])
                    sims[rr[ok], cc[ok]] = -np.inf
                kb = min(kk, sims.shape[1])
                if kb < sims.shape[1]:
                    part = np.argpartition(-sims, kb - 1, axis=1)[:, :kb]
                else:
                    part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
                ps = np.take_along_axis(sims, part, axis=1)
                cs = np.concatenate([best_s, ps], axis=1)
                ci = np.concatenate([best_i, part + c0], axis=1)
                top = np.argpartition(-cs, kk - 1, axis=1)[:, :kk]
                best_s = np.take_along_axis(cs, top, axis=1)
                best_i = np.take_along_axis(ci, top, axis=1)
            order = np.argsort(-best_s, axis=1, kind="stable")
            out_s[r0 : r0 + row] = np.take_along_axis(best_s, order, axis=1)
            out_i[r0 : r0 + row] = np.take_along_axis(best_i, order, axis=1)
            bar.update(qb.shape[0])
    return out_s, out_i


def knn_mean(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    *,
    exclude_self: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Mean cosine of each query to its ``k`` nearest keys (``r`` of the margin); ``(n,)``."""
    s, _ = knn_search(queries, keys, k, exclude_self=exclude_self, block_bytes=block_bytes,
                      show_progress=show_progress)
    if s.shape[1] == 0:
        return np.zeros(s.shape[0], np.float32)
    return s.mean(axis=1).astype(np.float32)


def center(vectors: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Subtract a side's mean vector and re-normalise the rows (language-mean removal).

    Each language puts its sentences in a shifted cone of the embedding space;
    removing the mean of a monolingual side takes most of that shift away, so
    that cosines across languages compare meaning more than language.

    Args:
        vectors: ``(n, dim)`` rows of one side.
        mean: The mean to remove (default: the rows' own mean).
    """
    v = as_matrix(vectors, "vectors")
    mu = v.mean(axis=0, dtype=np.float64).astype(np.float32) if mean is None else \
        np.asarray(mean, np.float32)
    out = v - mu  # the one copy; the rest is in place (memory for large indexes)
    for s in range(0, len(out), 65536):
        blk = out[s : s + 65536]
        blk /= np.maximum(np.linalg.norm(blk, axis=1, keepdims=True), 1e-12)
    return out


def maybe_center(vectors: np.ndarray, on: bool, mean: np.ndarray | None = None) -> np.ndarray:
    """:func:`center` when ``on`` and the side is large enough to have a mean, else as is.

    A side with fewer than :data:`MIN_CENTER` rows (and no ``mean`` given) is left
    uncentred: its own mean would be mostly its sentences' content.
    """
    if not on or (mean is None and len(vectors) < MIN_CENTER):
        return as_matrix(vectors, "vectors")
    return center(vectors, mean)


def margin_scores(cos: np.ndarray, r_x: np.ndarray, r_y: np.ndarray) -> np.ndarray:
    """Ratio margin ``cos / ((r_x + r_y) / 2)``, broadcasting ``r_x`` over rows of ``cos``.

    The denominator is floored at :data:`MARGIN_FLOOR` so that the ratio stays bounded
    for encoders whose neighbourhood cosines are near zero or negative (e5's are ~0.7-0.9).

    Args:
        cos: ``(n, c)`` cosines of query ``i`` to candidate ``j`` (or matching shapes).
        r_x: ``(n,)`` neighbourhood means of the queries.
        r_y: ``(n, c)`` or ``(c,)`` neighbourhood means of the candidates.
    """
    cos = np.asarray(cos, np.float32)
    rx = np.asarray(r_x, np.float32).reshape(-1, *([1] * (cos.ndim - 1)))
    denom = (rx + np.asarray(r_y, np.float32)) / 2.0
    return (cos / np.maximum(denom, MARGIN_FLOOR)).astype(np.float32)
