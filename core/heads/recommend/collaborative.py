"""The collaborative part of a hybrid: interactions -> EASE or item-kNN item-item weights.

``ease`` (Steck 2019) is a ridge regression of each rated item on the others over
binary interactions, kept dense over the rated items; ``knn`` is a sparse
top-``neighbors`` adjusted-cosine matrix (user-mean-centred ratings, shrunk by the
number of co-raters) over the whole catalogue. Items nobody rated get no
collaborative score, so they stay reachable through their content score.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["CF_MODELS", "CFModel", "Interactions", "cf_weights", "fit_cf_model",
           "read_interactions"]

CF_MODELS = ("ease", "knn")


@dataclass
class Interactions:
    """Interactions with catalogue items, as sparse user x item matrices."""

    ratings: Any  #: csr, summed ratings (all 1 without ratings)
    seen: Any  #: csr, 1 where a user interacted with an item
    centred: Any  #: csr, ratings minus the user's mean (as ``ratings`` without ratings)
    keep: np.ndarray  #: which of the given interactions are with catalogue items
    item_index: np.ndarray  #: catalogue index of every given interaction (-1: unknown)

    @property
    def counts(self) -> np.ndarray:
        """Interactions per catalogue item."""
        return np.asarray(self.seen.sum(axis=0)).ravel()


def read_interactions(user: Sequence[object], item: Sequence[object],
                      rating: Sequence[float] | None, timestamp: Sequence[float] | None,
                      index: Mapping[str, int], item_ids: Sequence[str]) -> Interactions:
    """Check the interaction columns and build the user x item matrices.

    Raises:
        ValueError: Columns of different lengths, none with a catalogue item, non-finite
            ratings or timestamps.
    """
    from scipy import sparse

    n = len(user)
    cols = {"item": item, "rating": rating, "timestamp": timestamp}
    for name, col in cols.items():
        if col is not None and len(col) != n:
            raise ValueError(f"user has {n} entries but {name} has {len(col)}; the "
                             f"interaction columns must be of equal length")
    if n == 0:
        raise ValueError("no interactions given; pass equal-length user, item, rating lists")
    iidx = np.fromiter((index.get(str(x).strip(), -1) for x in item), np.int64, n)
    keep = iidx >= 0
    if not keep.any():
        raise ValueError(f"none of the {n:,} interactions is with a catalogue item; check "
                         f"that item ids match the catalogue ids (e.g. {list(item_ids[:3])})")
    if (~keep).sum():
        logger.info("fit_interactions: ignored %d interactions with unknown items",
                    int((~keep).sum()))
    users = [str(u) for u, k in zip(user, keep, strict=True) if k]
    uniq, uidx = np.unique(np.asarray(users), return_inverse=True)
    vals = (np.ones(int(keep.sum()), np.float64) if rating is None
            else np.asarray(rating, dtype=np.float64)[keep])
    if not np.isfinite(vals).all():
        raise ValueError("rating holds non-finite values")
    if timestamp is not None and not np.isfinite(np.asarray(timestamp, np.float64)).all():
        raise ValueError("timestamp holds non-finite values")
    x = sparse.coo_matrix((vals, (uidx, iidx[keep])), shape=(len(uniq), len(item_ids))).tocsr()
    x.sum_duplicates()
    ones = x.copy()
    ones.data[:] = 1.0
    cnt_u = np.asarray(ones.sum(axis=1)).ravel()
    mean_u = np.asarray(x.sum(axis=1)).ravel() / np.maximum(cnt_u, 1)
    xc = x.copy()
    if rating is not None:
        xc.data = xc.data - np.repeat(mean_u, np.diff(xc.indptr))
        # a user whose ratings are all equal still says "seen"; keep a small signal
        xc.data[np.abs(xc.data) < 1e-9] = 1e-3
    return Interactions(x, ones, xc, keep, iidx)


@dataclass
class CFModel:
    """Fitted item-item weights: ``knn`` as CSR arrays over the catalogue, ``ease`` as a
    dense matrix over the rated items ``items``."""

    model: str
    n_items: int
    indptr: np.ndarray | None = None
    indices: np.ndarray | None = None
    data: np.ndarray | None = None
    dense: np.ndarray | None = None
    items: np.ndarray | None = None

    def matrix(self) -> Any:
        """The ``knn`` weights as a scipy CSR matrix."""
        from scipy import sparse

        return sparse.csr_matrix((self.data, self.indices, self.indptr),
                                 shape=(self.n_items, self.n_items))

    def positions(self) -> np.ndarray:
        """Catalogue index -> row of the dense EASE matrix (-1: nobody rated the item)."""
        pos = np.full(self.n_items, -1, np.int64)
        if self.items is not None:
            pos[self.items] = np.arange(len(self.items))
        return pos

    def block(self, hist_idx: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Dense weights from the history items (rows) to ``cols`` (default: all items)."""
        if self.dense is None:
            m = self.matrix()[hist_idx]
            return (m if cols is None else m[:, cols]).toarray()
        pos = self.positions()
        rows = pos[hist_idx]
        target = np.arange(self.n_items) if cols is None else np.asarray(cols, np.int64)
        tpos = pos[target]
        out = np.zeros((len(hist_idx), len(target)), np.float32)
        ri, ci = np.flatnonzero(rows >= 0), np.flatnonzero(tpos >= 0)
        out[np.ix_(ri, ci)] = self.dense[np.ix_(rows[ri], tpos[ci])]
        return out

    def scores(self, hist_idx: np.ndarray, cw: np.ndarray) -> np.ndarray:
        """Every item's collaborative score from history weights ``cw`` (float32)."""
        if self.dense is not None and self.items is not None:
            out = np.zeros(self.n_items, np.float32)
            rows = self.positions()[hist_idx]
            ok = rows >= 0
            out[self.items] = cw[ok] @ self.dense[rows[ok]]
            return out
        s = self.matrix()[hist_idx]
        return np.asarray(s.T @ cw, dtype=np.float32).ravel()


