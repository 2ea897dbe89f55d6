"""Reproduce the shipped QA span head (``core/assets/qa-default``).

Trains on the shared SQuAD v1.1 dev file without the XQuAD questions
(``../shared/data/squad/dev-v1.1-without-xquad.json``, 9,380 questions), on the
frozen ``e5-small`` token features (extracted once, cached under ``--work-dir``,
resumable), with the settings of the shipped head. About 6 minutes of feature
extraction and 6 minutes per epoch on 2 busy CPU cores.

    python demos/train_qa.py [--work-dir ~/.cache/embedsuite/qa-work] [--out core/assets/qa-default]

The same as::

    OMP_NUM_THREADS=1 embedsuite train-qa \
        --data ../shared/data/squad/dev-v1.1-without-xquad.json \
        --out core/assets/qa-default \
        --epochs 5 --d-model 128 --layers 2 --lr 2.5e-3
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread is fastest on a busy 2-core box

from embedsuite.paths import cache_dir, data_dir

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = {"epochs": 5, "d_model": 128, "n_layers": 2, "lr": 2.5e-3, "val_fraction": 0.1,
            "negatives": 0.25, "seed": 0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(data_dir() / "squad" / "dev-v1.1-without-xquad.json"))
    p.add_argument("--work-dir", default=str(cache_dir() / "qa-work"))
    p.add_argument("--out", default=str(ROOT / "core" / "assets" / "qa-default"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    from embedsuite.heads.qa import train_qa

    head = train_qa(args.data, args.work_dir, out=args.out, log=print, **SETTINGS)
    info = head.training_info_ or {}
    print(f"saved {args.out}: best epoch {info.get('best_epoch')}, "
          f"held-out SQuAD F1 {info.get('val_f1'):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
