"""Labelled ``text,label`` tables (CSV with a header, or SST-2 style TSV).

Limits are parameters: the app passes its own (and a hint naming the command line for
larger files), the command line passes none.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.data.uploads import decode_upload

__all__ = ["read_labelled", "read_labelled_csv"]

_EXAMPLE = 'text,label\n"A wonderful film",positive\n"Dull and too long",negative'


def read_labelled_csv(path: str | os.PathLike[str] | None, *, max_bytes: int | None = None,
                      max_rows: int | None = None, min_per_class: int = 1,
                      limit_hint: str = "", taker: str = "this reader"
                      ) -> tuple[list[str], list[str], int]:
    """Read a ``text,label`` CSV (comma, semicolon or tab; header row required).

    Args:
        path: The file.
        max_bytes: Refuse larger files (``None``: no limit).
        max_rows: Refuse more usable rows (``None``: no limit).
        min_per_class: Fewest examples each label needs.
        limit_hint: Appended to the size and row-limit messages (e.g. where larger
            files can go).
        taker: Who applies the limits, as the messages name it ("the app").

    Returns:
        Texts, labels, and the number of rows skipped (empty text or label).

    Raises:
        ValueError: No file, too large, binary / not UTF-8, no ``text`` and ``label``
            columns, no usable rows, too many rows, one class only, or a class with
            fewer than ``min_per_class`` examples.
    """
    if path is None or not str(path).strip():
        raise ValueError("No file given: expected a CSV file with the columns 'text' and "
                         "'label'.")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p.name} could not be read (no such file); expected a CSV file with "
                         f"the columns 'text' and 'label'.")
    size = p.stat().st_size
    if size == 0:
        raise ValueError(f"{p.name} is empty: it needs a header 'text,label' and one labelled "
                         f"example per row.")
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"The file has {size / 1e6:.1f} MB; {taker} takes at most "
                         f"{max_bytes / 1e6:.0f} MB.{limit_hint}")
    content = decode_upload(
        p.read_bytes(), p.name,
        binary_hint="not a CSV: expected a UTF-8 text file with the columns 'text' and 'label'.",
        utf8_hint=": save it as a UTF-8 CSV with the columns 'text' and 'label'.")
    try:
        dialect: Any = csv.Sniffer().sniff(content[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content), dialect)
    try:
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{p.name} is empty: it needs a header 'text,label' and one "
                             f"labelled example per row.")
        cols = [h.strip().lower() for h in header]
        if "text" not in cols or "label" not in cols:
            raise ValueError(
                f"The CSV needs the columns 'text' and 'label' in its header row; found "
                f"{', '.join(repr(h) for h in header[:8]) or 'none'}. Example:\n{_EXAMPLE}")
        ti, li = cols.index("text"), cols.index("label")
        texts: list[str] = []
        labels: list[str] = []
        skipped = 0
        for row in reader:
            if len(row) <= max(ti, li) or not row[ti].strip() or not row[li].strip():
                skipped += int(any(c.strip() for c in row))
                continue
            texts.append(row[ti].strip())
            labels.append(row[li].strip())
    except csv.Error as exc:
        raise ValueError(f"{p.name} is not a valid CSV ({exc}); expected the columns "
                         f"'text' and 'label'.") from None
    if not texts:
        raise ValueError("The CSV has a header but no row with both a text and a label.")
    if max_rows is not None and len(texts) > max_rows:
        raise ValueError(f"The CSV has {len(texts):,} rows; {taker} takes at most "
                         f"{max_rows:,}.{limit_hint}")
    counts = {c: labels.count(c) for c in sorted(set(labels))}
    if len(counts) < 2:
        raise ValueError(f"The CSV has only one class ({next(iter(counts))!r}); a classifier "
                         f"needs examples of at least two labels.")
    few = {c: n for c, n in counts.items() if n < min_per_class}
    if few:
        raise ValueError(f"Each label needs at least {min_per_class} examples; too few for: "
                         f"{few}.")
    return texts, labels, skipped


def read_labelled(path: str | os.PathLike[str], limit: int | None = None, seed: int = 0
                  ) -> tuple[list[str], list[str]]:
    """A ``text,label`` CSV (header) or a ``text<TAB>0|1`` TSV (SST-2 style), no size limits.

    Args:
        path: The file (``.tsv``/``.txt``: SST-2 format; otherwise CSV).
        limit: Keep a seeded random sample of this many rows.
        seed: Seed of the sample.

    Raises:
        FileNotFoundError: No such file.
        ValueError: A malformed file (the message says what was expected).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; expected a CSV with the columns text,label "
                                f"or a TSV 'text<TAB>label' file")
    if p.suffix.lower() in (".tsv", ".txt"):
        from embedsuite.data.sst2 import read_sst2

        return read_sst2(p, limit, seed, unique=True)
    texts, labels, _ = read_labelled_csv(p)
    if limit is not None and limit < len(texts):
        idx = np.sort(np.random.default_rng(seed).permutation(len(texts))[:limit])
        texts, labels = [texts[i] for i in idx], [labels[i] for i in idx]
    return texts, labels
