"""Sentiment head fit time on cached embeddings: linear and attention kinds.

Trains each head kind on a seeded sample of ``--n`` SST-2 training phrases with
``e5-small`` and prints the fit seconds and the SST-2 test accuracy. Run it once
before timing so the sentence vectors and token features are cached (the first
run includes encoding). Prints one JSON object with ``--json``:
``{"n", "linear_fit_s", "linear_accuracy", "attention_fit_s", "attention_accuracy"}``.

    python benchmarks/sentiment_fit.py [--n 5000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from embedsuite.data.sst2 import read_sst2
from embedsuite.encoders import get_encoder
from embedsuite.heads.sentiment import SentimentClassifier
from embedsuite.paths import data_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
    root = data_dir() / "sst2"
    x, y = read_sst2(root / "sentiment-train.tsv", args.n, 0, unique=True)
    tx, ty = read_sst2(root / "sentiment-test.tsv")
    enc = get_encoder("e5-small")
    out: dict[str, float] = {"n": len(x)}
    for kind in ("linear", "attention"):
        t0 = time.perf_counter()
        head = SentimentClassifier(enc, kind=kind, random_state=0, show_progress=False)
        head.fit(x, y)
        out[f"{kind}_fit_s"] = round(time.perf_counter() - t0, 1)
        out[f"{kind}_accuracy"] = round(head.score(tx, ty), 4)
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        for k, v in out.items():
            sys.stdout.write(f"{k:>20}: {v}\n")


if __name__ == "__main__":
    main()
