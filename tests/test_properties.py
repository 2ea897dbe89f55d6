"""Property-based tests (hypothesis) on the text inputs of the encoder layer and every head.

For ANY str: either a result that keeps its contract (fixed keys, finite scores,
probabilities summing to 1, QA offsets inside the context with
``context[start:end] == answer``), or one of the two documented ``ValueError``s: an
empty / whitespace-only text, or a lone surrogate. Nothing else may escape.
Heads run on :class:`embedsuite.testing.FakeEncoder` (tiny, fitted once per module).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedsuite.cache import EmbeddingCache
from embedsuite.heads.qa import RESULT_KEYS as QA_KEYS
from embedsuite.heads.qa import ExtractiveQA
from embedsuite.heads.recommend import RESULT_KEYS as REC_KEYS
from embedsuite.heads.recommend import ContentRecommender
from embedsuite.heads.sentiment import SentimentClassifier
from embedsuite.heads.translation import TranslationRetriever
from embedsuite.testing import FakeEncoder

SURROGATE = re.compile("[\ud800-\udfff]")
FAST = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: any Unicode text, surrogates and control characters included
any_text = st.text(max_size=120)
#: text that mixes scripts, emoji, punctuation and whitespace but is never empty
words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1,
                max_size=80).filter(lambda t: bool(t.strip()))
CATALOGUE = [{"id": f"i{k}", "text": t} for k, t in enumerate(
    ["space opera with starships", "Italian pasta cooking", "history of the space race",
     "a romantic comedy in Paris", "jazz piano lessons", "mountain hiking guide"])]


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("props")
    enc = FakeEncoder(dim=32, cache=EmbeddingCache(tmp / "cache.sqlite"))
    from tests.test_qa import _toy

    qs, cs, ans = _toy(16)
    return {
        "enc": enc,
        "sentiment": SentimentClassifier(enc).fit(
            ["good film", "great film", "a lovely story", "bad film", "awful film", "dull"],
            ["pos", "pos", "pos", "neg", "neg", "neg"]),
        "translation": TranslationRetriever(enc).index(
            ["the cat sleeps", "a dog barks", "it rains today", "the museum is closed"]),
        "recommend": ContentRecommender(enc).fit(CATALOGUE),
        "qa": ExtractiveQA(enc, d_model=16).fit(qs, cs, ans, epochs=1, lr=3e-3),
    }


def result_or_documented_error(fn: Callable[[], Any], *texts: str) -> Any:
    """``fn()``'s result, or ``None`` after checking the documented error for bad texts."""
    if any(not t.strip() for t in texts):
        with pytest.raises(ValueError, match="is empty or whitespace only; expected some text"):
            fn()
        return None
    if any(SURROGATE.search(t) for t in texts):
        with pytest.raises(ValueError, match=r"invalid character U\+D[89A-F][0-9A-F]{2} \(a lone "
                                             r"surrogate\)"):
            fn()
        return None
    return fn()


# -- encoder layer ----------------------------------------------------------------------------
@FAST
@given(text=any_text)
def test_encode_gives_unit_vectors(heads: dict[str, Any], text: str) -> None:
    enc = heads["enc"]
    v = result_or_documented_error(lambda: enc.encode(text), text)
    if v is not None:
        assert v.shape == (enc.dim,) and np.all(np.isfinite(v))
        assert abs(float(np.linalg.norm(v)) - 1) < 1e-4


@FAST
@given(text=any_text)
def test_token_offsets_stay_inside_the_text(heads: dict[str, Any], text: str) -> None:
    te = result_or_documented_error(lambda: heads["enc"].encode_tokens(text), text)
    if te is not None:
        assert te.text == text and len(te.vectors) == len(te.offsets)
        assert np.all(np.isfinite(te.vectors))
        for (s, e), tok in zip(te.offsets, te.tokens, strict=True):
            assert 0 <= s < e <= len(text) and text[s:e] == tok


# -- sentiment ----------------------------------------------------------------------------------
@FAST
@given(text=any_text)
def test_sentiment_probabilities(heads: dict[str, Any], text: str) -> None:
    head = heads["sentiment"]
    p = result_or_documented_error(lambda: head.predict_proba(text), text)
    if p is None:
        return
    assert p.shape == (2,) and np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    assert abs(float(p.sum()) - 1) < 1e-5
    r = head.predict(text)
    assert set(r) == {"label", "score"} and r["label"] == head.classes_[int(p.argmax())]
    assert math.isclose(r["score"], float(p.max()), abs_tol=1e-5)


