"""Unit tests of the extractive QA head, its training pieces, scoring and tab handlers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from embedsuite.data.squad import load_squad
from embedsuite.errors import EncoderMismatchError, NotFittedError
from embedsuite.evaluation.tasks.qa import best_sentence_answers, split_sentences
from embedsuite.heads.qa import (
    RESULT_KEYS,
    ExtractiveQA,
    best_spans,
    char_span_to_tokens,
    match_features,
)
from embedsuite.metrics import exact_match_score, f1_score, normalize_answer, squad_scores
from embedsuite.testing import FakeEncoder

NAMES = ["Anna", "Boris", "Chen", "Dalia", "Emil", "Fatima", "Goran", "Hana"]
CITIES = ["Lyon", "Kraków", "Osaka", "Quito", "Tartu", "Accra", "Perth", "Bergen"]


def _toy(n: int = 48) -> tuple[list[str], list[str], list[tuple[str, int]]]:
    """Tiny synthetic 'who lives in X' data: the answer is the word before 'lives'."""
    rng = np.random.default_rng(0)
    qs, cs, ans = [], [], []
    for i in range(n):
        a, b = rng.choice(len(NAMES), 2, replace=False)
        ca, cb = rng.choice(len(CITIES), 2, replace=False)
        ctx = (f"{NAMES[a]} lives in {CITIES[ca]}. {NAMES[b]} lives in {CITIES[cb]}. "
               f"The weather is mild.")
        if i % 2:
            q, who = f"Who lives in {CITIES[cb]}?", NAMES[b]
        else:
            q, who = f"Who lives in {CITIES[ca]}?", NAMES[a]
        qs.append(q)
        cs.append(ctx)
        ans.append((who, ctx.index(who)))
    return qs, cs, ans


@pytest.fixture
def fitted(fake_encoder: FakeEncoder) -> ExtractiveQA:
    qs, cs, ans = _toy()
    return ExtractiveQA(fake_encoder, d_model=32).fit(qs, cs, ans, epochs=2, lr=3e-3)


# -- scoring (official SQuAD v1.1) ------------------------------------------------------------
def test_normalize_answer_follows_squad() -> None:
    assert normalize_answer("The  Cat, an animal!") == "cat animal"
    assert normalize_answer("A theory") == "theory"
    assert exact_match_score("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert f1_score("Eiffel Tower in Paris", "the Eiffel Tower") == pytest.approx(2 * 0.5 / 1.5)
    assert f1_score("nothing", "else") == 0.0
    sc = squad_scores(["Paris", "blue sky"], [["paris", "Paris, France"], ["sky"]])
    assert sc["exact_match"] == 0.5 and sc["f1"] == pytest.approx((1 + 2 / 3) / 2)


def test_split_sentences_spans_are_exact() -> None:
    text = "  First one. Second one!  第三句。第四句？ Last"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "第三句。", "第四句？",
                                             "Last"]


def test_best_sentence_baseline(fake_encoder: FakeEncoder) -> None:
    ctx = "The cat sleeps on the sofa. Paris is the capital of France. It rains."
    out = best_sentence_answers(fake_encoder, ["What is the capital of France?"], [ctx])
    assert out == ["Paris is the capital of France."]


# -- pieces ---------------------------------------------------------------------------------
def test_match_features_flags() -> None:
    ctx = "Goethe wrote Faust in Weimar. 東京は首都です。"
    offs = np.array([(0, 6), (7, 12), (13, 18), (19, 21), (22, 28), (28, 29), (30, 32),
                     (32, 33), (33, 35), (35, 37)])
    f = match_features("Who wrote FAUST? 東京", ctx, offs)
    assert f.shape == (10, 9) and f.dtype == np.float32
    assert ((f >= 0) & (f <= 1)).all()
    assert f[3, 3] == pytest.approx(f[:8, 0].sum() / 9)  # density of word matches within 4
    assert f[1, 0] == 1 and f[2, 0] == 1 and f[2, 2] == 1  # wrote, Faust (case-folded)
    assert f[0, :3].sum() == 0 and f[4, :3].sum() == 0  # Goethe, Weimar
    assert f[6, 1] == 1  # 東京 (CJK piece)
    assert f[8, 1] == 0


def test_char_span_to_tokens() -> None:
    offs = np.array([(0, 5), (6, 11), (12, 14), (15, 20)])
    assert char_span_to_tokens(offs, 6, 14) == (1, 2)
    assert char_span_to_tokens(offs, 7, 9) == (1, 1)
    assert char_span_to_tokens(offs, 30, 35) is None
    assert char_span_to_tokens(offs, 3, 3) is None


def test_best_spans_respects_max_len_and_order() -> None:
    st = np.array([0.0, 5.0, 0.0, 1.0])
    en = np.array([0.0, 0.0, 0.0, 6.0])
    assert best_spans(st, en, 3, 1)[0][:2] == (1, 3)
    assert best_spans(st, en, 2, 1)[0][:2] == (3, 3)
    top = best_spans(st, en, 4, 3)
    assert [s for _, _, s in top] == sorted([s for _, _, s in top], reverse=True)
    assert all(i <= j < i + 4 for i, j, _ in top)


def test_load_squad(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{"data": [{"title": "T", "paragraphs": [{"context": "Ab cd", "qas": '
                 '[{"id": "1", "question": "Q?", "answers": [{"text": "cd", "answer_start": 3}]}'
                 ']}]}]}')
    (ex,) = load_squad(p)
    assert ex.context[3:5] == "cd" and ex.answers == [("cd", 3)] and ex.title == "T"
    p.write_text("[]")
    with pytest.raises(ValueError, match="is not SQuAD v1.1 JSON"):
        load_squad(p)


# -- the head contract ----------------------------------------------------------------------
def test_not_fitted(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(NotFittedError):
        ExtractiveQA(fake_encoder).answer("Who?", "Nobody.")


def test_answer_contract(fitted: ExtractiveQA) -> None:
    ctx = "Chen lives in Osaka.  Anna lives in Lyon. The weather is mild."
    r = fitted.answer("Who lives in Lyon?", ctx)
    assert tuple(r) == RESULT_KEYS
    assert ctx[r["start"] : r["end"]] == r["answer"] and r["answer"]
    assert 0.0 <= r["score"] <= 1.0 and r["window"] == 0
    many = fitted.answer(["Who lives in Lyon?", "Who lives in Osaka?"], ctx, top_k=3)
    assert len(many) == 2 and all(len(m) == 3 for m in many)
    for m in many:
        assert [x["score"] for x in m] == sorted((x["score"] for x in m), reverse=True)
        assert len({(x["start"], x["end"]) for x in m}) == 3
        assert all(ctx[x["start"] : x["end"]] == x["answer"] for x in m)
    pairs = fitted.answer(["Who lives in Lyon?", "Who?"], [ctx, "Émile  lives in Tartu."])
    assert "Émile  lives in Tartu."[pairs[1]["start"] : pairs[1]["end"]] == pairs[1]["answer"]


def test_toy_task_is_learnt(fake_encoder: FakeEncoder) -> None:
    qs, cs, ans = _toy(96)
    head = ExtractiveQA(fake_encoder, d_model=32).fit(qs, cs, ans, epochs=6, lr=3e-3)
    preds = head.answer(qs[:40], cs[:40])
    # the answers are names (not cities, filler or long spans) far above chance
    assert np.mean([p["answer"] in NAMES for p in preds]) >= 0.5


def test_no_answer_threshold(fitted: ExtractiveQA) -> None:
    ctx = "Chen lives in Osaka. Anna lives in Lyon."
    r = fitted.answer("Who lives in Lyon?", ctx, no_answer_threshold=1.01)
    assert r["answer"] == "" and r["start"] == r["end"] == 0 and 0 <= r["score"] <= 1
    top = fitted.answer("Who lives in Lyon?", ctx, top_k=2, no_answer_threshold=1.01)
    assert top[0]["answer"] == "" and top[1]["answer"]


def test_long_document_windows(fitted: ExtractiveQA) -> None:
    filler = " ".join(f"Sentence {i} talks about nothing in particular." for i in range(60))
    doc = filler + " Hana lives in Perth. " + filler
    wins = fitted._windows(doc)
    assert len(wins) > 2
    assert all(doc[w.start : w.end] == w.text for w in wins)
    assert all(a.start < b.start < a.end for a, b in itertools.pairwise(wins))
    r = fitted.answer("Who lives in Perth?", doc, max_windows=2)
    assert doc[r["start"] : r["end"]] == r["answer"]
    assert r["window_start"] <= r["start"] <= r["end"] <= r["window_end"]


def test_input_errors(fitted: ExtractiveQA) -> None:
    with pytest.raises(ValueError, match="question is empty"):
        fitted.answer("  ", "text")
    with pytest.raises(ValueError, match="context has 1 texts but question has 2"):
        fitted.answer(["a?", "b?"], ["text"])
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        fitted.answer("a?", "text", top_k=0)
    with pytest.raises(TypeError, match="question must be a str"):
        fitted.answer(3, "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not at character"):
        ExtractiveQA(fitted.encoder).fit(["q?"], ["abc def"], [("xyz", 0)])


def test_save_load_round_trip(tmp_path: Path, fitted: ExtractiveQA) -> None:
    ctx = "Boris lives in Quito. Dalia lives in Accra."
    before = fitted.answer("Who lives in Accra?", ctx, top_k=2)
    folder = fitted.save(tmp_path / "qa")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = ExtractiveQA.load(folder, fitted.encoder)
    after = loaded.answer("Who lives in Accra?", ctx, top_k=2)
    assert [a["answer"] for a in after] == [b["answer"] for b in before]
    assert after[0]["score"] == pytest.approx(before[0]["score"], abs=1e-5)
    from embedsuite.heads import load_head

    assert isinstance(load_head(folder, fitted.encoder), ExtractiveQA)
    with pytest.raises(EncoderMismatchError):
        ExtractiveQA.load(folder, FakeEncoder(dim=32, name="other"))


# -- tab handlers ---------------------------------------------------------------------------
def test_tab_handlers(tmp_path: Path, fitted: ExtractiveQA) -> None:
    from embedsuite.app.tabs.qa import EXAMPLES, answer_question, highlight, read_upload

    doc = "Chen lives in Osaka.\nAnna lives in Lyon. Ünïcode  text 東京."
    segs, summary, rows = answer_question(fitted, doc, "Who lives in Lyon?", top_k=3)
    assert "".join(t for t, _ in segs) == doc
    assert [lab for _, lab in segs].count("answer") == 1
    assert "score" in summary and rows and rows[0][0] == 1
    assert "".join(t for t, _ in highlight(doc, [])) == doc
    _, summary, _ = answer_question(fitted, doc, "Who lives in Lyon?", threshold=1.0)
    assert summary.startswith("**No answer**")
    with pytest.raises(ValueError, match="question is empty"):
        answer_question(fitted, doc, "")
    f = tmp_path / "a.txt"
    f.write_text("Some text é 東京", encoding="utf-8")
    assert read_upload(str(f)) == "Some text é 東京"
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_upload(str(f))
    assert len({lang for lang, _, _ in EXAMPLES}) >= 5
    for _, d, q in EXAMPLES:
        assert d.strip() and q.strip()


def test_cli_registers_commands() -> None:
    from embedsuite.app.cli import build_parser

    args = build_parser().parse_args(["train-qa", "--data", "x.json", "--out", "h"])
    assert args.epochs >= 1 and args.work_dir is None
    args = build_parser().parse_args(["answer", "Who?", "doc.txt", "--top-k", "2"])
    assert args.top_k == 2


def test_trimmed_span_ignores_spaces_and_punctuation_at_the_ends() -> None:
    from embedsuite.heads.qa.head import _trimmed

    text = "The keeper, Margaret Olsen, left."
    s = text.index("Margaret")
    assert _trimmed(text, s - 2, s + 14) == (s, s + 14)  # ", Margaret Olsen"
    assert _trimmed(text, s, s + 15) == (s, s + 14)      # "Margaret Olsen,"
    assert _trimmed(text, 10, 11) == (10, 11)            # only punctuation: kept as is
