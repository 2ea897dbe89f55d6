"""Explanations: occlusion, token maps, closest words (fake encoder, constructed models)."""

from __future__ import annotations

import numpy as np
import pytest

from embedsuite.explain import (
    closest_words,
    occlusion,
    plot_token_map,
    token_similarity,
    word_spans,
)
from embedsuite.testing import FakeEncoder


def test_word_spans_split_cjk_per_character() -> None:
    text = "Great film! 東京 rocks"
    spans = word_spans(text)
    assert [text[s:e] for s, e in spans] == ["Great", "film", "!", "東", "京", "rocks"]


def test_occlusion_finds_the_word_that_drives_the_decision() -> None:
    def proba(texts: list[str]) -> np.ndarray:
        p = np.array([0.9 if "wonderful" in t else 0.4 for t in texts])
        return np.stack([1 - p, p], axis=1)

    out = occlusion(proba, ["negative", "positive"], "a wonderful little film")
    assert out["label"] == "positive" and out["score"] == pytest.approx(0.9)
    weights = {w["word"]: w["weight"] for w in out["words"]}
    assert max(weights, key=weights.__getitem__) == "wonderful"
    assert weights["wonderful"] == pytest.approx(0.5) and weights["film"] == pytest.approx(0.0)
    text = "a wonderful little film"
    assert all(text[w["start"]:w["end"]] == w["word"] for w in out["words"])
    with pytest.raises(ValueError, match="unknown class 'meh'"):
        occlusion(proba, ["negative", "positive"], "x", target="meh")
    with pytest.raises(ValueError, match="occlusion explains at most 3"):
        occlusion(proba, ["negative", "positive"], "one two three four", max_words=3)


def test_token_similarity_and_plot(fake_encoder: FakeEncoder) -> None:
    ta, tb, sim = token_similarity(fake_encoder, "red apple", "apple green")
    assert sim.shape == (2, 2)
    assert sim[1, 0] == pytest.approx(1.0, abs=1e-5)  # "apple" ~ "apple"
    assert plot_token_map(ta, tb, sim) is not None


