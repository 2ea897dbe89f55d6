"""The catalogue: item ids, texts and metadata parsed from what the caller gives."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from embedsuite.validation import check_text

__all__ = ["as_item_id", "finite_number", "indices_of", "parse_items", "precomputed_texts",
           "precomputed_vectors", "texts_for"]


def as_item_id(value: object, where: str) -> str:
    """An item id as a stripped, non-empty str (str and int ids are accepted).

    Raises:
        TypeError: Neither a str nor an int.
        ValueError: Empty after stripping.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise TypeError(f"{where} must be a str or int item id, got {type(value).__name__} "
                        f"({value!r:.60})")
    s = str(value).strip()
    if not s:
        raise ValueError(f"{where} is an empty item id; every item needs a non-empty id")
    return s


def finite_number(value: object, where: str) -> float:
    """``value`` as a finite float.

    Raises:
        TypeError: Not a number.
        ValueError: NaN or infinite.
    """
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{where} must be a number, got {type(value).__name__} ({value!r:.60})"
                        ) from None
    if not math.isfinite(v):
        raise ValueError(f"{where} must be finite, got {v}")
    return v


def _item_text(it: Mapping[str, Any], iid: str, where: str, meta: dict[str, Any]) -> str:
    if it.get("text") is not None:
        return check_text(it["text"], f"{where}['text']")
    title = str(it.get("title") or "").strip()
    desc = str(it.get("description") or "").strip()
    if not title and not desc:
        raise ValueError(f"{where} (id {iid!r}) has no text: give 'text' or "
                         f"'title' and/or 'description'")
    meta["title"] = title
    return (f"{title}. {desc}" if title and desc and not title.endswith(
        (".", "!", "?")) else f"{title} {desc}").strip()


def parse_items(items: object) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Split a catalogue into ``(ids, texts, metadata)``.

    Items are dicts with ``id`` and ``text`` (or ``title`` and/or ``description``;
    other keys and a ``metadata`` dict become metadata) or ``(id, text)`` /
    ``(id, text, metadata)`` tuples.

    Raises:
        TypeError: Not a list of items, or an item of the wrong shape.
        ValueError: An item without text, duplicate ids, fewer than 2 items.
    """
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(
            f"items must be a list of dicts ({{'id', 'title', 'description'}} or "
            f"{{'id', 'text'}}) or of (id, text) pairs, got {type(items).__name__}")
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    for i, it in enumerate(items):
        where = f"items[{i}]"
        meta: dict[str, Any] = {}
        if isinstance(it, Mapping):
            if "id" not in it:
                raise TypeError(f"{where} has no 'id' key; each item needs an id")
            iid = as_item_id(it["id"], f"{where}['id']")
            text = _item_text(it, iid, where, meta)
            extra = it.get("metadata")
            if isinstance(extra, Mapping):
                meta.update(extra)
            meta.update({k: v for k, v in it.items()
                         if k not in ("id", "text", "metadata") and k not in meta})
        elif isinstance(it, Sequence) and not isinstance(it, str) and len(it) in (2, 3):
            iid = as_item_id(it[0], f"{where} id")
            text = check_text(it[1], f"{where} text")
            if len(it) == 3 and isinstance(it[2], Mapping):
                meta.update(it[2])
        else:
            raise TypeError(f"{where} must be a dict or an (id, text) pair, got {it!r:.60}")
        ids.append(iid)
        texts.append(text)
        metas.append(meta)
    if not ids:
        raise ValueError("items is empty; a catalogue needs at least 2 items")
    if len(ids) < 2:
        raise ValueError("a catalogue needs at least 2 items to recommend from, got 1")
    seen: set[str] = set()
    for iid in ids:
        if iid in seen:
            raise ValueError(f"duplicate item id {iid!r} in items; ids must be unique")
        seen.add(iid)
    return ids, texts, metas


def precomputed_vectors(ids: Sequence[object], embeddings: np.ndarray
                        ) -> tuple[list[str], np.ndarray]:
    """Ids (as str) and float32 vectors of a precomputed catalogue, one row per id (a
    float32 memory map is kept as is, not copied).

    Raises:
        ValueError: Shape and ids that do not match, fewer than 2 items, duplicate ids.
    """
    id_list = [as_item_id(x, f"ids[{j}]") for j, x in enumerate(ids)]
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(id_list):
        raise ValueError(f"embeddings must be ({len(id_list)}, dim), one row per id, got "
                         f"shape {emb.shape}")
    if len(id_list) < 2:
        raise ValueError(f"a catalogue needs at least 2 items, got {len(id_list)}")
    if len(set(id_list)) != len(id_list):
        raise ValueError("ids must be unique; the catalogue has duplicate ids")
    return id_list, emb


def precomputed_texts(ids: Sequence[str], texts: Sequence[str] | None,
                      metadata: Sequence[Mapping[str, Any]] | None
                      ) -> tuple[list[str], list[dict[str, Any]]]:
    """Texts (default: the ids) and metadata (default: empty) of a precomputed catalogue.

    Raises:
        TypeError, ValueError: An invalid text, or not one text and metadata per id.
    """
    text_list = list(ids) if texts is None else [check_text(t, f"texts[{j}]")
                                                 for j, t in enumerate(texts)]
    metas = [{} for _ in ids] if metadata is None else [dict(m) for m in metadata]
    if len(text_list) != len(ids) or len(metas) != len(ids):
        raise ValueError(f"texts and metadata need one entry per id ({len(ids)})")
    return text_list, metas


def texts_for(ids: Sequence[str], items: object) -> tuple[list[str], list[dict[str, Any]]]:
    """The texts and metadata of ``ids`` taken from a catalogue ``items`` (as for
    :func:`parse_items`) that holds every one of them.

    Raises:
        KeyError: An id missing from ``items``.
    """
    item_ids, item_texts, item_metas = parse_items(items)
    where = {iid: j for j, iid in enumerate(item_ids)}
    missing = [x for x in ids if x not in where]
    if missing:
        raise KeyError(f"{len(missing)} shard ids are not in items (e.g. "
                       f"{missing[:3]}); give every item of the shards")
    return [item_texts[where[x]] for x in ids], [item_metas[where[x]] for x in ids]


def indices_of(index: Mapping[str, int], ids: Iterable[object] | None) -> list[int]:
    """Catalogue indices of ``ids`` (one id or many; ids not in the catalogue are skipped)."""
    if ids is None:
        return []
    if isinstance(ids, (str, int)):
        ids = [ids]
    return [index[str(e)] for e in ids if str(e) in index]
