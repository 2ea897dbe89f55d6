"""The app's shared heads: loaded once per app, used by the tabs and the REST routes alike."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from embedsuite.app.ui import AppContext
from embedsuite.encoders.batching import MicroBatcher

if TYPE_CHECKING:
    from embedsuite.heads.qa import ExtractiveQA
    from embedsuite.heads.recommend import ContentRecommender
    from embedsuite.heads.sentiment import SentimentClassifier

__all__ = ["demo_recommender", "qa_head", "sentiment_batcher", "sentiment_head",
           "sentiment_proba", "sentiment_rows"]


def sentiment_head(ctx: AppContext) -> SentimentClassifier:
    """The shipped sentiment head on the app's shared encoder."""
    from embedsuite.heads.sentiment import load_default

    return ctx.resource("sentiment:default", lambda: load_default(ctx.encoder))


def qa_head(ctx: AppContext) -> ExtractiveQA:
    """The shipped QA head on the app's shared encoder."""
    from embedsuite.heads.qa import ExtractiveQA

    return ctx.resource("qa-head", lambda: ExtractiveQA.load_default(ctx.encoder))


def demo_recommender(ctx: AppContext) -> ContentRecommender:
    """A content recommender over the project's 110-item demo catalogue."""
    from embedsuite.data.catalogue import demo_catalogue
    from embedsuite.heads.recommend import ContentRecommender

    return ctx.resource(
        "recommend:demo",
        lambda: ContentRecommender(ctx.encoder, rating_center=None).fit(demo_catalogue()))


def sentiment_batcher(ctx: AppContext) -> MicroBatcher | None:
    """The micro-batcher in front of the shipped sentiment head (``None`` when batching is
    off): concurrent calls share one ``predict_proba``, i.e. one encoder pass and one head
    pass for all of them."""
    if ctx.batch_window_ms is None:
        return None
    head = sentiment_head(ctx)

    def run(_key: Hashable, batch: list[str], _pairs: list[str] | None) -> list[Any]:
        return list(np.atleast_2d(head.predict_proba(batch)))

    return ctx.resource(
        "sentiment:batcher", lambda: MicroBatcher(run, window_ms=ctx.batch_window_ms or 0.0,
                                                  max_batch=ctx.batch_max))


def sentiment_proba(ctx: AppContext, texts: list[str]) -> np.ndarray:
    """``(n, n_classes)`` probabilities of the shipped sentiment head (batched when on)."""
    batcher = sentiment_batcher(ctx)
    if batcher is None or not texts or len(texts) >= batcher.max_batch:
        return np.atleast_2d(sentiment_head(ctx).predict_proba(texts))
    return np.stack(batcher.submit("proba", list(texts)))


def sentiment_rows(ctx: AppContext, proba: np.ndarray) -> list[dict[str, Any]]:
    """``{"label", "score"}`` per row, as :meth:`SentimentClassifier.predict` gives."""
    return sentiment_head(ctx).label_scores(proba)
