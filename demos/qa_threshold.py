"""Choose the QA head's default no-answer threshold on held-out data, and record it.

The QA head returns an empty answer when its best span's calibrated score is under
``no_answer_threshold``. This script measures where that line should be on SQuAD-format
data the head was not trained on:

- **answerable** pairs: ``--n`` questions with their own paragraph;
- **unanswerable** pairs: the same questions with a paragraph that does not hold the
  answer: every other one from the same article (on topic, the hard case), the rest
  from another article (an unrelated text). Both are what a user meets when the document
  does not answer the question.

Rule: the threshold that classifies the most pairs right (answer given exactly for the
answerable ones; the two kinds are equally many), the smallest such value on a tie.
It prints that threshold, the share of each kind it gets right, and the F1 the
answerable questions keep; ``--write HEAD_DIR`` stores it in the head's ``config.json``
(the shipped head: ``core/assets/qa-default``).

    python demos/qa_threshold.py                      # the shipped head, SQuADShifts new_wiki
    python demos/qa_threshold.py --write core/assets/qa-default

The default data, SQuADShifts new_wiki (English Wikipedia articles newer than SQuAD's),
is held out from the shipped head's training (SQuAD v1.1 dev without XQuAD's articles).
A head trained on it must be measured on other held-out data (``--data``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.atomic import atomic_write_text
from embedsuite.data.squad import load_squad
from embedsuite.heads.qa import ExtractiveQA
from embedsuite.metrics import f1_score, metric_max_over_ground_truths
from embedsuite.paths import data_dir

DEFAULT_DATA = "qa-train/squadshifts/new_wiki_v1.0.json"


def choose_threshold(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """``(threshold, accuracy)``: the threshold ``t`` (answer when score >= t) that gets the
    most of the answerable scores ``pos`` at or over it and unanswerable ``neg`` under it.
    Candidates lie halfway between neighbouring scores (so rounding the result keeps its
    decisions); the smallest is taken on a tie."""
    s = np.unique(np.concatenate([pos, neg]))
    cands = np.concatenate([[0.0], (s[:-1] + s[1:]) / 2, [float(s[-1]) + 1e-6]])
    best_t, best_acc = 0.0, -1.0
    for t in cands:
        acc = (float((pos >= t).sum()) + float((neg < t).sum())) / (len(pos) + len(neg))
        if acc > best_acc + 1e-12:
            best_t, best_acc = float(t), acc
    return best_t, best_acc


def main(argv: list[str] | None = None) -> int:
    """Measure, choose, print (and with ``--write`` record) the threshold."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--head", default=None, help="head folder (default: the shipped head)")
    p.add_argument("--data", default=None,
                   help=f"held-out SQuAD v1.1 JSON (default: ../shared/data/{DEFAULT_DATA})")
    p.add_argument("--n", type=int, default=400, help="questions (each gives two pairs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", default=None, metavar="HEAD_DIR",
                   help="store the chosen threshold in this head folder's config.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    path = Path(args.data) if args.data else data_dir() / DEFAULT_DATA
    rows = load_squad(path)
    if len({r.title for r in rows}) < 2:
        raise ValueError(f"{path} has fewer than two articles; unanswerable pairs take a "
                         f"paragraph of another article")
    rng = random.Random(args.seed)
    picked = rng.sample(rows, min(args.n, len(rows)))
    by_title: dict[str, list[str]] = {}
    for r in rows:
        ctxs = by_title.setdefault(r.title, [])
        if r.context not in ctxs:
            ctxs.append(r.context)
    others = []
    for i, r in enumerate(picked):
        same = [c for c in by_title[r.title] if c != r.context]
        if i % 2 == 0 and same:  # a paragraph of the same article: on topic, no answer
            others.append(rng.choice(same))
            continue
        o = rng.choice(rows)  # a paragraph of another article: an unrelated text
        while o.title == r.title:
            o = rng.choice(rows)
        others.append(o.context)
    head = ExtractiveQA.load(args.head) if args.head else ExtractiveQA.load_default()
    qs = [r.question for r in picked]
    got_pos = head.answer(qs, [r.context for r in picked], no_answer_threshold=0.0)
    got_neg = head.answer(qs, others, no_answer_threshold=0.0)
    pos = np.array([g["score"] for g in got_pos])
    neg = np.array([g["score"] for g in got_neg])
    t, acc = choose_threshold(pos, neg)
    t = round(t, 4)
    f1 = np.array([metric_max_over_ground_truths(f1_score, g["answer"], [a for a, _ in r.answers])
                   for g, r in zip(got_pos, picked, strict=True)])
    info: dict[str, Any] = {
        "data": str(path.relative_to(data_dir())) if path.is_relative_to(data_dir()) else str(path),
        "questions": len(picked), "seed": args.seed, "threshold": t,
        "pair_accuracy": round(acc, 4),
        "answerable_answered": round(float((pos >= t).mean()), 4),
        "unanswerable_empty": round(float((neg < t).mean()), 4),
        "answerable_f1_without_threshold": round(float(f1.mean()), 4),
        "answerable_f1_with_threshold": round(float((f1 * (pos >= t)).mean()), 4),
        "score_quartiles_answerable": np.percentile(pos, [25, 50, 75]).round(4).tolist(),
        "score_quartiles_unanswerable": np.percentile(neg, [25, 50, 75]).round(4).tolist(),
        "command": "python demos/qa_threshold.py " + " ".join(argv or sys.argv[1:]),
    }
    if args.write:
        cfg_path = Path(args.write) / "config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["params"]["no_answer_threshold"] = t
        cfg["no_answer_threshold_choice"] = {k: v for k, v in info.items()}
        atomic_write_text(cfg_path, json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
