"""Every built-in example and default input of every tab, through the tab's handler, on the
real encoder and the shipped heads: each gives the label, answer or top item the tab
promises (a showcase example that answers wrong misleads more than none)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from embedsuite.app.tabs import compare, encoder, inside, qa, recommend, sentiment, translation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def qa_head(e5: Any) -> Any:
    from embedsuite.heads.qa import ExtractiveQA

    return ExtractiveQA.load_default(e5)


@pytest.fixture(scope="module")
def recommender(e5: Any) -> Any:
    from embedsuite.data.catalogue import demo_catalogue

    return recommend.fit_catalogue(e5, demo_catalogue())


def test_sentiment_examples_get_their_labels(e5: Any) -> None:
    from embedsuite.heads.sentiment import load_default

    head = load_default(e5)
    assert len(sentiment.EXAMPLES) == len(sentiment.EXAMPLE_LABELS)
    rows, probs = sentiment.classify(head, "\n".join(sentiment.EXAMPLES))
    assert [r[1] for r in rows] == sentiment.EXAMPLE_LABELS
    assert all(r[2] >= 0.9 for r in rows), rows  # clear cases, confidently labelled
    assert set(probs) == set(head.classes_) and max(probs, key=probs.get) == rows[0][1]


@pytest.mark.parametrize("i", range(len(qa.EXAMPLES)), ids=[e[0] for e in qa.EXAMPLES])
def test_qa_examples_are_answered_right(qa_head: Any, i: int) -> None:
    _lang, doc, question = qa.EXAMPLES[i]
    segs, summary, rows = qa.answer_question(qa_head, doc, question, 3, qa.shipped_threshold())
    assert rows and rows[0][1] == qa.EXAMPLE_ANSWERS[i], rows
    assert summary.startswith("**Answer:**") and qa.EXAMPLE_ANSWERS[i] in summary
    assert [t for t, lab in segs if lab == "answer"] == [qa.EXAMPLE_ANSWERS[i]]


def test_qa_default_threshold_says_no_answer_to_an_unrelated_question(qa_head: Any) -> None:
    _, doc, _ = qa.EXAMPLES[0]
    _, summary, _ = qa.answer_question(qa_head, doc, "What is the capital of Peru?", 3,
                                       qa.shipped_threshold())
    assert summary.startswith("**No answer**")


def test_translation_defaults_find_the_translations(e5: Any) -> None:
    name = sorted(translation.demo_sets())[0]
    sents = translation.demo_sets()[name]["sentences"]
    query, cands = translation.demo_search_inputs(name, "deu", "eng", 0)
    rows = translation.search_candidates(e5, query, cands, 3, "margin")
    assert rows[0][2] == sents["eng"][0]
    table = translation.search_table(rows)
    assert [r[0] for r in table] == [query, "", ""]  # the query once per group
    assert len(table[0]) == len(translation.TABLE_HEADERS)
    src, tgt = translation.demo_mining_inputs(name, "fra", "jpn", 0)
    _fig, pairs = translation.mine_texts(e5, src, tgt, None, "margin")
    assert len(pairs) >= len(tgt.splitlines()) - 1
    for source, target, *_ in pairs:  # every mined pair is a real translation
        assert sents["fra"].index(source) == sents["jpn"].index(target), (source, target)


def test_translation_languages_are_named() -> None:
    name = sorted(translation.demo_sets())[0]
    choices = dict(translation.language_choices(name, with_all=True))
    assert choices["German"] == "deu" and choices["Japanese"] == "jpn"
    assert choices[translation.ALL] == translation.ALL


def test_recommend_defaults_give_their_top_items(recommender: Any) -> None:
    top = recommend.EXPECTED_TOP
    rows, _ = recommend.recommend_from_picks(recommender, recommend.DEFAULT_LIKED,
                                             recommend.DEFAULT_DISLIKED, 8)
    assert rows[0][1] == top["picks"]
    rows, _ = recommend.recommend_from_text(recommender, recommend.DEFAULT_WISH, 8)
    assert rows[0][1] == top["wish"]
    rows, _ = recommend.similar_to(recommender, recommend.DEFAULT_ITEM, 8)
    assert rows[0][1] == top["similar"]


def test_inside_default_query_finds_its_neighbour(e5: Any) -> None:
    rows = inside.neighbours(e5, inside.NEIGHBOUR_EXAMPLE, None, 3)
    assert rows[0][1] == inside.NEIGHBOUR_EXPECTED
    assert all("film" not in r[1] for r in rows)


def test_inside_map_example_groups_by_label(e5: Any) -> None:
    labels, texts = inside.parse_labelled(inside.MAP_EXAMPLE)
    x = e5.encode(texts, role="query")
    for i, lab in enumerate(labels):  # each text is closest to the centroid of its own topic
        cents = {lb: x[[j for j, b in enumerate(labels) if b == lb and j != i]].mean(0)
                 for lb in set(labels) if any(b == lb and j != i for j, b in enumerate(labels))}
        best = max(cents, key=lambda lb: float(cents[lb] @ x[i]))
        assert best == lab, (texts[i], best)


@pytest.mark.parametrize("i", range(len(inside.CONTEXT_EXAMPLES)),
                         ids=[e[0] for e in inside.CONTEXT_EXAMPLES])
def test_inside_context_examples_split_the_senses(e5: Any, i: int) -> None:
    """Each sense's occurrences of the word are closer to each other than to the other
    sense's ("bank" by the river vs "bank" for money)."""
    from embedsuite.explain import contextual_word

    word, sentences, senses = inside.CONTEXT_EXAMPLES[i]
    n = len(senses)
    for centre in (False, True):  # raw cosines and the tab's default, centred ones
        res = contextual_word(e5, word, sentences, centre=centre)
        assert [o.sentence for o in res.occurrences] == list(range(n))
        sim = res.similarity
        for a in range(n):
            same = [sim[a, b] for b in range(n) if b != a and senses[b] == senses[a]]
            other = [sim[a, b] for b in range(n) if senses[b] != senses[a]]
            assert min(same) > max(other), (centre, sentences[a], sim.round(3))
    fig, rows = inside.contextual(e5, word, "\n".join(sentences))
    assert len(rows) == n and fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    # each occurrence's nearest word comes from a sentence of the same sense
    res = contextual_word(e5, word, sentences, centre=True)
    for near, sense in zip(res.nearest, senses, strict=True):
        assert senses[near[0][1]] == sense, (sense, near)


