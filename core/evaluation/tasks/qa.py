"""Task ``qa``: extractive QA on XQuAD (en, de, zh, ar, ru) with SQuAD v1.1 scoring.

The shipped span head (trained on English SQuAD only, see ``docs/qa.md``) answers
each question of ``xquad/xquad.<lang>.json``; answers are scored like the official
``evaluate-v1.1.py`` (:func:`embedsuite.metrics.squad_scores`): both sides normalised
(lower-case, punctuation removed, the articles a/an/the removed, white space collapsed),
exact match and token F1, each the max over the gold answers, averaged over questions.
The same run scores a baseline that answers with the context sentence most similar to
the question (shared encoder: question as ``query``, sentences as ``passage``); its
records carry the encoder name ``baseline:best-sentence``.

The span head is TRAINED FOR EACH ENCODER inside the run on a fixed budget, so the
encoders x tasks table compares encoders, not training runs: the first
``train_questions`` (default 3,000) questions of ``squad/dev-v1.1-without-xquad.json``
(10 % of their articles held out for epoch selection and calibration), ``epochs``
(default 2), ``d_model=128``, one transformer layer, ``lr=2.5e-3``, seed ``ctx.seed``.
Token features are cached under the embedsuite cache (``qa-work/features``), keyed
by the encoder's fingerprint, so a new run only trains; its checkpoints live in the
run's work folder, so an interrupted run resumes and a new run trains anew. The shipped
head (full budget, e5-small only) is scored instead with ``--option qa.head=shipped``
(or a saved head folder).

Options (``ctx.options``, each also as ``qa.<name>``): ``langs`` (default all five),
``head`` (``shipped`` or a saved head folder; default: train on the budget),
``train_questions``, ``epochs``, ``baseline`` (default True), ``bf16`` (encode under
CPU bfloat16 autocast like the training features, default True).

Note: the official normalisation is English-oriented (it splits on white space),
so Chinese answers are compared as one token each; figures for ``zh`` follow the
official script as is, like the XQuAD paper's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.encoders.base import Encoder
from embedsuite.evaluation.harness import TASKS, TaskContext, make_record
from embedsuite.metrics import squad_scores

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINE_NAME",
    "QATask",
    "best_sentence_answers",
    "split_sentences",
]

LANGS = ("en", "de", "zh", "ar", "ru")
BASELINE_NAME = "baseline:best-sentence"
#: The per-encoder training budget of the evaluation run (see the module docstring).
TRAIN_BUDGET: dict[str, Any] = {"train_questions": 3000, "epochs": 2, "d_model": 128,
                                "n_layers": 1, "lr": 2.5e-3}
TRAIN_FILE = ("squad", "dev-v1.1-without-xquad.json")


# -- the best-sentence baseline --------------------------------------------------------------
_SENT_END = re.compile(r"(?<=[.!?。！？؟])[\"'”’»)\]]*\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (stripped, non-empty)."""
    spans = []
    pos = 0
    for m in _SENT_END.finditer(text):
        spans.append((pos, m.end()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for s0, e0 in spans:
        s, e = s0, e0
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out or [(0, len(text))]


def best_sentence_answers(encoder: Encoder, questions: Sequence[str],
                          contexts: Sequence[str]) -> list[str]:
    """Answer each question with its context's sentence closest to it (cosine)."""
    sents = {c: split_sentences(c) for c in dict.fromkeys(contexts)}
    all_sents = list(dict.fromkeys(c[s:e] for c, sp in sents.items() for s, e in sp))
    sv = encoder.encode(all_sents, role="passage")
    idx = {t: i for i, t in enumerate(all_sents)}
    qv = encoder.encode(list(questions), role="query")
    out = []
    for q_vec, c in zip(qv, contexts, strict=True):
        cand = [c[s:e] for s, e in sents[c]]
        sims = sv[[idx[t] for t in cand]] @ q_vec
        out.append(cand[int(np.argmax(sims))])
    return out


# -- the task --------------------------------------------------------------------------------
def _read_xquad(path: Path, limit: int | None) -> tuple[list[str], list[str], list[list[str]]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    qs, cs, golds = [], [], []
    for art in data:
        for par in art["paragraphs"]:
            for qa in par["qas"]:
                qs.append(qa["question"])
                cs.append(par["context"])
                golds.append([a["text"] for a in qa["answers"]])
    if limit is not None:
        qs, cs, golds = qs[:limit], cs[:limit], golds[:limit]
    return qs, cs, golds


class QATask:
    """XQuAD extractive QA with the shipped span head, plus the best-sentence baseline."""

    name = "qa"
    description = ("Extractive QA on XQuAD en/de/zh/ar/ru (SQuAD v1.1 EM/F1), head trained on "
                   "English SQuAD only; baseline: best-matching sentence")
    needs_token_embeddings = True
    main_metric = ("xquad.en", "f1")
    language_metric = ("xquad.", "f1")

    def head_for(self, encoder: Encoder, ctx: TaskContext) -> Any:
        """The shipped / given head (option ``head``), or one trained on the budget."""
        from embedsuite.heads.qa import DEFAULT_HEAD_DIR, ExtractiveQA, train_qa
        from embedsuite.paths import cache_dir

        given = ctx.option(self.name, "head")
        if given:
            return ExtractiveQA.load(DEFAULT_HEAD_DIR if given == "shipped" else given, encoder)
        budget = {k: ctx.option(self.name, k, v) for k, v in TRAIN_BUDGET.items()}
        logger.info("qa: training the span head for %s on %s", encoder.name, budget)
        return train_qa(
            ctx.require(*TRAIN_FILE),
            # checkpoints per run (a new run trains anew, an interrupted one resumes);
            # token features depend only on the encoder and the texts: shared
            (ctx.work_dir or cache_dir() / "qa-work") / "qa-train",
            feature_dir=cache_dir() / "qa-work" / "features", encoder=encoder,
            epochs=int(budget["epochs"]), lr=float(budget["lr"]), d_model=int(budget["d_model"]),
            n_layers=int(budget["n_layers"]), limit=int(budget["train_questions"]),
            seed=ctx.seed, show_progress=ctx.show_progress)

    def run(self, encoder: Encoder, ctx: TaskContext) -> list[dict[str, Any]]:
        """Score the head (and the baseline) on each language."""
        from embedsuite.encoders.base import progress

        langs = ctx.option_list(self.name, "langs", LANGS) or list(LANGS)
        unknown = [lg for lg in langs if lg not in LANGS]
        if unknown:
            raise ValueError(f"unknown XQuAD language(s) {unknown}; expected some of {LANGS}")
        head = self.head_for(encoder, ctx)
        head.bf16 = bool(ctx.option(self.name, "bf16", True))
        records = []
        for lang in langs:
            qs, cs, golds = _read_xquad(ctx.require("xquad", f"xquad.{lang}.json"), ctx.limit)
            encoder.prepare(cs)
            preds: list[str] = [""] * len(qs)
            by_ctx: dict[str, list[int]] = {}
            for i, c in enumerate(cs):
                by_ctx.setdefault(c, []).append(i)
            with progress(len(qs), f"qa xquad.{lang}", ctx.show_progress, threshold=0) as bar:
                for c, idx in by_ctx.items():  # one encoding per paragraph
                    # SQuAD v1.1 scoring: every question has an answer, so the head always
                    # answers (its no-answer threshold is for users' unanswerable questions)
                    res = head.answer([qs[i] for i in idx], c, no_answer_threshold=0.0)
                    for i, r in zip(idx, res, strict=True):
                        preds[i] = r["answer"]
                    bar.update(len(idx))
            sc = squad_scores(preds, golds)
            logger.info("qa xquad.%s: EM %.3f F1 %.3f (n=%d)", lang, sc["exact_match"],
                        sc["f1"], len(qs))
            for metric in ("f1", "exact_match"):
                records.append(make_record(encoder.name, self.name, f"xquad.{lang}", metric,
                                           sc[metric], len(qs)))
            if ctx.option(self.name, "baseline", True):
                base = squad_scores(best_sentence_answers(encoder, qs, cs), golds)
                for metric in ("f1", "exact_match"):
                    records.append(make_record(BASELINE_NAME, self.name, f"xquad.{lang}",
                                               metric, base[metric], len(qs)))
        return records


TASKS.register("qa", QATask())
