"""Quality cost of ``e5-small-int8`` against ``e5-small`` (fp32) on the real tasks.

- SST-2: a linear sentiment head (``SentimentClassifier(kind="linear")``) trained on a
  fixed seeded sample of ``sentiment-train.tsv`` (``--train``, default 8,000 phrases),
  accuracy on ``sentiment-test.tsv`` (1,821), once per encoder.
- Tatoeba: margin top-1 accuracy xxx->eng (the translation task's ``tatoeba/margin``
  ``accuracy_mean``), mean over 10 languages (deu, fra, spa, rus, cmn, jpn, ara, hin,
  kor, ell), 1,000 pairs each.
- XQuAD-en F1 (1,190 questions, official SQuAD v1.1 scoring): the shipped QA span head
  (trained on e5-small's token vectors) reading each encoder's token vectors (the two
  are one encoder family, so the head loads on either): the delta is what int8 token
  vectors cost the same head. (A head trained
  per encoder on the evaluation budget is the other view: ``embedsuite evaluate
  --encoders e5-small-int8 --tasks qa --option qa.langs=en``.) ``--no-qa`` skips it.
- SST-2 test accuracy of the shipped sentiment head (trained on e5-small) reading each
  encoder's vectors (``--only-shipped`` runs this and the QA row only: the costs quoted
  in ``embedsuite.encoders.families``).
- The cosine between the two encoders' vectors of the SST-2 test sentences.

Prints a table, or one JSON object with ``--json``: ``{"sst2": {"e5-small", "e5-small-int8",
"delta_points"}, "tatoeba_margin": {...}, "cosine": {"min", "p01", "mean"}}``.

    python benchmarks/int8_quality.py [--train 8000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from embedsuite.encoders import get_encoder
from embedsuite.paths import data_dir

LANGS = ["deu", "fra", "spa", "rus", "cmn", "jpn", "ara", "hin", "kor", "ell"]
ENCODERS = ["e5-small", "e5-small-int8"]


def sst2(name: str, n_train: int) -> float:
    """SST-2 test accuracy of a linear head on ``name``'s vectors."""
    from embedsuite.data.sst2 import read_sst2
    from embedsuite.heads.sentiment import SentimentClassifier

    d = data_dir() / "sst2"
    xs, ys = read_sst2(d / "sentiment-train.tsv", limit=n_train, seed=0)
    tx, ty = read_sst2(d / "sentiment-test.tsv")
    clf = SentimentClassifier(get_encoder(name), kind="linear").fit(xs, ys)
    return float(clf.score(tx, ty))


def tatoeba_margin(name: str) -> dict[str, float]:
    """Margin accuracy xxx->eng per language and their mean."""
    import embedsuite.evaluation.tasks.translation  # noqa: F401  (registers the task)
    from embedsuite.evaluation.harness import TASKS, TaskContext

    ctx = TaskContext(data_dir=data_dir(), options={"langs": LANGS, "mining": False})
    records = TASKS.get("translation").run(get_encoder(name), ctx)
    out: dict[str, float] = {}
    for r in records:
        if r["dataset"] == "tatoeba/margin" and r["metric"] == "accuracy_mean":
            out["mean"] = r["value"]
        elif r["dataset"].startswith("tatoeba/margin/") and r["metric"] == "accuracy":
            out[r["dataset"].rsplit("/", 1)[1]] = r["value"]
    return out


def xquad_en_f1(name: str, limit: int | None = None) -> float:
    """XQuAD-en F1 of the shipped QA head reading ``name``'s token vectors."""
    from embedsuite.evaluation.tasks.qa import _read_xquad
    from embedsuite.heads.qa import ExtractiveQA
    from embedsuite.metrics import squad_scores

    head = ExtractiveQA.load_default(get_encoder(name))  # one encoder family: it loads
    qs, cs, golds = _read_xquad(data_dir() / "xquad" / "xquad.en.json", limit)
    preds = [""] * len(qs)
    by_ctx: dict[str, list[int]] = {}
    for i, c in enumerate(cs):
        by_ctx.setdefault(c, []).append(i)
    for c, idx in by_ctx.items():
        for i, r in zip(idx, head.answer([qs[i] for i in idx], c, no_answer_threshold=0.0),
                        strict=True):  # SQuAD v1.1: every question is answerable
            preds[i] = r["answer"]
    return float(squad_scores(preds, golds)["f1"])