def test_inside_dimensions_default_keeps_the_probe_accuracy(e5: Any) -> None:
    head, _fig, rows = inside.dimension_report(e5, None)
    assert head.startswith("**40 texts, labels negative, positive, 384 dimensions.**")
    assert rows[-1][0] == "all (384)" and rows[-1][1] >= 0.9  # sentiment is linear in e5
    assert rows[0][1] > 0.5  # the single best dimension already beats chance


def _nearest(text: str, e5: Any) -> list[int]:
    _lines, sim = encoder.similarity_matrix(e5, text, "query")
    np.fill_diagonal(sim, -np.inf)
    return [int(j) for j in sim.argmax(1)]


def test_encoder_example_pairs_translations(e5: Any) -> None:
    # weather x3 (en, de, ja), stock market x2 (en, fr)
    nearest = _nearest(encoder.EXAMPLE, e5)
    assert nearest[0] == 1 and nearest[1] == 0 and nearest[2] in (0, 1)
    assert nearest[3] == 4 and nearest[4] == 3


def test_compare_example_pairs_the_guitar_sentences(e5: Any) -> None:
    nearest = _nearest(compare.LIVE_EXAMPLE, e5)
    assert nearest[0] == 1 and nearest[1] == 0
    assert nearest[3] not in (0, 1)  # the stock market is like neither guitar sentence
