"""Translation retrieval and bitext mining on the shared encoder.

Given candidate sentences in any language, :class:`TranslationRetriever` finds
the translation of a query sentence; :meth:`TranslationRetriever.mine` aligns
two unaligned lists of sentences. No language has to be declared: the shared
multilingual encoder maps translations close together.

The package's parts:

* :mod:`~embedsuite.heads.translation.scoring`: exact blockwise neighbour search
  (:func:`knn_search`), side centering (:func:`center`) and the ratio margin
  (:func:`margin_scores`), pure numpy;
* :mod:`~embedsuite.heads.translation.mining`: :func:`mine_pairs` on vectors and the
  calibrated mining thresholds;
* :mod:`~embedsuite.heads.translation.head`: the head, :class:`TranslationRetriever`;
* :mod:`~embedsuite.heads.translation.saved`: its saved-folder layout (version 2:
  texts and vectors in ``.npy`` sidecars) and the version-1 migration.
"""

from __future__ import annotations

from embedsuite.heads.translation.head import TranslationRetriever
from embedsuite.heads.translation.mining import (
    DEFAULT_MINE_THRESHOLD,
    DEFAULT_MINE_THRESHOLD_RAW,
    mine_pairs,
)
from embedsuite.heads.translation.scoring import (
    DEFAULT_BLOCK_BYTES,
    MARGIN_FLOOR,
    MIN_CENTER,
    SCORINGS,
    Scoring,
    center,
    knn_mean,
    knn_search,
    margin_scores,
    maybe_center,
)

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "DEFAULT_MINE_THRESHOLD",
    "DEFAULT_MINE_THRESHOLD_RAW",
    "MARGIN_FLOOR",
    "MIN_CENTER",
    "SCORINGS",
    "Scoring",
    "TranslationRetriever",
    "center",
    "knn_mean",
    "knn_search",
    "margin_scores",
    "maybe_center",
    "mine_pairs",
]
