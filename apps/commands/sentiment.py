"""CLI: ``embedsuite train-sentiment`` and ``embedsuite sentiment``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, cast

logger = logging.getLogger("embedsuite")


def cmd_train(args: argparse.Namespace) -> int:
    from embedsuite.data.tables import read_labelled
    from embedsuite.encoders import get_encoder
    from embedsuite.heads.sentiment import SentimentClassifier

    texts, labels = read_labelled(Path(args.data), args.limit, args.seed)
    enc = get_encoder(args.encoder)
    head = SentimentClassifier(enc, kind=args.kind, epochs=args.epochs, random_state=args.seed,
                               show_progress=not args.quiet)
    head.fit(texts, labels)
    if args.calibrate:
        cx, cy = read_labelled(Path(args.calibrate), None, args.seed)
        head.calibrate(cx, cy)
    head.save(args.out)
    info: dict[str, Any] = {"saved": args.out, "kind": head.head_kind, "n_train": len(texts),
                            "classes": head.classes_,
                            "calibration_temperature": round(head.calibration_temperature_, 4)}
    if args.test:
        tx, ty = read_labelled(Path(args.test), None, args.seed)
        info["test_accuracy"] = round(head.score(tx, ty), 4)
        info["n_test"] = len(tx)
    sys.stdout.write(json.dumps(info, indent=2) + "\n")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from embedsuite.heads.sentiment import SentimentClassifier, load_default

    texts = list(args.texts)
    if not texts:
        texts = [ln.strip() for ln in sys.stdin.read().splitlines() if ln.strip()]
    if not texts:
        raise ValueError("no text given: pass texts as arguments or one per line on stdin")
    head = SentimentClassifier.load(args.head) if args.head else load_default()
    results = cast(list[dict[str, Any]], head.predict(texts))
    for t, r in zip(texts, results, strict=True):
        sys.stdout.write(json.dumps({"text": t, **r}, ensure_ascii=False) + "\n")
    return 0


def register(sub: Any) -> None:
    """Add ``train-sentiment`` and ``sentiment`` to the ``embedsuite`` CLI."""
    from embedsuite.encoders import DEFAULT_ENCODER

    s = sub.add_parser("train-sentiment",
                       help="train a sentiment/text classifier head from a CSV or TSV")
    s.add_argument("data", help="text,label CSV (header) or text<TAB>label TSV (SST-2)")
    s.add_argument("out", help="folder to save the head in")
    s.add_argument("--kind", choices=["linear", "attention"], default="linear")
    s.add_argument("--encoder", default=DEFAULT_ENCODER)
    s.add_argument("--limit", type=int, default=None, help="train on a seeded sample")
    s.add_argument("--epochs", type=int, default=8, help="epochs (attention kind)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--test", default=None, help="labelled file to report accuracy on")
    s.add_argument("--calibrate", default=None, metavar="FILE",
                   help="held-out labelled file (not the test file) to calibrate the "
                        "probabilities on (temperature scaling)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("sentiment", help="classify texts with a sentiment head (JSON lines)")
    s.add_argument("texts", nargs="*", help="texts (default: one per line on stdin)")
    s.add_argument("--head", default=None, help="saved head folder (default: the shipped one)")
    s.set_defaults(func=cmd_predict)
