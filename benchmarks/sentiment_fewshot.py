"""8-shot SST-2 with self-training on unlabelled text: does it beat the few-shot head?

For each of ``--draws`` draws of 8 examples per class from SST-2 train (the evaluation
task's ``sample_k_shot``), the shipped recipe's few-shot head (``kind="linear"``:
centroids + label-name prior) labels a pool of 20,000 train phrases of at least five
words (their own labels are never read). Its most confident ``m`` phrases per class,
with the 16 real examples, train

- ``lr``: a logistic regression on the sentence vectors (``--rounds`` 2 relabels the pool
  with it and refits once more), for every ``m`` in ``--m`` and ``C`` in ``--c``;
- ``attention`` (``--attention``): the attention head (4 epochs) on the token states.

Accuracy on SST-2 dev (``--split test`` for the report), mean and std over the draws.
Sentence vectors and token states come from the cache (``demos/train_sentiment.py``
fills both); without it the first run encodes the 67k phrases.

    python benchmarks/sentiment_fewshot.py [--draws 10] [--m 200 1000 3000] [--c 0.5 4]
                                           [--rounds 1 2] [--attention] [--split dev]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from embedsuite.data.sst2 import read_sst2
from embedsuite.encoders import get_encoder
from embedsuite.evaluation.tasks.sentiment import sample_k_shot
from embedsuite.heads.sentiment import SentimentClassifier
from embedsuite.paths import data_dir

POOL = 20_000


def pseudo_labelled(idx: np.ndarray, real_y: np.ndarray, pool: np.ndarray, prob: np.ndarray,
                    m: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels to train on: the real examples, and per class the ``m`` pool rows
    ``prob`` (pool rows x classes) is surest of."""
    k = prob.shape[1]
    picks = [pool[np.argsort(-prob[:, c])[:m]] for c in range(k)]
    return (np.concatenate([idx, *picks]),
            np.concatenate([real_y, *[np.full(m, c) for c in range(k)]]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--m", type=int, nargs="+", default=[200, 1000, 3000])
    p.add_argument("--c", type=float, nargs="+", default=[0.5, 4.0])
    p.add_argument("--rounds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--attention", action="store_true", help="also the attention head")
    p.add_argument("--split", choices=["dev", "test"], default="dev")
    args = p.parse_args()
    from sklearn.linear_model import LogisticRegression

    root = data_dir() / "sst2"
    tr_x, tr_y = read_sst2(root / "sentiment-train.tsv", unique=True)
    ev_x, ev_y = read_sst2(root / f"sentiment-{args.split}.tsv")
    enc = get_encoder("e5-small")
    v_tr = enc.encode(tr_x, role="query")
    v_ev = enc.encode(ev_x, role="query")
    y_ev = np.array(ev_y)
    long_enough = np.where(np.array([len(x.split()) for x in tr_x]) >= 5)[0]
    rows: dict[str, list[float]] = {}
    for draw in range(args.draws):
        idx = sample_k_shot(tr_y, 8, draw)
        head = SentimentClassifier(enc, kind="linear", random_state=draw).fit(
            [tr_x[i] for i in idx], [tr_y[i] for i in idx])
        classes = np.array(head.classes_)
        rows.setdefault("few-shot head", []).append(
            float((classes[head._linear_proba(v_ev).argmax(1)] == y_ev).mean()))
        rng = np.random.default_rng(draw)
        pool = rng.choice(np.setdiff1d(long_enough, idx), POOL, replace=False)
        prior = head._linear_proba(v_tr[pool])
        real_y = np.array([head.classes_.index(tr_y[i]) for i in idx])

        for m in args.m:
            for c_reg in args.c:
                prob = prior
                for r in range(max(args.rounds)):
                    rows_i, ys = pseudo_labelled(idx, real_y, pool, prob, m)
                    lr = LogisticRegression(C=c_reg, max_iter=2000).fit(v_tr[rows_i], ys)
                    prob = lr.predict_proba(v_tr[pool])
                    if r + 1 in args.rounds:
                        rows.setdefault(f"lr m={m} C={c_reg:g} rounds={r + 1}", []).append(
                            float((classes[lr.predict(v_ev)] == y_ev).mean()))
            if args.attention:
                rows_i, ys = pseudo_labelled(idx, real_y, pool, prior, m)
                att = SentimentClassifier(enc, kind="attention", epochs=4, random_state=draw,
                                          show_progress=False).fit(
                    [tr_x[i] for i in rows_i], [str(classes[y]) for y in ys])
                rows.setdefault(f"attention m={m}", []).append(att.score(ev_x, ev_y))
    out = {k: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4)}
           for k, v in rows.items()}
    print(json.dumps({"split": args.split, "draws": args.draws, "accuracy": out}, indent=2))


if __name__ == "__main__":
    main()
