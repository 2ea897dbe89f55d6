"""The recommender's saved layout (``head_version`` 2) and the migration from version 1.

Version 2 keeps ``config.json`` small: the item ids, texts and metadata (one JSON object
per item) are packed UTF-8 sidecars (``<field>_bytes.npy`` + ``<field>_offsets.npy``,
see :func:`embedsuite.heads.base.pack_strings`), the item embeddings the sidecar
``embeddings.npy`` (memory-mapped on load), and the collaborative weights and priors
``model.safetensors``. Version 1 stored ids, texts and metadata as JSON lists inside
``config.json`` and the embeddings in ``model.safetensors``; :func:`migrate_v1` turns
such a config into the version-2 form with the catalogue inline under ``"catalogue"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embedsuite.errors import HeadFormatError
from embedsuite.heads.base import pack_strings, unpack_strings
from embedsuite.heads.recommend.collaborative import CFModel

__all__ = ["STRING_FIELDS", "catalogue_sidecars", "cf_tensors", "migrate_v1",
           "read_catalogue", "read_cf_model", "read_embeddings"]

#: the catalogue fields saved as packed string sidecars
STRING_FIELDS = ("item_ids", "texts", "metadata")
_HOW = "re-save the head (head.save(folder)) or restore the folder"


def _metadata_json(metas: Sequence[Mapping[str, Any]], ids: Sequence[str]) -> list[str]:
    out = []
    for iid, m in zip(ids, metas, strict=True):
        try:
            out.append(json.dumps(m, ensure_ascii=False, separators=(",", ":")))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the metadata of item {iid!r} cannot be saved as JSON ({exc}); "
                            f"keep metadata values to str, int, float, bool, None, lists "
                            f"and dicts") from None
    return out


def catalogue_sidecars(ids: Sequence[str], texts: Sequence[str],
                       metas: Sequence[Mapping[str, Any]], embeddings: np.ndarray
                       ) -> dict[str, np.ndarray]:
    """The sidecar arrays of a catalogue: packed ids, texts, metadata and the embeddings."""
    out: dict[str, np.ndarray] = {"embeddings": np.asarray(embeddings, np.float32)}
    for field, strings in (("item_ids", ids), ("texts", texts),
                           ("metadata", _metadata_json(metas, ids))):
        packed = pack_strings(strings)
        out[f"{field}_bytes"] = packed["bytes"]
        out[f"{field}_offsets"] = packed["offsets"]
    return out


def _strings(sidecars: Mapping[str, np.ndarray], field: str) -> list[str]:
    names = (f"{field}_bytes", f"{field}_offsets")
    missing = [n for n in names if n not in sidecars]
    if missing:
        raise HeadFormatError(f"the saved recommender lists no sidecar {missing[0]!r} in its "
                              f"config.json; {_HOW}")
    return unpack_strings(sidecars[names[0]], sidecars[names[1]])


def read_catalogue(config: Mapping[str, Any], sidecars: Mapping[str, np.ndarray]
                   ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """``(ids, texts, metadata)`` from the sidecars (or inline, for a migrated v1 folder).

    Texts are not re-validated (the sidecar digests guard them).

    Raises:
        HeadFormatError: Missing sidecars or fields of different lengths.
    """
    inline = config.get("catalogue")
    if inline is not None:
        ids = list(inline["item_ids"])
        texts = list(inline["texts"])
        metas = [dict(m) for m in inline["metadata"]]
    else:
        ids = _strings(sidecars, "item_ids")
        texts = _strings(sidecars, "texts")
        try:
            metas = json.loads("[" + ",".join(_strings(sidecars, "metadata")) + "]")
        except ValueError as exc:
            raise HeadFormatError(f"the saved item metadata is not valid JSON ({exc}); "
                                  f"{_HOW}") from None
        if not all(isinstance(m, dict) for m in metas):
            raise HeadFormatError(f"the saved item metadata holds entries that are not JSON "
                                  f"objects; {_HOW}")
    n = int(config.get("n_items", len(ids)))
    if not len(ids) == len(texts) == len(metas) == n:
        raise HeadFormatError(f"the saved catalogue does not fit together: {len(ids)} ids, "
                              f"{len(texts)} texts, {len(metas)} metadata entries, expected "
                              f"{n} of each; {_HOW}")
    return ids, texts, metas


def read_embeddings(tensors: Mapping[str, np.ndarray], sidecars: Mapping[str, np.ndarray],
                    n_items: int) -> np.ndarray:
    """The ``(n_items, dim)`` float32 item embeddings (a sidecar is kept memory-mapped).

    Raises:
        HeadFormatError: None saved, or a shape that does not fit the catalogue.
    """
    raw = sidecars.get("embeddings")
    if raw is None:
        raw = tensors.get("embeddings")
    if raw is None:
        raise HeadFormatError(f"the saved recommender has no item embeddings; {_HOW}")
    emb = np.asarray(raw, np.float32)
    if emb.ndim != 2 or emb.shape[0] != n_items:
        raise HeadFormatError(f"the saved item embeddings have shape {emb.shape}, expected "
                              f"({n_items}, dim) for {n_items} items; {_HOW}")
    return emb


def cf_tensors(cf: CFModel | None, popularity: np.ndarray | None,
               event_times: np.ndarray | None, event_items: np.ndarray | None
               ) -> dict[str, np.ndarray]:
    """The weight tensors of the collaborative part (empty for a content-only head)."""
    if cf is None:
        return {}
    arrays = {"cf_indptr": cf.indptr, "cf_indices": cf.indices, "cf_data": cf.data,
              "cf_dense": cf.dense, "cf_items": cf.items, "popularity": popularity}
    out = {k: v for k, v in arrays.items() if v is not None}
    if event_times is not None and event_items is not None:
        out["event_times"] = event_times
        out["event_items"] = event_items
    return out


def read_cf_model(tensors: Mapping[str, np.ndarray], n_items: int) -> CFModel | None:
    """The collaborative model saved in ``tensors`` (``None``: a content-only head)."""
    if "popularity" not in tensors:
        return None
    if "cf_dense" in tensors:
        return CFModel("ease", n_items, dense=np.asarray(tensors["cf_dense"], np.float32),
                       items=np.asarray(tensors["cf_items"], np.int64))
    return CFModel("knn", n_items, indptr=np.asarray(tensors["cf_indptr"], np.int64),
                   indices=np.asarray(tensors["cf_indices"], np.int64),
                   data=np.asarray(tensors["cf_data"], np.float32))


def migrate_v1(config: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config (ids, texts, metadata inline) in the version-2 form.

    The catalogue moves under ``"catalogue"`` (read by :func:`read_catalogue`), and heads
    saved before ``cf_offset`` existed keep scoring the CF part with the plain weights.

    Raises:
        KeyError: A key of the version-1 layout is missing (loading reports it as a
            :class:`HeadFormatError` naming the key, like every head's edited config).
    """
    config["params"] = {"cf_offset": 0.0, **dict(config["params"])}
    config["catalogue"] = {k: config.pop(k) for k in STRING_FIELDS}
    config["n_items"] = len(config["catalogue"]["item_ids"])
    config.setdefault("n_interactions", 0)
    return config