def test_closest_words(fake_encoder: FakeEncoder) -> None:
    target = fake_encoder._vec("rocket", "passage")  # the role closest_words reads
    out = closest_words(fake_encoder, "a rocket to the moon, fast!", target, top=2)
    assert out[0]["word"] == "rocket" and out[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(out) == 2 and all(w["word"].isalnum() for w in out)
    with pytest.raises(ValueError, match="vector has 3 dims"):
        closest_words(fake_encoder, "x", np.ones(3))


def test_inside_tab_handlers(fake_encoder: FakeEncoder) -> None:
    from embedsuite.app.tabs.inside import neighbours, parse_labelled, reference_sentences, text_map

    refs = reference_sentences()
    assert len(refs) >= 30 and not any(r.startswith("#") for r in refs)
    rows = neighbours(fake_encoder, "red apple pie", "green grass\nred apple pie\nblue sky", k=2)
    assert rows[0][:2] == [1, "red apple pie"] and len(rows) == 2
    labels, texts = parse_labelled("a | one two\nb\tthree\nfour")
    assert labels == ["a", "b", "-"] and texts == ["one two", "three", "four"]
    assert text_map(fake_encoder, "a | x y\nb | y z\nc | z w") is not None
    from embedsuite.app.tabs.inside import map_points

    pts = map_points(fake_encoder, "a | x y\nb | y z\nc | z w")  # for gr.ScatterPlot
    assert list(pts.columns) == ["x", "y", "label", "text"] and list(pts["label"]) == list("abc")
    with pytest.raises(ValueError, match="a map needs at least 3"):
        text_map(fake_encoder, "a | x\nb | y")
    with pytest.raises(ValueError, match="has a label but no text"):
        parse_labelled("a |")


def test_recommend_tab_explains_picks_with_taste_words(fake_encoder: FakeEncoder) -> None:
    from embedsuite.app.tabs.recommend import fit_catalogue, recommend_from_picks

    items = [
        {"id": "a", "title": "Rocket", "description": "rocket rocket moon launch crew"},
        {"id": "b", "title": "Moon", "description": "a rocket to the moon and stars"},
        {"id": "c", "title": "Cake", "description": "sugar flour butter oven"},
        {"id": "d", "title": "Bread", "description": "flour water salt oven"},
    ]
    head = fit_catalogue(fake_encoder, items)
    rows, _picks = recommend_from_picks(head, ["a"], None, k=2)
    words = {r[1]: r[6] for r in rows}
    text_b = head.texts_[head.index_["b"]]
    assert words.get("b")
    assert all(w in text_b for w in words["b"].split(", "))  # words come from the item's text
    assert words["b"].split(", ")[0] in {"rocket", "moon"}  # shared with the liked item


@pytest.mark.integration
def test_sentiment_explanation_points_at_the_sentiment_word(e5) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.tabs.sentiment import explain_line
    from embedsuite.heads.sentiment import load_default

    head = load_default(e5)
    pieces = explain_line(head, "The weather was grey.\nThe acting was truly awful.", line=2)
    assert pieces[0][0].startswith("negative")
    assert "".join(p for p, _ in pieces[1:]) == "The acting was truly awful."
    weighted = {p: w for p, w in pieces[1:] if w is not None}
    assert max(weighted, key=weighted.__getitem__) == "awful"
    with pytest.raises(ValueError, match="Line 3 does not exist"):
        explain_line(head, "one\ntwo", line=3)


def test_translation_explain_best_match(fake_encoder: FakeEncoder) -> None:
    from embedsuite.app.tabs.translation import explain_best_match

    fig = explain_best_match(fake_encoder, "red apple", "blue sky\napple red\ngreen grass",
                             "cosine")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["apple", "red"]  # the best match's tokens on the x axis


@pytest.mark.integration
def test_qa_scores_peak_on_the_answer(e5) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.tabs.qa import plot_span_scores
    from embedsuite.heads.qa import ExtractiveQA

    head = ExtractiveQA.load_default(e5)
    ctx = ("The Eiffel Tower was completed in 1889 for the World's Fair in Paris. "
           "It is 330 metres tall.")
    q = "When was the Eiffel Tower completed?"
    windows = head.token_scores(q, ctx)
    assert len(windows) == 1
    w = windows[0]
    assert w["start"].shape == w["end"].shape == (len(w["offsets"]),)
    best = head.answer(q, ctx)
    s, e = w["offsets"][int(w["start"].argmax())][0], w["offsets"][int(w["end"].argmax())][1]
    assert (s, e) == (best["start"], best["end"]) or ctx[s:e] in best["answer"] \
        or best["answer"] in ctx[s:e]
    assert plot_span_scores(head, ctx, q) is not None


def test_stop_words_follow_the_text_language() -> None:
    from embedsuite.explain import stop_words

    en = stop_words(["The", "boy", "and", "his", "dog", "travel", "with", "the", "circus"])
    assert {"the", "and", "his", "with"} <= en and "circus" not in en and "world" not in en
    de = stop_words(["Der", "Junge", "und", "sein", "Hund", "reisen", "mit", "dem", "Zirkus"])
    assert {"der", "und", "mit", "dem"} <= de and "zirkus" not in de
    assert "的" in stop_words(list("这是一个关于男孩的电影"))


def test_closest_words_skip_stop_words(fake_encoder: FakeEncoder) -> None:
    text = "The story of its hero with the circus and the elephant"
    vec = fake_encoder.encode("the its with circus elephant", role="passage")
    words = [w["word"].lower() for w in closest_words(fake_encoder, text, vec, top=10)]
    assert words and not {"the", "its", "with", "and", "of"} & set(words)
    assert "circus" in words
