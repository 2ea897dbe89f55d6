"""Item catalogues as CSV (header ``id,title,description[,more...]``), and the demo one.

Limits are parameters: the app passes its own, the Python API and the command line none.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from embedsuite.data.uploads import decode_upload
from embedsuite.paths import ASSETS_DIR

__all__ = ["DEMO_CATALOGUE", "REQUIRED_COLUMNS", "demo_catalogue", "read_catalogue_csv"]

#: The demo catalogue shipped inside the package (110 items written for this project).
DEMO_CATALOGUE = ASSETS_DIR / "demo_catalogue.csv"
REQUIRED_COLUMNS = ("id", "title", "description")


def read_catalogue_csv(source: str | os.PathLike[str] | bytes, *, max_bytes: int | None = None,
                       max_items: int | None = None, max_text_chars: int | None = None,
                       taker: str = "this reader", limit_hint: str = "",
                       ) -> list[dict[str, Any]]:
    """Parse a catalogue CSV into items ``{"id", "title", "description", ...more columns}``.

    Args:
        source: A file path, or the file's bytes.
        max_bytes: Refuse larger files (``None``: no limit).
        max_items: Refuse more items (``None``: no limit).
        max_text_chars: Refuse an item whose title and description are longer.
        taker: Who applies the limits, as the messages name it ("the app").
        limit_hint: Appended to the limit messages (where larger catalogues can go).

    Raises:
        ValueError: Too big, not UTF-8, missing columns, empty or duplicate ids, no rows.
    """
    if isinstance(source, bytes):
        raw, name = source, "the uploaded file"
    else:
        p = Path(source)
        name = p.name
        if max_bytes is not None and p.stat().st_size > max_bytes:
            raise ValueError(f"{name} has {p.stat().st_size:,} bytes; {taker} takes catalogues "
                             f"up to {max_bytes:,} bytes.{limit_hint}")
        raw = p.read_bytes()
    if max_bytes is not None and len(raw) > max_bytes:
        raise ValueError(f"{name} has {len(raw):,} bytes; {taker} takes catalogues up to "
                         f"{max_bytes:,} bytes.{limit_hint}")
    text = decode_upload(raw, name, binary_hint="not a CSV: expected a UTF-8 text file with "
                                                "the header 'id,title,description'",
                         utf8_hint="; save the CSV as UTF-8")
    reader = csv.DictReader(io.StringIO(text))
    cols = [c.strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing}; expected a header line "
                         f"'id,title,description' (got {cols or 'no header'})")
    reader.fieldnames = cols
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        iid = (row.get("id") or "").strip()
        title = (row.get("title") or "").strip()
        desc = (row.get("description") or "").strip()
        if not iid and not title and not desc:
            continue
        if not iid:
            raise ValueError(f"{name} line {line}: empty id; every row needs an id")
        if iid in seen:
            raise ValueError(f"{name} line {line}: duplicate id {iid!r}; ids must be unique")
        if not title and not desc:
            raise ValueError(f"{name} line {line} (id {iid!r}): no title and no description")
        if max_text_chars is not None and len(title) + len(desc) > max_text_chars:
            raise ValueError(f"{name} line {line} (id {iid!r}) has over {max_text_chars:,} "
                             f"characters of text; shorten the description")
        seen.add(iid)
        item: dict[str, Any] = {"id": iid, "title": title, "description": desc}
        item.update({k: (v or "").strip() for k, v in row.items()
                     if k and k not in REQUIRED_COLUMNS and isinstance(v, str)})
        items.append(item)
        if max_items is not None and len(items) > max_items:
            raise ValueError(f"{name} has more than {max_items:,} items; {taker} embeds at most "
                             f"that many.{limit_hint}")
    if len(items) < 2:
        raise ValueError(f"{name} has {len(items)} item(s); a catalogue needs at least 2 rows")
    return items


def demo_catalogue() -> list[dict[str, Any]]:
    """The project's own demo catalogue (110 items)."""
    return read_catalogue_csv(DEMO_CATALOGUE)
