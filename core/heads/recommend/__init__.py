"""Content recommendation on the shared encoder, with an optional collaborative (hybrid) part.

>>> rec = ContentRecommender().fit([{"id": "b1", "title": "Dune", "description": "..."}, ...])
>>> rec.similar("b1", k=5)
>>> rec.recommend([("b1", 5.0), ("f7", 1.0)], k=10)          # liked b1, disliked f7
>>> rec.recommend_for_text("a funny space adventure for kids", k=5)
>>> rec.fit_interactions(users, items, ratings, timestamps)   # hybrid: add item-item CF

Items are embedded once with the ``passage`` role (cached by the encoder); wishes
are embedded with the ``query`` role. Item-to-item similarity uses the item
vectors centred on the catalogue mean and re-normalised (this spreads e5's
narrow cosine band). A history is turned into signed weights (ratings centred,
optionally decayed by age); every candidate's score is the weighted sum of a
sharpened similarity to each history item, so disliked items push away and the
history items with the largest contributions are returned as ``because``.

With interaction data, a sparse top-``neighbors`` item-item matrix (adjusted
cosine on user-mean-centred ratings, shrunk by the number of co-raters) is
blended with the content scores and a popularity prior; items nobody rated keep
their content score, so they stay reachable. Everything is computed block-wise:
no ``n x n`` dense matrix is ever built, so catalogues of 100,000 items work.

Modules, each pointing only down: :mod:`.catalogue` (item parsing, ids),
:mod:`.history` (user histories -> weights), :mod:`.content` (content scoring),
:mod:`.collaborative` (EASE, item-kNN), :mod:`.priors` (popularity, trend),
:mod:`.blend` (the hybrid blend, ``because``), :mod:`.diversity` (MMR), :mod:`.params`
(parameter checks), :mod:`.persistence` (the saved layout and its migration) and
:mod:`.head` (the estimator).
"""

from __future__ import annotations

from embedsuite.heads.recommend.collaborative import CF_MODELS
from embedsuite.heads.recommend.head import KIND, RESULT_KEYS, ContentRecommender
from embedsuite.heads.recommend.history import parse_history

__all__ = ["CF_MODELS", "KIND", "RESULT_KEYS", "ContentRecommender", "parse_history"]
