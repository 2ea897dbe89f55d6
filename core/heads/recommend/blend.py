"""The hybrid blend of content, collaborative and prior scores, and the ``because`` lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedsuite.heads.recommend.content import scale

__all__ = ["because", "blend_scores", "hybrid_contributions", "results"]


def blend_scores(content: np.ndarray, cf: np.ndarray, cf_weight: float,
          popularity: np.ndarray | None = None, popularity_weight: float = 0.0,
          trend: np.ndarray | None = None, trend_weight: float = 0.0) -> np.ndarray:
    """``(1 - a) content / max|content| + a cf / max|cf| + g popularity + h trend`` (float32)."""
    a = float(cf_weight)
    total = (1 - a) * content / scale(content) + a * cf / scale(cf)
    if popularity_weight and popularity is not None:
        total = total + float(popularity_weight) * popularity
    if trend_weight and trend is not None:
        total = total + float(trend_weight) * trend
    return total.astype(np.float32)


def hybrid_contributions(content: np.ndarray, content_all: np.ndarray, cf_rows: np.ndarray,
                         cf_w: np.ndarray, cf_all: np.ndarray, cf_weight: float) -> np.ndarray:
    """Per-(pick, history item) contributions blended like :func:`blend_scores`: ``content`` and
    ``cf_rows`` are ``(picks, history)``, ``cf_w`` the history's collaborative weights,
    ``*_all`` the full score vectors the parts are scaled by."""
    a = float(cf_weight)
    return ((1 - a) * content / scale(content_all)
            + a * cf_rows * cf_w[None, :] / scale(cf_all))


#: a history item is named in ``because`` when it gave at least this share of the largest
#: single contribution to the pick (the largest is always named)
BECAUSE_MIN_SHARE = 0.5


def because(contrib: np.ndarray, hist_idx: np.ndarray, item_ids: Sequence[str], top: int = 3,
            min_share: float = BECAUSE_MIN_SHARE) -> list[list[str]]:
    """For each pick (row of ``contrib``), the ids of the one to ``top`` history items that
    contributed most, largest first: the largest positive contribution, and the next ones
    only where they reach ``min_share`` of it (so a pick that one liked item explains
    names that item, not the whole history)."""
    out = []
    for row in contrib:
        order = np.argsort(-row, kind="stable")[:top]
        best = float(row[order[0]]) if len(order) else 0.0
        out.append([item_ids[int(hist_idx[j])] for j in order
                    if row[j] > 0 and row[j] >= min_share * best])
    return out


def results(item_ids: Sequence[str], scores: np.ndarray, picks: np.ndarray,
            reasons: Sequence[list[str]]) -> list[dict[str, Any]]:
    """``[{"item_id", "score", "because"}]`` for the picks, in order."""
    return [{"item_id": item_ids[int(j)], "score": float(scores[j]), "because": b}
            for j, b in zip(picks, reasons, strict=True)]
