"""The shipped QA head on the real e5-small: answers, the exact-span contract, XQuAD smoke."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embedsuite.heads.qa import DEFAULT_HEAD_DIR, RESULT_KEYS, ExtractiveQA

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def qa(e5: Any) -> ExtractiveQA:
    return ExtractiveQA.load_default(e5)


EN = ("The Millbrook lighthouse was built in 1872 on a rocky island two kilometres off the "
      "coast. Its lamp was first lit with whale oil and became electric in 1934. The last "
      "keeper, Margaret Olsen, left the island in 1968.")
DE = ("Die Stadtbibliothek von Hellbrunn wurde 1956 eröffnet. Im Jahr 2011 zog sie in einen "
      "Neubau am Marktplatz, den der Architekt Jonas Weber entworfen hat.")


def test_shipped_head_is_small_and_loads(qa: ExtractiveQA) -> None:
    size = sum(p.stat().st_size for p in Path(DEFAULT_HEAD_DIR).iterdir())
    assert size < 20_000_000
    assert qa.training_info_ and qa.training_info_.get("data", "").startswith("dev-v1.1")


def test_answers_simple_questions(qa: ExtractiveQA) -> None:
    res = qa.answer(["In which year was the lighthouse built?",
                     "Who was the last keeper?",
                     "When did the lamp become electric?"], EN)
    assert [tuple(r) for r in res] == [RESULT_KEYS] * 3
    got = [r["answer"] for r in res]
    hits = ["1872" in got[0], "Olsen" in got[1], "1934" in got[2]]
    assert sum(hits) >= 2, got
    assert all(EN[r["start"] : r["end"]] == r["answer"] for r in res)


def test_german_and_cross_lingual(qa: ExtractiveQA) -> None:
    de = qa.answer("Wer hat den Neubau entworfen?", DE)
    en_q = qa.answer("Who designed the new building?", DE)
    assert "Weber" in de["answer"] or "Weber" in en_q["answer"], (de, en_q)
    for r in (de, en_q):
        assert DE[r["start"] : r["end"]] == r["answer"] and len(r["answer"]) < 60


def test_exact_spans_on_accents_cjk_and_spaces(qa: ExtractiveQA) -> None:
    ctx = ("Le  château   de Montréal-sur-Loire fut achevé en 1654 par l'architecte "
           "Étienne Bérard.\u00a0 東京タワーは1958年に完成した。\tΗ γέφυρα άνοιξε το 2004.")
    questions = ["Qui a achevé le château ?", "東京タワーはいつ完成した？",
                 "Πότε άνοιξε η γέφυρα;", "When was the castle finished?"]
    for rs in qa.answer(questions, ctx, top_k=3):
        assert len(rs) == 3
        for r in rs:
            assert ctx[r["start"] : r["end"]] == r["answer"]
            assert r["answer"] == r["answer"].strip() and 0.0 <= r["score"] <= 1.0


def test_long_document_reads_the_right_window(qa: ExtractiveQA) -> None:
    filler = " ".join(
        f"Paragraph {i} describes the weather, the markets and the roads of the region."
        for i in range(70))
    doc = (filler + " The museum of Eldham was founded by the painter Rosa Lindqvist in 1911. "
           + filler)
    wins = qa._windows(doc)
    assert len(wins) >= 3
    r = qa.answer("Who founded the museum of Eldham?", doc, top_k=2)[0]
    assert doc[r["start"] : r["end"]] == r["answer"]
    assert "Lindqvist" in r["answer"], r
    assert r["window_start"] <= r["start"] and r["end"] <= r["window_end"]


def test_no_answer_threshold_gives_empty_answer(qa: ExtractiveQA) -> None:
    r = qa.answer("Who was the last keeper?", EN, no_answer_threshold=1.0)
    assert r["answer"] == "" and r["start"] == r["end"] == 0 and 0 <= r["score"] <= 1


@pytest.mark.data
def test_default_threshold_empties_real_unanswerable_pairs(qa: ExtractiveQA, data_dir: Path
                                                          ) -> None:
    """The shipped threshold (chosen by demos/qa_threshold.py) against real pairs of the
    held-out SQuADShifts new_wiki set: questions with their own paragraph must be
    answered, the same questions with a paragraph of another article must come back
    empty. A threshold of 0 (always answer) or 1 (never) fails this."""
    from embedsuite.data.squad import load_squad

    assert 0.0 < qa.no_answer_threshold < 1.0
    rows = load_squad(data_dir / "qa-train/squadshifts/new_wiki_v1.0.json")
    picked = rows[:: len(rows) // 12][:12]
    far = [next(o for o in rows[::-1] if o.title != r.title) for r in picked]
    qs = [r.question for r in picked]
    own = qa.answer(qs, [r.context for r in picked])
    other = qa.answer(qs, [o.context for o in far])
    assert sum(r["answer"] != "" for r in own) >= 10, [r["score"] for r in own]
    assert sum(r["answer"] == "" for r in other) >= 10, [r["score"] for r in other]


@pytest.mark.data
def test_xquad_task_smoke(e5: Any, data_dir: Path, tmp_path: Path) -> None:
    from embedsuite.evaluation.harness import TaskContext, get_tasks

    task = get_tasks().get("qa")
    ctx = TaskContext(data_dir=data_dir, limit=12,
                      options={"langs": ["en", "zh"], "qa.head": "shipped"}, work_dir=tmp_path)
    recs = task.run(e5, ctx)
    keys = {(r["encoder"], r["dataset"], r["metric"]) for r in recs}
    for lang in ("en", "zh"):
        for m in ("f1", "exact_match"):
            assert (e5.name, f"xquad.{lang}", m) in keys
            assert ("baseline:best-sentence", f"xquad.{lang}", m) in keys
    assert all(0.0 <= r["value"] <= 1.0 and r["n"] == 12 for r in recs)
    em = {(r["encoder"], r["dataset"]): r["value"] for r in recs if r["metric"] == "exact_match"}
    # whole sentences rarely equal a short gold answer; extracted spans often do
    assert em[(e5.name, "xquad.en")] > em[("baseline:best-sentence", "xquad.en")]


@pytest.mark.data
def test_xquad_task_trains_a_head_per_encoder_on_the_budget(e5: Any, data_dir: Path,
                                                            tmp_path: Path) -> None:
    """Without ``head`` the task trains its own span head (tiny budget here) and scores it."""
    from embedsuite.evaluation.harness import TaskContext, get_tasks

    task = get_tasks().get("qa")
    ctx = TaskContext(data_dir=data_dir, limit=8, work_dir=tmp_path, show_progress=False,
                      options={"qa.langs": ["en"], "qa.train_questions": 40, "qa.epochs": 1,
                               "qa.baseline": False})
    head = task.head_for(e5, ctx)
    info = head.training_info_
    # 40 questions of one article: no article is left to hold out, so it validates on them
    assert info["train_questions"] <= 40 and info["val_questions"] <= 40 and info["epochs"] == 1
    recs = task.run(e5, ctx)
    assert {(r["dataset"], r["metric"]) for r in recs} == {("xquad.en", "f1"),
                                                          ("xquad.en", "exact_match")}
    assert all(0.0 <= r["value"] <= 1.0 and r["n"] == 8 for r in recs)


def test_alternatives_are_distinct_answers(qa: ExtractiveQA) -> None:
    """top_k gives different answers, not one answer with a comma or space more."""
    res = qa.answer("Who was the last keeper?", EN, top_k=5, no_answer_threshold=0.0)
    keys = [r["answer"].strip(" ,.;:") for r in res]
    assert len(keys) == len(set(keys)), keys
