"""Train the default English sentiment head shipped in ``core/assets/sentiment-default/``.

Data: SST-2 (Socher et al. 2013, GLUE) from ``../shared/data/sst2`` (not part of the
repository): trained on ``sentiment-train.tsv`` (phrases of the training trees),
calibrated (temperature scaling) on ``sentiment-dev.tsv`` (872 sentences), measured on
``sentiment-test.tsv`` (1,821 sentences): accuracy, and the expected calibration error
before and after calibration.

    python demos/train_sentiment.py                     # attention head, all phrases
    python demos/train_sentiment.py --limit 20000       # a seeded sample (faster)
    python demos/train_sentiment.py --kind linear --out /tmp/sentiment-linear
    python demos/train_sentiment.py --no-calibrate      # keep the raw probabilities

Token features are cached under ``<cache dir>/features/tokens``, so a second run
(or ``embedsuite evaluate --tasks sentiment``) does not encode again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.data.sst2 import read_sst2
from embedsuite.encoders import DEFAULT_ENCODER, get_encoder
from embedsuite.heads.sentiment import DEFAULT_HEAD_DIR, SentimentClassifier
from embedsuite.metrics import expected_calibration_error
from embedsuite.paths import data_dir

ROOT = Path(__file__).resolve().parent.parent
#: sentences with no sentiment: their probability of the positive class is reported
NEUTRAL = ("The movie lasts 90 minutes.", "The film was released in 2004.",
           "The story is set in a small town.")


def main(argv: list[str] | None = None) -> int:
    """Train, test, save."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="shared data root (default ../shared/data)")
    p.add_argument("--kind", choices=["linear", "attention"], default="attention")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--limit", type=int, default=None, help="seeded sample of the train phrases")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(DEFAULT_HEAD_DIR))
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="skip temperature scaling on the dev split")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    root = data_dir(args.data_dir)
    train_x, train_y = read_sst2(root / "sst2" / "sentiment-train.tsv", args.limit, args.seed,
                                 unique=True)
    test_x, test_y = read_sst2(root / "sst2" / "sentiment-test.tsv")
    enc = get_encoder(args.encoder)
    t0 = time.perf_counter()
    head = SentimentClassifier(enc, kind=args.kind, epochs=args.epochs, random_state=args.seed,
                               show_progress=True)
    head.fit(train_x, train_y)
    fit_s = time.perf_counter() - t0
    classes = head.classes_
    y_test = np.array([classes.index(v) for v in test_y])
    p_raw = head.predict_proba(test_x)
    acc = float((p_raw.argmax(1) == y_test).mean())
    cal: dict[str, Any] = {"sst2_test_ece_raw": round(expected_calibration_error(p_raw, y_test), 4)}
    if args.calibrate:
        dev_x, dev_y = read_sst2(root / "sst2" / "sentiment-dev.tsv")
        head.calibrate(dev_x, dev_y)
        p_cal = head.predict_proba(test_x)
        cal.update({"calibrated_on": "sst2/sentiment-dev.tsv", "n_calibration": len(dev_x),
                    "calibration_temperature": round(head.calibration_temperature_, 4),
                    "sst2_test_ece_calibrated": round(
                        expected_calibration_error(p_cal, y_test), 4)})
    pos = classes.index("positive")
    cal["neutral_p_positive"] = {t: round(float(head.predict_proba(t)[pos]), 4)
                                 for t in NEUTRAL}
    head.save(args.out)
    out = Path(args.out).resolve()
    shown = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    info = {"out": shown, "kind": head.head_kind, "n_train": len(train_x),
            "sst2_test_accuracy": round(acc, 4), "n_test": len(test_x),
            "fit_seconds": round(fit_s, 1), **cal,
            "command": "python demos/train_sentiment.py " + " ".join(argv or sys.argv[1:])}
    (Path(args.out) / "TRAINING.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