def cf_weights(w: np.ndarray, offset: float) -> np.ndarray:
    """History weights of the collaborative part: ``w + offset`` (an interaction is itself
    a sign of interest; only clearly disliked items count against)."""
    return (w + float(offset)).astype(np.float32)


def ease_matrix(x: Any, lam: float) -> np.ndarray:
    """EASE (Steck 2019) on binary interactions ``x`` (users x rated items).

    ``B = -P / diag(P)`` with ``P = (X'X + lambda I)^-1`` and a zero diagonal, kept
    dense: keeping only each row's largest weights lost NDCG on MovieLens
    validation (0.1475 dense, 0.1464 with 400 per row, 0.1401 with 100).
    """
    m = x.shape[1]
    g = np.asarray((x.T @ x).toarray(), np.float64)
    g[np.diag_indices(m)] += float(lam)
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices(m)] = 0.0
    return b.astype(np.float32)


def knn_matrix(xc: Any, ones: Any, rated: np.ndarray, n_items: int, neighbors: int,
               shrinkage: float) -> Any:
    """Top-``neighbors`` shrunk adjusted-cosine item-item matrix, as sparse CSR."""
    from scipy import sparse

    xr = xc[:, rated].tocsc()
    br = ones[:, rated].tocsc()
    norms = np.sqrt(np.asarray(xr.multiply(xr).sum(axis=0)).ravel())
    m = len(rated)
    k = min(int(neighbors), max(m - 1, 1))
    step = max(1, min(m, int(5e6 // max(m, 1))))  # ~40 MB per dense block
    rows, cols_, data = [], [], []
    xrt, brt = xr.T.tocsr(), br.T.tocsr()
    for a in range(0, m, step):
        b = min(m, a + step)
        dot = (xrt[a:b] @ xr).toarray()
        common = (brt[a:b] @ br).toarray()
        sim = dot / np.maximum(np.outer(norms[a:b], norms), 1e-12)
        sim *= common / (common + float(shrinkage)) if shrinkage else 1.0
        sim[np.arange(b - a), np.arange(a, b)] = 0.0
        if k < m:
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(m), (b - a, 1))
        sv = np.take_along_axis(sim, top, axis=1)
        ok = sv > 0
        r = np.repeat(np.arange(a, b), k if k < m else m).reshape(b - a, -1)
        rows.append(rated[r[ok]])
        cols_.append(rated[top[ok]])
        data.append(sv[ok].astype(np.float32))
    return sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows),
                                                     np.concatenate(cols_))),
                             shape=(n_items, n_items), dtype=np.float32)


def fit_cf_model(inter: Interactions, n_items: int, *, cf_model: str, ease_lambda: float,
                 ease_max_items: int, neighbors: int, shrinkage: float) -> CFModel:
    """The item-item model: EASE up to ``ease_max_items`` rated items, else item-kNN."""
    rated = np.flatnonzero(inter.counts > 0)
    use_ease = cf_model == "ease" and len(rated) <= int(ease_max_items)
    if cf_model == "ease" and not use_ease:
        logger.warning("fit_interactions: %d rated items > ease_max_items=%d; using the "
                       "item-kNN model instead of EASE (raise ease_max_items if memory "
                       "allows an %d x %d matrix)", len(rated), int(ease_max_items),
                       len(rated), len(rated))
    if use_ease:
        return CFModel("ease", n_items, dense=ease_matrix(inter.seen[:, rated], ease_lambda),
                       items=rated.astype(np.int64))
    s = knn_matrix(inter.centred, inter.seen, rated, n_items, neighbors, shrinkage)
    return CFModel("knn", n_items, indptr=s.indptr.astype(np.int64),
                   indices=s.indices.astype(np.int64), data=s.data.astype(np.float32))
