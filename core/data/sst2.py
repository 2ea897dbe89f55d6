"""SST-2 (Socher et al. 2013, GLUE) in its ``sentence<TAB>0|1`` form."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["SST2_LABELS", "read_sst2"]

#: SST-2's labels: 0 = negative, 1 = positive.
SST2_LABELS = {0: "negative", 1: "positive"}


def read_sst2(path: str | os.PathLike[str], limit: int | None = None, seed: int = 0, *,
              unique: bool = False) -> tuple[list[str], list[str]]:
    """Read ``sentence<TAB>label`` lines; labels become ``negative`` / ``positive``.

    Args:
        path: The TSV file.
        limit: Keep a seeded random sample of this many rows (the first ``limit`` of a
            seeded permutation, so a larger limit extends a smaller one).
        seed: Seed of the sample.
        unique: Drop repeated texts (the first label is kept).

    Raises:
        ValueError: A line that is not ``sentence<TAB>0|1``.
    """
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            text, sep, lab = line.rpartition("\t")
            if not sep or lab.strip() not in ("0", "1"):
                raise ValueError(f"{path}:{n}: expected 'sentence<TAB>0|1', got {line[:80]!r}")
            text = text.strip()
            if not text or (unique and text in seen):
                continue
            seen.add(text)
            texts.append(text)
            labels.append(SST2_LABELS[int(lab)])
    if limit is not None and limit < len(texts):
        idx = np.sort(np.random.default_rng(seed).permutation(len(texts))[:limit])
        texts = [texts[i] for i in idx]
        labels = [labels[i] for i in idx]
    return texts, labels
