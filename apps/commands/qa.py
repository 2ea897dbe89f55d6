"""``embedsuite train-qa`` and ``embedsuite answer``: train the QA span head, ask it questions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("embedsuite")

__all__ = ["cmd_answer", "cmd_train_qa", "register"]


def cmd_train_qa(args: argparse.Namespace) -> int:
    """Extract (cached, resumable) features of a SQuAD file and train a QA head."""
    import torch

    from embedsuite.encoders import get_encoder
    from embedsuite.heads.qa import train_qa

    if args.threads:
        torch.set_num_threads(args.threads)
    from embedsuite.paths import cache_dir

    head = train_qa(
        args.data, args.work_dir or cache_dir() / "qa-work", encoder=get_encoder(args.encoder),
        out=args.out,
        epochs=args.epochs, lr=args.lr, d_model=args.d_model, n_layers=args.layers,
        val_fraction=args.val_fraction, negatives=args.negatives, seed=args.seed,
        limit=args.limit, show_progress=not args.quiet, stop_after=args.stop_after,
        log=lambda line: sys.stderr.write(line + "\n"),
    )
    info = head.training_info_ or {}
    sys.stdout.write(json.dumps({"out": str(args.out), "best_epoch": info.get("best_epoch"),
                                 "val_f1": info.get("val_f1")}) + "\n")
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    """Answer a question about a text file with a saved (default: the shipped) QA head."""
    from embedsuite.encoders import get_encoder
    from embedsuite.heads.qa import DEFAULT_HEAD_DIR, ExtractiveQA

    src = Path(args.context)
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found; expected a UTF-8 text file to read")
    try:
        text = src.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{src} is not UTF-8 text") from None
    head = ExtractiveQA.load(args.head or DEFAULT_HEAD_DIR, get_encoder(args.encoder))
    res: Any = head.answer(args.question, text, top_k=args.top_k,
                           no_answer_threshold=args.threshold)
    sys.stdout.write(json.dumps(res, ensure_ascii=False, indent=1) + "\n")
    return 0


def register(sub: Any) -> None:
    """Add ``train-qa`` and ``answer`` to the ``embedsuite`` parser."""
    from embedsuite.encoders import DEFAULT_ENCODER

    s = sub.add_parser("train-qa", help="train the extractive QA span head (features cached)")
    s.add_argument("--data", required=True, help="SQuAD v1.1 JSON with the training questions")
    s.add_argument("--out", required=True, help="folder for the trained head")
    s.add_argument("--work-dir", default=None,
                   help="feature cache and checkpoints, a rerun resumes (default: "
                        "qa-work in the embedsuite cache folder)")
    s.add_argument("--encoder", default=DEFAULT_ENCODER)
    s.add_argument("--epochs", type=int, default=8)
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--d-model", type=int, default=128)
    s.add_argument("--layers", type=int, default=1, help="transformer layers of the head")
    s.add_argument("--val-fraction", type=float, default=0.1,
                   help="articles held out for model selection and score calibration")
    s.add_argument("--negatives", type=float, default=0.25,
                   help="no-answer pairs per question (other paragraphs of the article)")
    s.add_argument("--stop-after", type=int, default=None,
                   help="stop after N epochs of the --epochs schedule (time budget; resumable)")
    s.add_argument("--limit", type=int, default=None, help="use the first N questions only")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a busy 2-core machine)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_train_qa)

    s = sub.add_parser("answer", help="answer a question about a text file (QA head)")
    s.add_argument("question")
    s.add_argument("context", help="UTF-8 text file to read (any length)")
    s.add_argument("--head", default=None, help="saved head folder (default: the shipped one)")
    s.add_argument("--encoder", default=DEFAULT_ENCODER)
    s.add_argument("--top-k", type=int, default=1)
    s.add_argument("--threshold", type=float, default=0.0, help="no-answer threshold")
    s.set_defaults(func=cmd_answer)
