"""Validation of the recommender's constructor parameters (run at fit and use time)."""

from __future__ import annotations

import math
from typing import Any

from embedsuite.heads.recommend.collaborative import CF_MODELS

__all__ = ["check_params"]


def check_params(p: Any) -> None:
    """Raise a clear :class:`ValueError` for the first invalid parameter of ``p``.

    ``p`` is anything with the recommender's parameters as attributes (the head itself).
    """
    if not 0.0 <= float(p.mmr_lambda) <= 1.0:
        raise ValueError(f"mmr_lambda must be in [0, 1] (1 = pure relevance, 0 = pure "
                         f"diversity), got {p.mmr_lambda}")
    rc = p.rating_center
    if not (rc is None or rc == "mean" or (isinstance(rc, (int, float))
                                            and not isinstance(rc, bool))):
        raise ValueError(f"rating_center must be None, 'mean' or a number, got {rc!r}")
    if p.recency_half_life is not None and not float(p.recency_half_life) > 0:
        raise ValueError(f"recency_half_life must be > 0 or None, got {p.recency_half_life}")
    if not float(p.content_power) > 0:
        raise ValueError(f"content_power must be > 0, got {p.content_power}")
    if not 0.0 <= float(p.cf_weight) <= 1.0:
        raise ValueError(f"cf_weight must be in [0, 1], got {p.cf_weight}")
    if not float(p.popularity_weight) >= 0:
        raise ValueError(f"popularity_weight must be >= 0, got {p.popularity_weight}")
    if not float(p.trend_weight) >= 0:
        raise ValueError(f"trend_weight must be >= 0, got {p.trend_weight}")
    if not float(p.trend_window) > 0:
        raise ValueError(f"trend_window must be > 0, got {p.trend_window}")
    if int(p.neighbors) < 1:
        raise ValueError(f"neighbors must be >= 1, got {p.neighbors}")
    if not float(p.shrinkage) >= 0:
        raise ValueError(f"shrinkage must be >= 0, got {p.shrinkage}")
    if p.cf_model not in CF_MODELS:
        raise ValueError(f"cf_model must be one of {CF_MODELS}, got {p.cf_model!r}")
    if not float(p.ease_lambda) > 0:
        raise ValueError(f"ease_lambda must be > 0, got {p.ease_lambda}")
    if int(p.ease_max_items) < 1:
        raise ValueError(f"ease_max_items must be >= 1, got {p.ease_max_items}")
    if not math.isfinite(float(p.cf_offset)):
        raise ValueError(f"cf_offset must be a finite number, got {p.cf_offset}")
    if int(p.block_size) < 1:
        raise ValueError(f"block_size must be >= 1, got {p.block_size}")