@FAST
@given(texts=st.lists(words, min_size=1, max_size=6))
def test_sentiment_batch_equals_one_by_one(heads: dict[str, Any], texts: list[str]) -> None:
    head = heads["sentiment"]
    if any(SURROGATE.search(t) for t in texts):
        return
    batch = head.predict(texts)
    assert len(batch) == len(texts)
    for t, r in zip(texts, batch, strict=True):
        one = head.predict(t)
        assert one["label"] == r["label"] and math.isclose(one["score"], r["score"],
                                                           abs_tol=1e-5)


# -- translation --------------------------------------------------------------------------------
@FAST
@given(text=any_text, top_k=st.integers(1, 6))
def test_translation_search_contract(heads: dict[str, Any], text: str, top_k: int) -> None:
    head = heads["translation"]
    hits = result_or_documented_error(lambda: head.search(text, top_k=top_k), text)
    if hits is None:
        return
    assert len(hits) == min(top_k, len(head.texts_))
    assert len({h["index"] for h in hits}) == len(hits)
    for h in hits:
        assert set(h) == {"text", "index", "score", "cosine", "margin"}
        assert h["text"] == head.texts_[h["index"]]
        assert math.isfinite(h["score"]) and -1.0001 <= h["cosine"] <= 1.0001
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


@FAST
@given(src=st.lists(words, min_size=1, max_size=5), tgt=st.lists(words, min_size=1, max_size=5))
def test_translation_mining_uses_each_sentence_once(heads: dict[str, Any], src: list[str],
                                                    tgt: list[str]) -> None:
    head = heads["translation"]
    pairs = result_or_documented_error(lambda: head.mine(src, tgt, threshold=None), *src, *tgt)
    if pairs is None:
        return
    assert len({p["source_index"] for p in pairs}) == len(pairs) <= min(len(src), len(tgt))
    assert len({p["target_index"] for p in pairs}) == len(pairs)
    for p in pairs:
        assert p["source"] == src[p["source_index"]] and p["target"] == tgt[p["target_index"]]
        assert math.isfinite(p["score"]) and math.isfinite(p["cosine"])


# -- recommend ----------------------------------------------------------------------------------
@FAST
@given(text=any_text, k=st.integers(1, 8))
def test_recommend_for_text_contract(heads: dict[str, Any], text: str, k: int) -> None:
    head = heads["recommend"]
    recs = result_or_documented_error(lambda: head.recommend_for_text(text, k=k), text)
    if recs is None:
        return
    ids = [r["item_id"] for r in recs]
    assert len(ids) == min(k, len(CATALOGUE)) and len(set(ids)) == len(ids)
    assert all(set(r) == set(REC_KEYS) and math.isfinite(r["score"]) for r in recs)
    assert set(ids) <= {it["id"] for it in CATALOGUE}


@FAST
@given(history=st.lists(st.tuples(st.sampled_from([it["id"] for it in CATALOGUE]),
                                  st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=4,
                        unique_by=lambda h: h[0]))
def test_recommend_from_history_leaves_history_out(heads: dict[str, Any],
                                                   history: list[tuple[str, float]]) -> None:
    head = heads["recommend"]
    recs = head.recommend(history, k=3)
    seen = {i for i, _ in history}
    for r in recs:
        assert set(r) == set(REC_KEYS) and r["item_id"] not in seen
        assert math.isfinite(r["score"]) and set(r["because"]) <= seen


# -- QA ---------------------------------------------------------------------------------------
@FAST
@given(question=any_text, context=any_text, top_k=st.integers(1, 3))
def test_qa_offsets_inside_the_context(heads: dict[str, Any], question: str, context: str,
                                       top_k: int) -> None:
    head = heads["qa"]
    out = result_or_documented_error(
        lambda: head.answer(question, context, top_k=top_k, max_windows=2), question, context)
    if out is None:
        return
    rows = [out] if top_k == 1 else out
    assert 1 <= len(rows) <= top_k
    for r in rows:
        assert set(r) == set(QA_KEYS)
        assert 0 <= r["start"] <= r["end"] <= len(context)
        assert context[r["start"]:r["end"]] == r["answer"]
        assert math.isfinite(r["score"]) and 0.0 <= r["score"] <= 1.0
        assert 0 <= r["window_start"] <= r["window_end"] <= len(context)


@FAST
@given(pairs=st.lists(st.tuples(words, words), min_size=1, max_size=4))
def test_qa_batch_keeps_each_context(heads: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    head = heads["qa"]
    qs, cs = [q for q, _ in pairs], [c for _, c in pairs]
    out = result_or_documented_error(lambda: head.answer(qs, cs), *qs, *cs)
    if out is None:
        return
    assert len(out) == len(pairs)
    for r, c in zip(out, cs, strict=True):
        assert c[r["start"]:r["end"]] == r["answer"] and 0.0 <= r["score"] <= 1.0
