"""Hybrid priors: overall popularity and "trending" popularity in a recent window."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["event_log", "popularity_prior", "trend_prior"]


def popularity_prior(counts: np.ndarray) -> np.ndarray:
    """``log(1 + n_ratings)`` per item, scaled to [0, 1] (float32)."""
    return (np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
            ).astype(np.float32)


def event_log(timestamp: Sequence[float], keep: np.ndarray, item_index: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The kept ``(times, catalogue indices)`` of the interactions, sorted by time."""
    t = np.asarray(timestamp, np.float64)[keep]
    order = np.argsort(t, kind="stable")
    return t[order], item_index[keep][order].astype(np.int64)


def trend_prior(event_times: np.ndarray | None, event_items: np.ndarray | None,
                 n_items: int, window: float, reference_time: float | None = None
                 ) -> np.ndarray | None:
    """``log(1 + interactions in the window before reference_time)`` scaled to [0, 1]
    (``None`` without timestamped interactions; default end: the latest one)."""
    if event_times is None or event_items is None or not len(event_times):
        return None
    t_end = float(event_times[-1] if reference_time is None else reference_time)
    a = int(np.searchsorted(event_times, t_end - float(window)))
    b = int(np.searchsorted(event_times, t_end, side="right"))
    cnt = np.bincount(event_items[a:b], minlength=n_items)
    top = np.log1p(cnt.max()) if b > a else 1.0
    return (np.log1p(cnt) / max(float(top), 1e-12)).astype(np.float32)
