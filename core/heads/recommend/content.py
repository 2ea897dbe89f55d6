"""Content scoring: item-item similarity of the centred item vectors, block-wise.

Item-to-item similarity uses the item vectors centred on the catalogue mean and
re-normalised (this spreads e5's narrow cosine band). A candidate's content score is
the weighted sum of its sharpened similarity ``max(cos, 0) ** power`` to each history
item. Nothing ``n x n`` is ever built: items are scored ``block_size`` rows at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["ann_scores", "block_dot", "centred_vectors", "content_contributions",
           "content_scores", "scale"]


def centred_vectors(emb: np.ndarray, block_size: int = 16384
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(catalogue mean, item vectors centred on it and re-normalised)``, float32.

    Normalised in place, ``block_size`` rows at a time, so only one ``n x dim`` array is
    allocated (bit-identical to dividing the centred rows by their norms at once).
    """
    mean = emb.mean(axis=0).astype(np.float32)
    out = np.subtract(emb, mean, dtype=np.float32)
    for a in range(0, len(out), block_size):
        blk = out[a:a + block_size]
        blk /= np.maximum(np.linalg.norm(blk, axis=-1, keepdims=True), 1e-12)
    return mean, out


def content_scores(vectors: np.ndarray, hist_idx: np.ndarray, w: np.ndarray, power: float,
                   block_size: int) -> np.ndarray:
    """Every item's ``sum_j w_j * max(cos(item, hist_j), 0) ** power`` (float32)."""
    h = vectors[hist_idx]
    n = vectors.shape[0]
    out = np.empty(n, np.float32)
    for a in range(0, n, block_size):
        s = vectors[a:a + block_size] @ h.T
        np.maximum(s, 0.0, out=s)
        if power != 1.0:
            np.power(s, power, out=s)
        out[a:a + block_size] = s @ w
    return out


def content_contributions(vectors: np.ndarray, picks: np.ndarray, hist_idx: np.ndarray,
                          w: np.ndarray, power: float) -> np.ndarray:
    """Each history item's content contribution to each pick: ``(picks, history)``."""
    s = vectors[picks] @ vectors[hist_idx].T
    return np.power(np.maximum(s, 0.0), power) * w[None, :]


def block_dot(mat: np.ndarray, vec: np.ndarray, block_size: int) -> np.ndarray:
    """``mat @ vec`` computed ``block_size`` rows at a time (float32)."""
    out = np.empty(mat.shape[0], np.float32)
    for a in range(0, mat.shape[0], block_size):
        out[a:a + block_size] = mat[a:a + block_size] @ vec
    return out


def scale(x: np.ndarray) -> float:
    """The largest absolute value of ``x`` (1.0 for an all-zero or empty array)."""
    m = float(np.abs(x).max()) if x.size else 0.0
    return m if m > 1e-12 else 1.0


def ann_scores(cache: dict[str, Any], attr: str, mat: np.ndarray, vec: np.ndarray, k: int,
               options: Mapping[str, Any]) -> np.ndarray:
    """Scores of a vector index's candidates for ``vec`` (``-inf`` for every other item),
    enough of them for MMR selection (its pool is ``max(50, 10 k)``).

    The index over ``mat`` is built once and kept in ``cache[attr]`` while ``mat`` is the
    same array object.
    """
    from embedsuite.index import VectorIndex

    hit = cache.get(attr)
    if hit is None or hit[0] is not mat:
        logger.info("building a vector index over %d items", len(mat))
        hit = (mat, VectorIndex(**dict(options)).build(mat))
        cache[attr] = hit
    s, i = hit[1].search(np.asarray(vec, np.float32), min(len(mat), max(50, 10 * k) + k))
    scores = np.full(len(mat), -np.inf, np.float32)
    ok = i >= 0
    scores[i[ok]] = s[ok]
    return scores
