"""The saved folder of a translation index: the version-2 layout and the version-1 migration.

Version 2 (``head_version`` 2) keeps ``config.json`` small: it holds the parameters, the
number of candidates ``n``, the vector size ``dim`` and the reference's row count; the
candidate texts (UTF-8 bytes + offsets, see :func:`embedsuite.heads.base.pack_strings`),
the candidate vectors and the optional reference vectors are ``.npy`` sidecars whose
SHA-256 digests ``config.json`` records. Loading memory-maps the vectors (no copy; pages
come in on first use) and decodes the texts without re-validating them: the digests
guard their integrity. ``model.safetensors`` is then empty (the folder format requires it).

Version 1 (embedsuite before issue #21) kept every text inside ``config.json`` and the
vectors in ``model.safetensors``; :func:`migrate_v1` reads that layout.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from embedsuite.errors import HeadFormatError
from embedsuite.heads.base import pack_strings, unpack_strings
from embedsuite.validation import check_text

__all__ = ["HEAD_VERSION", "INCONSISTENT", "migrate_v1", "pack_index", "unpack_index"]

HEAD_VERSION = 2

#: The start of every message about a saved index whose parts do not fit together.
INCONSISTENT = ("the saved translation index is inconsistent (texts and embeddings differ in "
                "number or are missing); re-save it")

#: Where :func:`pack_index` puts the vectors: ``.npy`` sidecars (memory-mapped on load) or
#: ``model.safetensors`` (read whole). Sidecars were measured faster to load and lighter
#: in memory at 1,000,000 candidates (benchmarks/head_io_translation.py).
VectorStore = Literal["sidecar", "weights"]


def pack_index(texts: list[str], embeddings: np.ndarray, reference: np.ndarray | None,
               vectors: VectorStore = "sidecar"
               ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The fitted index as (config entries, weight tensors, sidecar arrays)."""
    packed = pack_strings(texts)
    config = {"n": len(texts), "dim": int(embeddings.shape[1]),
              "reference_rows": None if reference is None else len(reference)}
    arrays = {"embeddings": embeddings}
    if reference is not None:
        arrays["reference"] = reference
    sidecars = {"texts_bytes": packed["bytes"], "texts_offsets": packed["offsets"]}
    if vectors == "sidecar":
        return config, {}, {**sidecars, **arrays}
    return config, arrays, sidecars


def _fail(detail: str) -> HeadFormatError:
    return HeadFormatError(f"{INCONSISTENT} ({detail})")


def _rows(name: str, arr: np.ndarray | None, n: int, dim: int | None) -> np.ndarray:
    if arr is None:
        raise _fail(f"no {name} array in the folder")
    if arr.ndim != 2 or arr.shape[0] != n or (dim is not None and arr.shape[1] != dim):
        raise _fail(f"expected {name} of shape ({n}, {dim if dim is not None else 'dim'}), "
                    f"got {arr.shape}")
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


def unpack_index(config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]
                 ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``(texts, embeddings, reference)`` from a (migrated) version-2 config and its arrays.

    Shapes and counts are checked; the texts are not re-validated one by one (the sidecar
    digests already guarantee they are the ones that were saved).

    Raises:
        HeadFormatError: Missing parts, or parts that do not fit together.
    """
    n = config.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise _fail(f"expected an int n >= 2 in config.json, got {n!r}")
    if "texts_bytes" in sidecars and "texts_offsets" in sidecars:
        texts = unpack_strings(sidecars["texts_bytes"], sidecars["texts_offsets"])
    elif isinstance(config.get("legacy_texts"), list):  # a version-1 folder (see migrate_v1)
        texts = config["legacy_texts"]
    else:
        raise _fail("no texts_bytes.npy / texts_offsets.npy sidecars")
    if len(texts) != n:
        raise _fail(f"expected {n} texts, got {len(texts)}")
    dim = config.get("dim")
    emb = _rows("embeddings", sidecars.get("embeddings", tensors.get("embeddings")), n,
                dim if isinstance(dim, int) else None)
    ref_rows = config.get("reference_rows")
    ref = sidecars.get("reference", tensors.get("reference"))
    if ref is None and ref_rows is not None:
        raise _fail(f"config.json names a reference of {ref_rows} rows but none was saved")
    if ref is not None:
        ref = _rows("reference", ref, ref.shape[0] if ref_rows is None else int(ref_rows),
                    emb.shape[1])
    return texts, emb, ref


def migrate_v1(config: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config (every text in ``config.json``) in the version-2 form.

    Version 1's texts are not covered by any digest, so they are validated as the
    version-1 loader did; the vectors stay where they were (``model.safetensors``) and
    :func:`unpack_index` finds them there.

    Raises:
        HeadFormatError: No list of texts (the folder was edited or damaged).
    """
    texts = config.pop("texts", None)
    if not isinstance(texts, list):
        raise _fail("a version-1 config.json without its 'texts' list")
    for i, t in enumerate(texts):
        check_text(t, f"saved texts[{i}]")
    config["legacy_texts"] = texts
    config.setdefault("n", len(texts))
    config.setdefault("dim", None)
    config.setdefault("reference_rows", None)
    return config
