"""Translation retrieval with the real e5-small: the project's demo set and a Tatoeba sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedsuite.heads.translation import TranslationRetriever

pytestmark = pytest.mark.integration


def _demo() -> dict[str, list[str]]:
    from embedsuite.app.tabs.translation import demo_sets

    return demo_sets()["everyday"]["sentences"]


def test_demo_translations_are_found_in_every_language(e5: Any) -> None:
    sents = _demo()
    langs = [lang for lang in sents if lang != "eng"]
    tr = TranslationRetriever(e5).index(sents["eng"])
    right = total = 0
    for lang in langs:
        hits = tr.search(sents[lang], top_k=1)
        right += sum(h[0]["index"] == i for i, h in enumerate(hits))
        total += len(hits)
    # everyday sentences in 7 widely spoken languages: e5-small finds nearly all of them
    assert right / total >= 0.9, f"{right}/{total}"


def test_mixed_scripts_and_emoji_across_non_english_pairs(e5: Any) -> None:
    sents = _demo()
    tr = TranslationRetriever(e5).index(sents["cmn"])
    hits = tr.search(sents["ara"], top_k=3)
    assert sum(h[0]["index"] == i for i, h in enumerate(hits)) >= 0.8 * len(hits)
    # a candidate list mixing all languages: the best hit is a translation, not a same-language line
    everything = [s for lang, v in sents.items() if lang != "rus" for s in v]
    tr_all = TranslationRetriever(e5).index(everything)
    best = tr_all.search(sents["rus"][16], top_k=3)
    assert all("Google" in h["text"] for h in best)


def test_demo_mining_rejects_sentences_without_translation(e5: Any) -> None:
    from embedsuite.app.tabs.translation import demo_mining_inputs

    sents = _demo()
    src_text, tgt_text = demo_mining_inputs("everyday", "fra", "jpn", seed=3)
    src, tgt = src_text.splitlines(), tgt_text.splitlines()
    gold = {i: tgt.index(sents["jpn"][i]) for i in range(len(src))
            if sents["jpn"][i] in tgt}
    pairs = TranslationRetriever(e5).mine(src, tgt)  # automatic threshold
    correct = sum(gold.get(p["source_index"]) == p["target_index"] for p in pairs)
    assert correct / max(len(pairs), 1) >= 0.9
    assert correct / len(gold) >= 0.8


@pytest.mark.data
def test_tatoeba_sample_margin_and_mining(e5: Any, data_dir: Path, tmp_path: Path) -> None:
    from embedsuite.evaluation.harness import TaskContext, get_tasks

    task = get_tasks().get("translation")
    ctx = TaskContext(data_dir=data_dir, limit=120, options={"langs": ["deu", "jpn"]},
                      work_dir=tmp_path, show_progress=False)
    recs = task.run(e5, ctx)
    by = {(r["dataset"], r["metric"]): r["value"] for r in recs}
    # German is e5-small's easiest language (MTEB F1 97.35); margin must not lose to cosine
    assert by[("tatoeba/cosine/deu", "accuracy")] >= 0.9
    assert by[("tatoeba/margin", "accuracy_mean")] >= by[("tatoeba/cosine", "accuracy_mean")]
    assert by[("tatoeba/cosine/deu", "f1")] >= 0.85
    # mining with the default threshold: most mined pairs are right, most pairs are found
    assert by[("tatoeba-mining/margin-centered", "precision_mean")] >= 0.8
    assert by[("tatoeba-mining/margin-centered", "recall_mean")] >= 0.6
    assert np.isfinite(list(by.values())).all()
