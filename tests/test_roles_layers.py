"""Each head asks the encoder for the right role and the right hidden layers.

The fake encoder gives different vectors per role and per layer (as a real one does), and
this recording subclass logs every call, so a head that reads passages as queries, or
layers in another order than it trained on, fails here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from embedsuite.cache import EmbeddingCache
from embedsuite.testing import FakeEncoder


class RecordingEncoder(FakeEncoder):
    """A :class:`FakeEncoder` that logs ``("encode"|"tokens", role, layers, n_texts)``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.log: list[tuple[str, str, tuple[int, ...] | None, int]] = []

    def encode(self, texts: Any, role: Any = "query", **kw: Any) -> Any:  # type: ignore[override]
        n = 1 if isinstance(texts, str) else len(texts)
        self.log.append(("encode", role, None, n))
        return super().encode(texts, role=role, **kw)

    def encode_tokens(self, texts: Any, role: Any = "passage", *,  # type: ignore[override]
                      layers: Sequence[int] | None = None, **kw: Any) -> Any:
        n = 1 if isinstance(texts, str) else len(texts)
        self.log.append(("tokens", role, None if layers is None else tuple(layers), n))
        return super().encode_tokens(texts, role=role, layers=layers, **kw)


@pytest.fixture
def rec(tmp_path: Any) -> RecordingEncoder:
    return RecordingEncoder(dim=16, cache=EmbeddingCache(tmp_path / "c.sqlite"))


def test_the_fake_encoder_differs_by_role_and_by_layer(fake_encoder: FakeEncoder) -> None:
    q = fake_encoder.encode("the same words", role="query")
    p = fake_encoder.encode("the same words", role="passage")
    assert not np.allclose(q, p) and float(q @ p) > 0.8  # close, not equal
    two = fake_encoder.encode_tokens("a b", role="query", layers=[3, 7])
    swapped = fake_encoder.encode_tokens("a b", role="query", layers=[7, 3])
    d = fake_encoder.dim
    assert not np.allclose(two.vectors[:, :d], two.vectors[:, d:])  # type: ignore[union-attr]
    np.testing.assert_array_equal(two.vectors[:, :d], swapped.vectors[:, d:])  # type: ignore[union-attr]


def test_sentiment_attention_reads_query_tokens_of_its_layers(rec: RecordingEncoder,
                                                              tmp_path: Any) -> None:
    from embedsuite.heads.sentiment import SentimentClassifier

    texts = ["good film", "great fun", "bad film", "dull mess"] * 3
    labels = ["pos", "pos", "neg", "neg"] * 3
    head = SentimentClassifier(rec, kind="attention", layers=[8, 4], epochs=2,
                               feature_cache=tmp_path / "f").fit(texts, labels)
    assert {r for k, r, _, _ in rec.log} == {"query"}
    # features are stored with the default superset and then served in the order asked
    assert {lay for k, _, lay, _ in rec.log if k == "tokens"} <= {(6, 8, 10, 12, 4), (8, 4),
                                                                   (6, 8, 10, 12)}
    rec.log.clear()
    head.predict(["a new text never seen"])
    # one token pass, which gives the sentence vector too (no encode() call)
    assert [(k, r, lay) for k, r, lay, _ in rec.log] == [("tokens", "query", (8, 4))]


def test_qa_reads_contexts_as_passages_and_questions_as_queries(rec: RecordingEncoder) -> None:
    from embedsuite.heads.qa import ExtractiveQA

    ctx = "Anna lives in Lyon. Boris lives in Osaka. Chen lives in Quito."
    qa = ExtractiveQA(rec, layers=[5, 2], d_model=16).fit(
        ["Where does Anna live?", "Where does Boris live?"], [ctx, ctx],
        [("Lyon", ctx.index("Lyon")), ("Osaka", ctx.index("Osaka"))], epochs=1)
    rec.log.clear()
    qa.answer("Where does Chen live?", ctx)
    tokens = [(r, lay) for k, r, lay, _ in rec.log if k == "tokens"]
    assert ("passage", (5, 2)) in tokens and ("query", (5, 2)) in tokens
    assert all(lay == (5, 2) for _, lay in tokens if lay is not None)


def test_recommender_items_are_passages_and_wishes_queries(rec: RecordingEncoder) -> None:
    from embedsuite.heads.recommend import ContentRecommender

    items = [{"id": str(i), "title": t} for i, t in enumerate(
        ["space opera", "cooking show", "space documentary", "baking contest"])]
    head = ContentRecommender(rec).fit(items)
    assert {r for k, r, _, _ in rec.log if k == "encode"} == {"passage"}
    rec.log.clear()
    head.recommend_for_text("films about space", k=2)
    assert {r for k, r, _, _ in rec.log if k == "encode"} == {"query"}