def sst2_shipped(name: str) -> float:
    """SST-2 test accuracy of the shipped sentiment head reading ``name``'s vectors."""
    from embedsuite.data.sst2 import read_sst2
    from embedsuite.heads.sentiment import load_default

    tx, ty = read_sst2(data_dir() / "sst2" / "sentiment-test.tsv")
    return float(load_default(get_encoder(name)).score(tx, ty))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=8000, help="SST-2 training phrases")
    p.add_argument("--no-qa", action="store_true", help="skip XQuAD-en F1")
    p.add_argument("--only-qa", action="store_true", help="only XQuAD-en F1")
    p.add_argument("--only-shipped", action="store_true",
                   help="only the shipped heads: SST-2 sentiment and XQuAD-en F1")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
    t0 = time.perf_counter()
    res: dict[str, Any] = {"sst2": {}, "tatoeba_margin": {}, "xquad_en_f1": None,
                           "train": args.train, "langs": LANGS}
    if not args.no_qa:
        f1 = {name: round(xquad_en_f1(name), 4) for name in ENCODERS}
        res["xquad_en_f1"] = {**f1, "delta_points": round(
            100 * (f1["e5-small-int8"] - f1["e5-small"]), 2)}
    if args.only_qa:
        print(json.dumps(res["xquad_en_f1"]))
        return
    if args.only_shipped:
        acc = {name: round(sst2_shipped(name), 4) for name in ENCODERS}
        res["sst2_shipped"] = {**acc, "delta_points": round(
            100 * (acc["e5-small-int8"] - acc["e5-small"]), 2)}
        print(json.dumps({"sst2_shipped": res["sst2_shipped"],
                          "xquad_en_f1": res["xquad_en_f1"],
                          "seconds": round(time.perf_counter() - t0, 1)}))
        return
    for name in ENCODERS:
        res["sst2"][name] = round(sst2(name, args.train), 4)
        res["tatoeba_margin"][name] = {k: round(v, 4) for k, v in tatoeba_margin(name).items()}
    a, b = res["sst2"]["e5-small"], res["sst2"]["e5-small-int8"]
    res["sst2"]["delta_points"] = round(100 * (b - a), 2)
    ta = res["tatoeba_margin"]["e5-small"]["mean"]
    tb = res["tatoeba_margin"]["e5-small-int8"]["mean"]
    res["tatoeba_margin"]["delta_points"] = round(100 * (tb - ta), 2)

    from embedsuite.data.sst2 import read_sst2

    tx, _ = read_sst2(data_dir() / "sst2" / "sentiment-test.tsv")
    cos = np.sum(get_encoder("e5-small").encode(tx) * get_encoder("e5-small-int8").encode(tx),
                 axis=1)
    res["cosine"] = {"min": round(float(cos.min()), 4),
                     "p01": round(float(np.quantile(cos, 0.01)), 4),
                     "mean": round(float(cos.mean()), 4), "n": len(tx)}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'':28}{'e5-small':>10}{'int8':>10}{'delta (points)':>16}")
    print(f"{'SST-2 accuracy (linear)':28}{a:>10.4f}{b:>10.4f}"
          f"{res['sst2']['delta_points']:>16.2f}")
    print(f"{'Tatoeba margin acc (10)':28}{ta:>10.4f}{tb:>10.4f}"
          f"{res['tatoeba_margin']['delta_points']:>16.2f}")
    if res["xquad_en_f1"]:
        q = res["xquad_en_f1"]
        print(f"{'XQuAD-en F1 (shipped head)':28}{q['e5-small']:>10.4f}{q['e5-small-int8']:>10.4f}"
              f"{q['delta_points']:>16.2f}")
    print(f"cosine int8 vs fp32 on SST-2 test: {res['cosine']}")


if __name__ == "__main__":
    main()
