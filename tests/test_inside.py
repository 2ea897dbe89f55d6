"""The "Inside the encoder" views of one word in context and of single dimensions: the
core functions (fake encoders, constructed data) and the tab's handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from embedsuite.dimensions import (
    dimension_effects,
    labelled_set,
    parse_labelled_lines,
    plot_dimensions,
    probe_curve,
)
from embedsuite.encoders.base import Role, TokenEmbeddings
from embedsuite.explain import contextual_word, occurrence_labels, plot_contextual, short_label
from embedsuite.testing import FakeEncoder


class ContextEncoder(FakeEncoder):
    """A fake encoder whose tokens are pieces of at most three characters (sub-words) and
    whose token vectors carry their sentence's mean (context), like a real encoder's."""

    def tokenize(self, text: str) -> list[tuple[str, int, int]]:
        return [(text[i:min(i + 3, e)], i, min(i + 3, e))
                for tok, s, e in super().tokenize(text) for i in range(s, e, 3)]

    def encode_tokens(self, texts: str | Sequence[str], role: Role = "passage",
                      **kwargs: Any) -> TokenEmbeddings | list[TokenEmbeddings]:
        out = super().encode_tokens(texts, role, **kwargs)
        items = [out] if isinstance(out, TokenEmbeddings) else out
        for te in items:
            te.vectors[:] = te.vectors + 2.0 * te.vectors.mean(axis=0)
        return out


RIVER_MONEY = ["bank river water shore", "shore water river Bank",
               "bank money cash account", "account cash money BANK"]


def test_contextual_word_splits_the_senses_and_merges_sub_words() -> None:
    enc = ContextEncoder(dim=32)
    res = contextual_word(enc, "bank", RIVER_MONEY)
    assert [o.sentence for o in res.occurrences] == [0, 1, 2, 3]
    assert [o.text[o.start:o.end] for o in res.occurrences] == ["bank", "Bank", "bank", "BANK"]
    sim = res.similarity
    assert sim.shape == (4, 4) and np.allclose(np.diag(sim), 1.0, atol=1e-5)
    assert np.allclose(sim, sim.T, atol=1e-6)
    assert min(sim[0, 1], sim[2, 3]) > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3])
    # "bank" is two tokens here ("ban" + "k"): the occurrence is their mean
    te = enc.encode_tokens(RIVER_MONEY[0], role="query")
    assert isinstance(te, TokenEmbeddings) and te.tokens[:2] == ["ban", "k"]
    mean = te.vectors[:2].mean(axis=0)
    assert np.allclose(res.occurrences[0].vector, mean / np.linalg.norm(mean), atol=1e-5)


def test_contextual_nearest_words_skip_the_word_and_stop_words() -> None:
    res = contextual_word(ContextEncoder(dim=32), "bank",
                          ["The bank of the river.", "A bank account with the money."], top=3)
    assert len(res.nearest) == 2
    for near in res.nearest:
        words = [w.lower() for w, _, _ in near]
        assert words and "bank" not in words and not {"the", "of", "a", "with"} & set(words)
        scores = [sc for _, _, sc in near]
        assert scores == sorted(scores, reverse=True)
        assert len(set(words)) == len(words) <= 3
    assert {i for near in res.nearest for _, i, _ in near} <= {0, 1}


def test_contextual_word_refuses_a_sentence_without_the_word() -> None:
    enc = FakeEncoder(dim=16)
    with pytest.raises(ValueError, match=r"Sentence 2 \('The money is safe\.'\) does not "
                                         r"contain the word 'bank'.*add it"):
        contextual_word(enc, "bank", ["The bank is closed.", "The money is safe."])
    with pytest.raises(ValueError, match="does not contain"):  # whole words only
        contextual_word(enc, "bank", ["The bank is closed.", "Riverbanks flood."])
    with pytest.raises(ValueError, match="at least two sentences"):
        contextual_word(enc, "bank", ["The bank is closed."])
    with pytest.raises(ValueError, match="word is empty"):
        contextual_word(enc, "  ", ["a", "b"])


def test_contextual_word_counts_every_occurrence_and_labels_them() -> None:
    res = contextual_word(FakeEncoder(dim=16), "bank",
                          ["Bank after bank.", "A very long sentence about the bank of a river"])
    assert [o.sentence for o in res.occurrences] == [0, 0, 1]
    labels = occurrence_labels(res, width=20)
    assert labels[:2] == ["S1: Bank after bank.", "S1 #2: Bank after bank."]
    assert labels[2] == "S2: …the bank of a river"  # cut around the word, at word ends
    assert short_label("a  very long sentence", 10) == "a very lo…"
    # the fake encoder's tokens ignore context: every "bank" is the same vector
    assert np.allclose(res.similarity, 1.0, atol=1e-5)


def test_centring_removes_the_shared_direction() -> None:
    """Centred, the occurrences' cosines drop (the common direction was most of them) but
    keep the senses apart, and the vectors stay unit length."""
    enc = ContextEncoder(dim=32)
    raw = contextual_word(enc, "bank", RIVER_MONEY)
    cen = contextual_word(enc, "bank", RIVER_MONEY, centre=True)
    assert cen.centred and not raw.centred
    assert all(abs(float(np.linalg.norm(o.vector)) - 1.0) < 1e-5 for o in cen.occurrences)
    assert cen.similarity[0, 2] < raw.similarity[0, 2]
    assert min(cen.similarity[0, 1], cen.similarity[2, 3]) > cen.similarity[0, 2]
    assert "centred" in plot_contextual(cen).axes[-1].get_ylabel()


def test_plot_contextual_uses_one_fixed_scale() -> None:
    res = contextual_word(ContextEncoder(dim=32), "bank", RIVER_MONEY)
    fig = plot_contextual(res)
    ax = fig.axes[0]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert len(ax.texts) == 16 and len(ax.get_yticklabels()) == 4


def _separable(n: int = 20, dim: int = 12, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Labels a/b that differ on dimension 3 (strongly) and 7 (weakly) only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2 * n, dim))
    labels = ["a"] * n + ["b"] * n
    x[n:, 3] += 4.0
    x[n:, 7] -= 1.0
    return x, labels


def test_dimension_effects_rank_the_separating_dimensions_first() -> None:
    x, labels = _separable()
    eff = dimension_effects(x, labels)
    assert eff.kind == "cohen_d" and eff.classes == ["a", "b"]
    assert list(eff.order[:2]) == [3, 7]
    assert eff.scores[3] > 2.5 and eff.scores[7] < 0  # signed: b minus a
    a, b = x[:20, 3], x[20:, 3]
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert eff.scores[3] == pytest.approx((b.mean() - a.mean()) / pooled)


def test_dimension_effects_use_the_variance_ratio_for_three_labels() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 6))
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    x[10:20, 2] += 3.0
    x[20:, 2] += 6.0
    eff = dimension_effects(x, labels)
    assert eff.kind == "f_ratio" and eff.order[0] == 2 and (eff.scores >= 0).all()
    fig = plot_dimensions(eff, top=4)
    assert "variance" in fig.axes[0].get_ylabel() and len(fig.axes[0].patches) == 4


def test_dimension_effects_refuse_bad_input() -> None:
    x, labels = _separable()
    with pytest.raises(ValueError, match="at least two different labels"):
        dimension_effects(x, ["a"] * len(labels))
    with pytest.raises(ValueError, match="one vector per label"):
        dimension_effects(x[:5], labels)
    with pytest.raises(ValueError, match="at least 2 texts per label"):
        dimension_effects(x[:21], labels[:21])


def test_probe_curve_keeps_the_accuracy_on_the_separating_dimension() -> None:
    x, labels = _separable()
    curve = probe_curve(x, labels, ks=(1, 2, 4, 50))
    assert [p.k for p in curve] == [1, 2, 4, 12]  # k >= the dimension count: "all" only
    full = curve[-1]
    assert full.share == 1.0 and full.accuracy >= 0.75
    # dimension 3 alone separates the labels, without the noise of the other eleven
    assert curve[0].accuracy >= 0.9 and curve[0].share >= 1.0
    assert all(p.share == pytest.approx(p.accuracy / full.accuracy, abs=1e-3) for p in curve)
    assert probe_curve(x, labels, ks=(1, 2, 4, 50)) == curve  # seeded: reproducible


def test_probe_curve_is_at_chance_on_noise() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 10))
    curve = probe_curve(x, ["a", "b"] * 20, ks=(1,))
    assert all(p.accuracy <= 0.8 for p in curve)


def test_labelled_set_and_its_parser() -> None:
    labels, texts = labelled_set()
    assert len(texts) == len(labels) >= 40 and set(labels) == {"positive", "negative"}
    assert labels.count("positive") == labels.count("negative") and len(set(texts)) == len(texts)
    assert parse_labelled_lines("# note\n\n a | one \nb|two") == (["a", "b"], ["one", "two"])
    with pytest.raises(ValueError, match=r"line 2 .* is not 'label \| text'"):
        parse_labelled_lines("a | one\njust text")


# --- the tab's handlers -----------------------------------------------------------------

def test_contextual_handler_gives_the_map_and_a_row_per_occurrence() -> None:
    from embedsuite.app.tabs import inside

    word, sentences, senses = inside.CONTEXT_EXAMPLES[0]
    assert word == "bank" and len(sentences) == len(senses) and len(set(senses)) == 2
    fig, rows = inside.contextual(ContextEncoder(dim=32), word, "\n".join(sentences))
    assert len(rows) == len(sentences) and fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    for i, (label, near) in enumerate(rows):
        assert label.startswith(f"S{i + 1}: ") and near.count("(S") == 5
        assert "bank" not in near.lower()


def test_contextual_handler_errors_say_how_to_fix() -> None:
    from embedsuite.app.tabs import inside

    enc = FakeEncoder(dim=16)
    with pytest.raises(ValueError, match="No word given"):
        inside.contextual(enc, " ", "a bank\nthe bank")
    with pytest.raises(ValueError, match="several words"):
        inside.contextual(enc, "river bank", "a river bank\nthe river bank")
    with pytest.raises(ValueError, match="No sentences given"):
        inside.contextual(enc, "bank", "\n ")
    with pytest.raises(ValueError, match="Sentence 2 .* does not contain the word 'bank'"):
        inside.contextual(enc, "bank", "a bank\na river")
    many = "\n".join(f"bank number {i}" for i in range(inside.MAX_CONTEXT_SENTENCES + 1))
    with pytest.raises(ValueError, match=f"compares at most {inside.MAX_CONTEXT_SENTENCES}"):
        inside.contextual(enc, "bank", many)


def test_dimension_handler_on_the_built_in_and_on_own_texts() -> None:
    from embedsuite.app.tabs import inside

    enc = FakeEncoder(dim=16)
    head, fig, rows = inside.dimension_report(enc, "", top=5)
    assert head.startswith("**40 texts, labels negative, positive, 16 dimensions.**")
    assert len(fig.axes[0].patches) == 5
    assert [r[0] for r in rows] == ["1", "2", "4", "8", "all (16)"] and rows[-1][2] == 1.0
    own = "\n".join([f"good | nice day {i}" for i in range(4)]
                    + [f"bad | awful day {i}" for i in range(4)])
    head, _, rows = inside.dimension_report(enc, own, top=3)
    assert "8 texts, labels bad, good" in head and rows[-1][0] == "all (16)"
    with pytest.raises(ValueError, match="is not 'label | text'"):
        inside.dimension_report(enc, "good | fine\nno label here")
