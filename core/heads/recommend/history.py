"""A user's history: parsed into ``(item_id, value, timestamp)`` and turned into weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from embedsuite.heads.recommend.catalogue import as_item_id, finite_number

__all__ = ["History", "history_weights", "parse_history", "reference_time"]

#: ``(item_id, value, timestamp or None)`` entries of one user
History = list[tuple[str, float, float | None]]


def parse_history(history: object) -> History:
    """Normalise a user history into ``(item_id, value, timestamp or None)`` triples.

    Accepted entries: an item id (value 1.0, a like), ``(item_id, value)``,
    ``(item_id, value, timestamp)``, or a mapping with ``item_id`` (or ``id``),
    ``rating`` (or ``weight``) and optional ``timestamp``.

    Raises:
        TypeError: ``history`` is not a list, or an entry has the wrong shape.
        ValueError: An empty id or a non-finite value.
    """
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Iterable):
        raise TypeError(
            f"history must be a list of item ids or (item_id, rating[, timestamp]) tuples, got "
            f"{type(history).__name__}; e.g. [('b1', 5.0), ('f7', 1.0)]")
    out: History = []
    for i, entry in enumerate(history):
        where = f"history[{i}]"
        ts: object = None
        if isinstance(entry, Mapping):
            iid = entry.get("item_id", entry.get("id"))
            if iid is None:
                raise TypeError(f"{where} has no 'item_id' key; expected "
                                f"{{'item_id': ..., 'rating': ...}}")
            val: object = entry.get("rating", entry.get("weight", 1.0))
            ts = entry.get("timestamp")
        elif isinstance(entry, (str, int, np.integer)) and not isinstance(entry, bool):
            iid, val = entry, 1.0
        elif isinstance(entry, Sequence) and 1 <= len(entry) <= 3:
            iid = entry[0]
            val = entry[1] if len(entry) > 1 else 1.0
            ts = entry[2] if len(entry) > 2 else None
        else:
            raise TypeError(f"{where} must be an item id, (item_id, rating), "
                            f"(item_id, rating, timestamp) or a dict, got {entry!r:.60}")
        out.append((as_item_id(iid, f"{where} item id"), finite_number(val, f"{where} rating"),
                    None if ts is None else finite_number(ts, f"{where} timestamp")))
    return out


def reference_time(hist: Sequence[tuple[str, float, float | None]]) -> float | None:
    """The history's latest timestamp (``None`` without timestamps)."""
    times = [t for _, _, t in hist if t is not None]
    return max(times) if times else None


def history_weights(hist: Sequence[tuple[str, float, float | None]], index: Mapping[str, int],
                    item_ids: Sequence[str], center: object, half_life: float | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Signed weights of a parsed history: ``(unique item indices, float32 weights)``.

    Values are centred (``"mean"``: minus the user's mean, a number: minus it, ``None``:
    as given), decayed by age with ``half_life`` and summed over repeated items.

    Raises:
        KeyError: A history item is not in the catalogue.
    """
    idx, vals, ts = [], [], []
    unknown = []
    for iid, v, t in hist:
        i = index.get(iid)
        if i is None:
            unknown.append(iid)
            continue
        idx.append(i)
        vals.append(v)
        ts.append(t)
    if unknown:
        raise KeyError(f"history item(s) {unknown[:5]} are not in the catalogue "
                       f"({len(item_ids):,} items, e.g. {list(item_ids[:3])})")
    w = np.asarray(vals, np.float64)
    if center == "mean":
        c = w - w.mean()
        w = c if np.abs(c).max() > 1e-9 else np.sign(w) + (w == 0)
    elif center is not None:
        w = w - float(center)  # type: ignore[arg-type]
    if half_life is not None:
        known = [t for t in ts if t is not None]
        if known:
            latest = max(known)
            age = np.array([0.0 if t is None else latest - t for t in ts])
            w = w * np.power(0.5, age / float(half_life))
    # merge repeated items (sum of weights)
    ii = np.asarray(idx, np.int64)
    uniq, inv = np.unique(ii, return_inverse=True)
    ww = np.zeros(len(uniq))
    np.add.at(ww, inv, w)
    return uniq, ww.astype(np.float32)
